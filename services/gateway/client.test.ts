import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool } from 'undici';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { isTemporary, isTimeout } from '../lib/errors.ts';
import { callUpstream, rejectedByBackend } from './client.ts';
import { startDeadline } from './deadline.ts';
import type { UpstreamInstance } from './upstream.ts';

/** A backend stand-in on a real socket: the path says what it answers. */
let server: Server;
let url: string;
let lastHeaders: IncomingHttpHeaders = {};
let lastPath = '';
const pools: Pool[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    lastHeaders = req.headers;
    lastPath = req.url ?? '';
    const status = Number(/^\/status\/(\d+)/.exec(req.url ?? '')?.[1] ?? 200);
    if (req.url?.startsWith('/slow')) {
      setTimeout(() => res.end('{}'), 500).unref();
      return;
    }
    if (req.url === '/not-json') {
      res.end('hello');
      return;
    }
    res.statusCode = status;
    res.setHeader('content-type', 'application/json');
    res.end(
      JSON.stringify(
        status === 200
          ? { ok: true }
          : { error: { status, reason: `REASON_${status}`, message: `m${status}` } },
      ),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await Promise.all(pools.map((p) => p.destroy()));
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

function instanceAt(at: string) {
  const pool = new Pool(at);
  pools.push(pool);
  const eject = vi.fn<() => void>();
  const instance: UpstreamInstance = { url: at, pool, ready: () => true, eject };
  return Object.assign(instance, { eject });
}

const call = (path: string) => ({ dependency: 'coin' as const, path, requestId: 'req-1' });

describe('callUpstream', () => {
  it('returns the JSON body, sending the request id and the signature of exactly the path sent', async () => {
    const sign = vi.fn(() => ({ 'x-lab-signature': 'sig' }));
    const result = await callUpstream(instanceAt(url), { ...call('/coins/7?x=1'), sign });
    expect(result).toEqual({ ok: true, value: { ok: true } });
    expect(lastPath).toBe('/coins/7?x=1');
    expect(sign).toHaveBeenCalledWith({ method: 'GET', path: '/coins/7?x=1', audience: 'coin' });
    expect(lastHeaders['x-request-id']).toBe('req-1');
    expect(lastHeaders['x-lab-signature']).toBe('sig');
  });

  it.each([503, 429])('makes a %i a temporary DEPENDENCY_UNAVAILABLE', async (status) => {
    const result = await callUpstream(instanceAt(url), call(`/status/${status}`));
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect([result.error.status, result.error.reason]).toEqual([503, 'DEPENDENCY_UNAVAILABLE']);
    expect(isTemporary(result.error)).toBe(true);
    expect(result.error.metadata).toMatchObject({
      dependency: 'coin',
      upstreamStatus: String(status),
      upstreamReason: `REASON_${status}`,
    });
    expect(rejectedByBackend(result.error)).toBe(true);
  });

  it('makes another 5xx a final DEPENDENCY_FAILED that the breaker counts', async () => {
    const result = await callUpstream(instanceAt(url), call('/status/500'));
    expect(!result.ok && [result.error.status, result.error.reason, isTemporary(result.error)]).toEqual([
      502,
      'DEPENDENCY_FAILED',
      false,
    ]);
    expect(!result.ok && rejectedByBackend(result.error)).toBe(true);
  });

  it("keeps a 404 a 404 with the backend's reason, accepted by the breaker", async () => {
    const result = await callUpstream(instanceAt(url), call('/status/404'));
    expect(!result.ok && [result.error.status, result.error.reason]).toEqual([404, 'REASON_404']);
    expect(!result.ok && rejectedByBackend(result.error)).toBe(false);
  });

  it('makes a 4xx refusal a DEPENDENCY_FAILED the breaker does not count', async () => {
    const result = await callUpstream(instanceAt(url), call('/status/401'));
    expect(!result.ok && [result.error.status, result.error.metadata.upstreamReason]).toEqual([
      502,
      'REASON_401',
    ]);
    expect(!result.ok && rejectedByBackend(result.error)).toBe(false);
  });

  it('makes a body that is not JSON a DEPENDENCY_FAILED', async () => {
    const result = await callUpstream(instanceAt(url), call('/not-json'));
    expect(!result.ok && result.error.reason).toBe('DEPENDENCY_FAILED');
  });

  it('makes our own deadline a 504 DEPENDENCY_TIMEOUT, counted by the breaker', async () => {
    const deadline = startDeadline(30);
    const result = await callUpstream(instanceAt(url), {
      ...call('/slow'),
      signal: deadline.signal,
      deadlineMs: 30,
    });
    deadline.clear();
    expect(!result.ok && [result.error.status, result.error.reason, isTimeout(result.error)]).toEqual([
      504,
      'DEPENDENCY_TIMEOUT',
      true,
    ]);
    expect(!result.ok && result.error.message).toContain('30 ms');
    expect(!result.ok && rejectedByBackend(result.error)).toBe(true);
  });

  it('makes a refused connection temporary and ejects the instance', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const deadUrl = `http://127.0.0.1:${(closed.address() as AddressInfo).port}`;
    await new Promise((resolve) => closed.close(resolve));
    const instance = instanceAt(deadUrl);
    const result = await callUpstream(instance, call('/coins/7'));
    expect(!result.ok && [result.error.status, result.error.reason, result.error.metadata.code]).toEqual([
      503,
      'DEPENDENCY_UNAVAILABLE',
      'ECONNREFUSED',
    ]);
    expect(!result.ok && isTemporary(result.error)).toBe(true);
    expect(instance.eject).toHaveBeenCalledOnce();
  });
});
