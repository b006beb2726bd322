import { afterEach, describe, expect, it } from 'vitest';
import { type ControlServer, type LabStatus, startControlServer } from './control-server.ts';
import type { KillResult } from './supervisor.ts';

const TOKEN = 'control-token-0123456789';

describe('control API', () => {
  let server: ControlServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  async function start() {
    const calls = { killed: [] as string[], shutdowns: 0 };
    const status: LabStatus = {
      pid: 42,
      startedAt: '2025-01-01T00:00:00.000Z',
      trust: 'half',
      workerRecovery: true,
      gateways: { naive: 'http://127.0.0.1:1' },
      instances: [],
      proxies: [],
    };
    server = await startControlServer({
      port: 0,
      host: '127.0.0.1',
      token: TOKEN,
      target: {
        status: () => status,
        ids: () => ['coin-1', 'coin-2'],
        kill: (id): KillResult => {
          if (id === 'coin-2') return 'not-running';
          if (id !== 'coin-1') return 'unknown';
          calls.killed.push(id);
          return 'killed';
        },
        shutdown: () => {
          calls.shutdowns += 1;
        },
      },
    });
    const call = (method: string, path: string, token = TOKEN) =>
      fetch(`${server?.url}${path}`, { method, headers: token ? { authorization: `Bearer ${token}` } : {} });
    return { calls, status, call };
  }

  it('answers 401 without the bearer token, or with a wrong one', async () => {
    const { call } = await start();
    expect((await call('GET', '/status', '')).status).toBe(401);
    const wrong = await call('GET', '/status', 'nope');
    expect(wrong.status).toBe(401);
    expect(await wrong.json()).toMatchObject({ error: { reason: 'UNAUTHORIZED' } });
  });

  it('serves the status', async () => {
    const { call, status } = await start();
    const res = await call('GET', '/status');
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual(status);
  });

  it('kills an instance by id, and names the valid ids for an unknown one', async () => {
    const { call, calls } = await start();
    expect((await call('POST', '/instances/coin-1/kill')).status).toBe(202);
    expect(calls.killed).toEqual(['coin-1']);
    const unknown = await call('POST', '/instances/coin-7/kill');
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { error: { message: string } }).error.message).toBe(
      'no instance coin-7; instances: coin-1, coin-2',
    );
    expect((await call('POST', '/instances/coin-2/kill')).status).toBe(409);
  });

  it('acknowledges a shutdown before starting it', async () => {
    const { call, calls } = await start();
    const res = await call('POST', '/shutdown');
    expect(res.status).toBe(202);
    expect(calls.shutdowns).toBe(1);
    expect((await call('GET', '/nothing')).status).toBe(404);
  });
});
