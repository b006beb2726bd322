import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { FaultLease } from '../lib/fault-agent.ts';
import { echoServer, type Harness, startHarness, TOKEN, type Upstream } from './__fixtures__/harness.ts';

let echo: Upstream;
beforeAll(async () => {
  echo = await echoServer();
});
afterAll(() => echo.close());

async function listed(h: Harness): Promise<FaultLease[]> {
  const res = await h.admin('GET', '/faults');
  expect(res.status).toBe(200);
  return ((await res.json()) as { faults: FaultLease[] }).faults;
}

describe('fault proxy admin API', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness(echo.port);
  });
  afterAll(() => h.close());
  afterEach(async () => {
    await h.admin('DELETE', '/faults');
  });

  it('applies (201), lists, renews (200), removes and clears faults, as the fault agent does', async () => {
    const put = await h.admin('PUT', '/faults/slow', {
      kind: 'latency',
      params: { delayMs: 300 },
      leaseMs: 20_000,
    });
    expect(put.status).toBe(201);
    const { fault } = (await put.json()) as { fault: FaultLease };
    expect(fault).toMatchObject({ id: 'slow', kind: 'latency', params: { delayMs: 300, jitterMs: 0 } });
    expect(fault.expiresAt - fault.appliedAt).toBe(20_000);

    const view = (await (await h.admin('GET', '/faults')).json()) as Record<string, unknown>;
    expect(view).toEqual({
      service: 'fault-proxy',
      instance: 'test-proxy',
      injector: 'fault-proxy',
      upstream: `127.0.0.1:${echo.port}`,
      faults: [fault],
    });

    const renew = await h.admin('PUT', '/faults/slow', {
      kind: 'latency',
      params: { delayMs: 100, jitterMs: 10 },
      leaseMs: 20_000,
    });
    expect(renew.status).toBe(200);
    const renewed = ((await renew.json()) as { fault: FaultLease }).fault;
    expect(renewed.params).toEqual({ delayMs: 100, jitterMs: 10 });
    expect(renewed.appliedAt).toBe(fault.appliedAt);

    await h.admin('PUT', '/faults/drop', { kind: 'loss', params: { percent: 2.5 }, leaseMs: 1000 });
    await h.admin('PUT', '/faults/rst', { kind: 'reset', params: { percent: 10 }, leaseMs: 1000 });
    expect((await listed(h)).map((f) => f.id)).toEqual(['slow', 'drop', 'rst']);
    expect(await (await h.admin('DELETE', '/faults/drop')).json()).toEqual({ removed: true });
    expect(await (await h.admin('DELETE', '/faults/drop')).json()).toEqual({ removed: false });
    expect(await (await h.admin('DELETE', '/faults')).json()).toEqual({ removed: 2 });
    expect(await listed(h)).toEqual([]);

    const metrics = await (await fetch(`${h.proxy.adminUrl}/metrics`)).text();
    expect(metrics).toMatch(/chaos_faults_applied_total\{kind="latency"[^}]*\} 1/);
    expect(metrics).toMatch(/chaos_faults_renewed_total\{kind="latency"[^}]*\} 1/);
  });

  it('takes a latency’s requestShare (0 to 1) and keeps a lease without one as it was sent', async () => {
    const both = await h.admin('PUT', '/faults/both', {
      kind: 'latency',
      params: { delayMs: 300, jitterMs: 20, requestShare: 0.5 },
      leaseMs: 20_000,
    });
    expect(both.status).toBe(201);
    expect(((await both.json()) as { fault: FaultLease }).fault.params).toEqual({
      delayMs: 300,
      jitterMs: 20,
      requestShare: 0.5,
    });
    for (const requestShare of [0, 1]) {
      const res = await h.admin('PUT', '/faults/edge', {
        kind: 'latency',
        params: { delayMs: 300, requestShare },
        leaseMs: 20_000,
      });
      expect(res.status).toBeLessThan(300);
    }
    const plain = await h.admin('PUT', '/faults/plain', {
      kind: 'latency',
      params: { delayMs: 300 },
      leaseMs: 20_000,
    });
    // No share filled in: a lease without one reads back as sent, and means responses only.
    expect(((await plain.json()) as { fault: FaultLease }).fault.params).toEqual({
      delayMs: 300,
      jitterMs: 0,
    });
  });

  it('reports active faults and the proxy’s own metrics on /metrics', async () => {
    await h.fault('drop', 'loss', { percent: 1 });
    const metrics = await (await fetch(`${h.proxy.adminUrl}/metrics`)).text();
    expect(metrics).toMatch(
      /chaos_faults_active\{kind="loss",service="fault-proxy",instance="test-proxy"\} 1/,
    );
    expect(metrics).toMatch(/chaos_faults_active\{kind="latency"[^}]*\} 0/);
    for (const name of [
      'proxy_connections_total',
      'proxy_connections_active',
      'proxy_bytes_total',
      'proxy_added_delay_seconds',
      'proxy_losses_total',
      'proxy_resets_total',
    ]) {
      expect(metrics).toContain(`# TYPE ${name} `);
    }
  });

  const invalid: [string, string, unknown, string, RegExp][] = [
    [
      'an unknown kind',
      '/faults/x',
      { kind: 'http-delay', params: { delayMs: 5 }, leaseMs: 1000 },
      'kind',
      /^expected one of latency, loss, reset, got "http-delay"$/,
    ],
    ['no kind', '/faults/x', { params: { percent: 1 }, leaseMs: 1000 }, 'kind', /got nothing/],
    [
      'a loss of 150%',
      '/faults/x',
      { kind: 'loss', params: { percent: 150 }, leaseMs: 1000 },
      'params.percent',
      /^expected a number from 0 to 100, got 150$/,
    ],
    [
      'a negative reset share',
      '/faults/x',
      { kind: 'reset', params: { percent: -1 }, leaseMs: 1000 },
      'params.percent',
      /got -1/,
    ],
    [
      'a delay above a minute',
      '/faults/x',
      { kind: 'latency', params: { delayMs: 60_001 }, leaseMs: 1000 },
      'params.delayMs',
      /integer from 0 to 60000, got 60001/,
    ],
    [
      'a fractional jitter',
      '/faults/x',
      { kind: 'latency', params: { delayMs: 5, jitterMs: 0.5 }, leaseMs: 1000 },
      'params.jitterMs',
      /got 0.5/,
    ],
    [
      'a request share above 1',
      '/faults/x',
      { kind: 'latency', params: { delayMs: 5, requestShare: 1.5 }, leaseMs: 1000 },
      'params.requestShare',
      /^expected a number from 0 to 1, got 1.5$/,
    ],
    [
      'a negative request share',
      '/faults/x',
      { kind: 'latency', params: { delayMs: 5, requestShare: -0.5 }, leaseMs: 1000 },
      'params.requestShare',
      /got -0.5/,
    ],
    [
      'a request share as a word',
      '/faults/x',
      { kind: 'latency', params: { delayMs: 5, requestShare: 'both' }, leaseMs: 1000 },
      'params.requestShare',
      /^expected a number from 0 to 1, got "both"$/,
    ],
    [
      'a request share on a fault that has none',
      '/faults/x',
      { kind: 'loss', params: { percent: 5, requestShare: 0.5 }, leaseMs: 1000 },
      'params.requestShare',
      /^unknown key; expected percent$/,
    ],
    [
      'a delay as a string',
      '/faults/x',
      { kind: 'latency', params: { delayMs: '300ms' }, leaseMs: 1000 },
      'params.delayMs',
      /got "300ms"/,
    ],
    [
      'an unknown parameter',
      '/faults/x',
      { kind: 'loss', params: { percent: 5, correlation: 25 }, leaseMs: 1000 },
      'params.correlation',
      /^unknown key; expected percent$/,
    ],
    [
      'an unknown latency parameter',
      '/faults/x',
      { kind: 'latency', params: { delayMs: 5, direction: 1 }, leaseMs: 1000 },
      'params.direction',
      /^unknown key; expected delayMs, jitterMs, requestShare$/,
    ],
    [
      'an unknown top-level key',
      '/faults/x',
      { kind: 'loss', params: { percent: 5 }, leaseMs: 1000, service: 'coin' },
      'service',
      /unknown key; expected kind, params, leaseMs/,
    ],
    ['no params', '/faults/x', { kind: 'reset', leaseMs: 1000 }, 'params', /expected an object/],
    [
      'a lease below 100 ms',
      '/faults/x',
      { kind: 'loss', params: { percent: 5 }, leaseMs: 50 },
      'leaseMs',
      /integer from 100 to 3600000, got 50/,
    ],
    ['no lease', '/faults/x', { kind: 'loss', params: { percent: 5 } }, 'leaseMs', /got nothing/],
    [
      'a bad id',
      '/faults/Bad_Id',
      { kind: 'loss', params: { percent: 5 }, leaseMs: 1000 },
      'id',
      /lowercase letters, digits and dashes.*got "Bad_Id"/,
    ],
    ['a body that is not JSON', '/faults/x', '{"kind": ', 'body', /not valid JSON/],
    ['a JSON array', '/faults/x', [1, 2], 'body', /expected a JSON object/],
  ];

  it.each(invalid)(
    'refuses %s with 400 INVALID_FAULT naming the field, and applies nothing',
    async (_what, path, body, field, reason) => {
      await h.fault('keep', 'loss', { percent: 1 }, 5000);
      const before = await listed(h);
      const res = await h.admin('PUT', path, body);
      expect(res.status).toBe(400);
      const { error } = (await res.json()) as {
        error: { reason: string; message: string; metadata: { field: string } };
      };
      expect(error.reason).toBe('INVALID_FAULT');
      expect(error.metadata.field).toBe(field);
      expect(error.message.startsWith(`${field}: `)).toBe(true);
      expect(error.message.slice(field.length + 2)).toMatch(reason);
      expect(await listed(h)).toEqual(before);
    },
  );

  it('keeps stats behind the token; DELETE /stats returns the window and starts a new one', async () => {
    expect((await h.admin('GET', '/stats', undefined, 'wrong')).status).toBe(401);
    const res = await h.admin('GET', '/stats');
    expect(res.status).toBe(200);
    const body = (await res.json()) as { stats: { since: number; connections: { accepted: number } } };
    expect(body).toMatchObject({ service: 'fault-proxy', instance: 'test-proxy', faults: [] });
    const taken = (await (await h.admin('DELETE', '/stats')).json()) as { stats: { since: number } };
    expect(taken.stats.since).toBe(body.stats.since);
    const fresh = (await (await h.admin('GET', '/stats')).json()) as { stats: { since: number } };
    expect(fresh.stats.since).toBeGreaterThanOrEqual(taken.stats.since);
  });
});

describe('fault proxy admin authentication', () => {
  it('answers 401 to a missing or wrong token and applies nothing; health and metrics stay open', async () => {
    const h = await startHarness(echo.port);
    try {
      for (const token of ['wrong', `${TOKEN}x`, '']) {
        const res = await h.admin(
          'PUT',
          '/faults/x',
          { kind: 'reset', params: { percent: 100 }, leaseMs: 1000 },
          token,
        );
        expect(res.status).toBe(401);
        expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
        expect(((await res.json()) as { error: { reason: string } }).error.reason).toBe('UNAUTHORIZED');
      }
      expect((await fetch(`${h.proxy.adminUrl}/__chaos/faults`)).status).toBe(401);
      expect(h.proxy.faults()).toEqual([]);
      for (const path of ['/healthz', '/readyz', '/metrics']) {
        expect((await fetch(`${h.proxy.adminUrl}${path}`)).status).toBe(200);
      }
    } finally {
      await h.close();
    }
  });

  it('is off (404 CHAOS_ADMIN_DISABLED) without a token, and still relays', async () => {
    const h = await startHarness(echo.port, { token: undefined });
    try {
      for (const path of ['/faults', '/stats']) {
        const res = await h.admin('GET', path);
        expect(res.status).toBe(404);
        expect(((await res.json()) as { error: { reason: string } }).error.reason).toBe(
          'CHAOS_ADMIN_DISABLED',
        );
      }
      const socket = await h.connect();
      const reply = new Promise<string>((resolve) => socket.once('data', (d: Buffer) => resolve(String(d))));
      socket.write('ok');
      expect(await reply).toBe('ok');
      socket.destroy();
    } finally {
      await h.close();
    }
  });
});
