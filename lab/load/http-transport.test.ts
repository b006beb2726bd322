import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttpTransport } from './http-transport.ts';

/** A real HTTP server on loopback: the transport's pools are undici's own. */
let server: ReturnType<typeof createServer>;
let url: string;

beforeAll(async () => {
  server = createServer((_req, res) => res.end('{}'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

describe('the HTTP transport', () => {
  it('closes after a destroy (a drain that gave up) without ClientDestroyedError, and destroys twice', async () => {
    const transport = createHttpTransport([{ name: 'naive', url }], { connections: 2 });
    const answer = await transport.send({
      target: { name: 'naive', url },
      path: '/api/video/1',
      headers: {},
      signal: AbortSignal.timeout(5_000),
    });
    expect(answer.status).toBe(200);
    await transport.destroy();
    await expect(transport.close()).resolves.toBeUndefined();
    await expect(transport.destroy()).resolves.toBeUndefined();
  });
});
