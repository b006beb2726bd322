import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { captureLog, metricValue } from './__fixtures__/observe.ts';
import {
  abortableSleep,
  createFaultAgent,
  type FaultAgent,
  type FaultAgentOptions,
  type FaultLease,
} from './fault-agent.ts';
import { createServiceApp, type Listening, listen, type ServiceContext } from './service-app.ts';

const TOKEN = 'test-token-1234';
const T0 = 1_700_000_000_000;

interface Harness {
  readonly url: string;
  readonly agent: FaultAgent;
  readonly ctx: ServiceContext;
  /** Moves the injected clock. */
  advance(ms: number): void;
  /** The next values the injected random source returns (then 0.5). */
  rolls: number[];
  sleeps: { ms: number; signal: AbortSignal | undefined }[];
  close(): Promise<void>;
}

async function startHarness(options: Partial<Omit<FaultAgentOptions, 'ctx'>> = {}): Promise<Harness> {
  const { app, ctx, finalize } = createServiceApp({
    service: 'test',
    instanceId: 'test-1',
    log: captureLog().log,
    processMetrics: false,
  });
  let now = T0;
  const rolls: number[] = [];
  const sleeps: Harness['sleeps'] = [];
  const agent = createFaultAgent({
    ctx,
    token: TOKEN,
    workerRecoveryDefault: true,
    clock: () => now,
    random: () => rolls.shift() ?? 0.5,
    sleep: async (ms, signal) => {
      sleeps.push({ ms, signal });
    },
    ...options,
  });
  app.use('/__chaos', agent.router);
  app.use(agent.middleware);
  app.get('/work', (_req, res) => {
    res.json({ ok: true });
  });
  finalize();
  const listening: Listening = await listen(app, 0);
  return {
    url: listening.url,
    agent,
    ctx,
    advance: (ms) => {
      now += ms;
    },
    rolls,
    sleeps,
    close: async () => {
      agent.close();
      await listening.close();
    },
  };
}

function admin(h: Harness, method: string, path: string, body?: unknown, token = TOKEN): Promise<Response> {
  return fetch(`${h.url}/__chaos${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
}

async function listed(h: Harness): Promise<FaultLease[]> {
  const res = await admin(h, 'GET', '/faults');
  expect(res.status).toBe(200);
  return ((await res.json()) as { faults: FaultLease[] }).faults;
}

describe('fault agent admin API', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(() => h.close());
  afterEach(async () => {
    await admin(h, 'DELETE', '/faults');
  });

  it('applies, lists, renews, removes and clears faults', async () => {
    const put = await admin(h, 'PUT', '/faults/slow-1', {
      kind: 'http-delay',
      params: { delayMs: 300 },
      leaseMs: 20_000,
    });
    expect(put.status).toBe(201);
    const { fault } = (await put.json()) as { fault: FaultLease };
    expect(fault).toMatchObject({ id: 'slow-1', kind: 'http-delay', params: { delayMs: 300, jitterMs: 0 } });
    expect(fault.expiresAt - fault.appliedAt).toBe(20_000);

    const body = (await (await admin(h, 'GET', '/faults')).json()) as Record<string, unknown>;
    expect(body).toMatchObject({
      service: 'test',
      instance: 'test-1',
      faults: [fault],
      settings: { workerRecovery: true, overridden: false, expiresAt: null },
    });

    h.advance(5_000);
    const renew = await admin(h, 'PUT', '/faults/slow-1', {
      kind: 'http-delay',
      params: { delayMs: 100, jitterMs: 10 },
      leaseMs: 20_000,
    });
    expect(renew.status).toBe(200);
    const renewed = ((await renew.json()) as { fault: FaultLease }).fault;
    expect(renewed.params).toEqual({ delayMs: 100, jitterMs: 10 });
    expect(renewed.appliedAt).toBe(fault.appliedAt);
    expect(renewed.expiresAt).toBe(fault.expiresAt + 5_000);
    expect(await metricValue(h.ctx.metrics, 'chaos_faults_renewed_total', { kind: 'http-delay' })).toBe(1);

    await admin(h, 'PUT', '/faults/boom', {
      kind: 'http-error',
      params: { status: 500, percent: 5 },
      leaseMs: 1000,
    });
    expect((await listed(h)).map((f) => f.id)).toEqual(['slow-1', 'boom']);
    expect(h.agent.faults().map((f) => f.id)).toEqual(['slow-1', 'boom']);

    expect(await (await admin(h, 'DELETE', '/faults/boom')).json()).toEqual({ removed: true });
    expect(await (await admin(h, 'DELETE', '/faults/boom')).json()).toEqual({ removed: false });
    expect((await listed(h)).map((f) => f.id)).toEqual(['slow-1']);

    await admin(h, 'PUT', '/settings', { workerRecovery: false, leaseMs: 60_000 });
    expect(await (await admin(h, 'DELETE', '/faults')).json()).toEqual({ removed: 1 });
    expect(await listed(h)).toEqual([]);
    expect(h.agent.workerRecovery()).toBe(true);
  });

  it('exports what is active, applied and expired', async () => {
    await admin(h, 'PUT', '/faults/p', { kind: 'worker-panic', params: { percent: 10 }, leaseMs: 1000 });
    const text = await (await fetch(`${h.url}/metrics`)).text();
    expect(text).toMatch(/chaos_faults_active\{kind="worker-panic",service="test",instance="test-1"\} 1/);
    expect(text).toMatch(/chaos_faults_active\{kind="http-delay"[^}]*\} 0/);
    expect(await metricValue(h.ctx.metrics, 'chaos_faults_applied_total', { kind: 'worker-panic' })).toBe(1);
  });

  const invalidFaults: [string, string, unknown, string, RegExp][] = [
    [
      'an unknown kind',
      '/faults/x',
      { kind: 'packet-loss', params: {}, leaseMs: 1000 },
      'kind',
      /expected one of http-delay, http-error, worker-panic, got "packet-loss"/,
    ],
    ['no kind', '/faults/x', { params: { percent: 1 }, leaseMs: 1000 }, 'kind', /got nothing/],
    [
      'a percent above 100',
      '/faults/x',
      { kind: 'http-error', params: { status: 500, percent: 150 }, leaseMs: 1000 },
      'params.percent',
      /^expected a number from 0 to 100, got 150$/,
    ],
    [
      'a negative percent',
      '/faults/x',
      { kind: 'worker-panic', params: { percent: -1 }, leaseMs: 1000 },
      'params.percent',
      /from 0 to 100, got -1/,
    ],
    [
      'a percent as a string',
      '/faults/x',
      { kind: 'worker-panic', params: { percent: '50' }, leaseMs: 1000 },
      'params.percent',
      /got "50"/,
    ],
    [
      'a status that is not an error',
      '/faults/x',
      { kind: 'http-error', params: { status: 200, percent: 5 }, leaseMs: 1000 },
      'params.status',
      /integer from 400 to 599, got 200/,
    ],
    [
      'a delay above a minute',
      '/faults/x',
      { kind: 'http-delay', params: { delayMs: 60_001 }, leaseMs: 1000 },
      'params.delayMs',
      /from 0 to 60000/,
    ],
    [
      'a missing parameter',
      '/faults/x',
      { kind: 'http-error', params: { status: 500 }, leaseMs: 1000 },
      'params.percent',
      /got nothing/,
    ],
    [
      'an unknown parameter',
      '/faults/x',
      { kind: 'http-delay', params: { delayMs: 5, lossPercent: 3 }, leaseMs: 1000 },
      'params.lossPercent',
      /unknown key; expected delayMs, jitterMs/,
    ],
    [
      'an unknown top-level key',
      '/faults/x',
      { kind: 'worker-panic', params: { percent: 5 }, leaseMs: 1000, target: 'coin' },
      'target',
      /unknown key; expected kind, params, leaseMs/,
    ],
    ['no params', '/faults/x', { kind: 'worker-panic', leaseMs: 1000 }, 'params', /expected an object/],
    [
      'a lease below 100 ms',
      '/faults/x',
      { kind: 'worker-panic', params: { percent: 5 }, leaseMs: 50 },
      'leaseMs',
      /integer from 100 to 3600000, got 50/,
    ],
    [
      'a fractional lease',
      '/faults/x',
      { kind: 'worker-panic', params: { percent: 5 }, leaseMs: 1000.5 },
      'leaseMs',
      /got 1000.5/,
    ],
    [
      'a lease over an hour',
      '/faults/x',
      { kind: 'worker-panic', params: { percent: 5 }, leaseMs: 3_600_001 },
      'leaseMs',
      /got 3600001/,
    ],
    ['no lease', '/faults/x', { kind: 'worker-panic', params: { percent: 5 } }, 'leaseMs', /got nothing/],
    [
      'an id with capitals',
      '/faults/Bad_Id',
      { kind: 'worker-panic', params: { percent: 5 }, leaseMs: 1000 },
      'id',
      /lowercase letters, digits and dashes.*got "Bad_Id"/,
    ],
    [
      'an id starting with a dash',
      '/faults/-x',
      { kind: 'worker-panic', params: { percent: 5 }, leaseMs: 1000 },
      'id',
      /got "-x"/,
    ],
    [
      'an id of 65 characters',
      `/faults/${'a'.repeat(65)}`,
      { kind: 'worker-panic', params: { percent: 5 }, leaseMs: 1000 },
      'id',
      /1-64/,
    ],
    ['a body that is not JSON', '/faults/x', '{"kind": ', 'body', /not valid JSON/],
    ['a JSON array', '/faults/x', [1, 2], 'body', /expected a JSON object/],
  ];

  it.each(invalidFaults)(
    'refuses %s with 400 naming the field, and applies nothing',
    async (_what, path, body, field, reason) => {
      await admin(h, 'PUT', '/faults/keep', { kind: 'worker-panic', params: { percent: 1 }, leaseMs: 5000 });
      const before = await listed(h);

      const res = await admin(h, 'PUT', path, body);
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

  it('refuses a bad settings body with 400 INVALID_SETTINGS and keeps the settings', async () => {
    const cases: [unknown, string][] = [
      [{ workerRecovery: 'off', leaseMs: 1000 }, 'workerRecovery'],
      [{ workerRecovery: false }, 'leaseMs'],
      [{ workerRecovery: false, leaseMs: 1000, why: 'x' }, 'why'],
    ];
    for (const [body, field] of cases) {
      const res = await admin(h, 'PUT', '/settings', body);
      expect(res.status).toBe(400);
      const { error } = (await res.json()) as {
        error: { reason: string; message: string; metadata: { field: string } };
      };
      expect(error).toMatchObject({ reason: 'INVALID_SETTINGS', metadata: { field } });
      expect(error.message).toMatch(new RegExp(`^${field}: `));
      expect(h.agent.workerRecovery()).toBe(true);
    }
  });
});

describe('fault agent authentication', () => {
  it('is off (404) when no token is configured', async () => {
    const h = await startHarness({ token: undefined });
    try {
      const res = await admin(h, 'GET', '/faults');
      expect(res.status).toBe(404);
      expect(((await res.json()) as { error: { reason: string } }).error.reason).toBe('CHAOS_ADMIN_DISABLED');
      // The service itself still works.
      expect((await fetch(`${h.url}/work`)).status).toBe(200);
    } finally {
      await h.close();
    }
  });

  it('answers 401 to a missing or wrong token, and nothing is applied', async () => {
    const h = await startHarness();
    try {
      const body = { kind: 'worker-panic', params: { percent: 100 }, leaseMs: 1000 };
      for (const token of ['wrong', `${TOKEN}x`, '']) {
        const res = await admin(h, 'PUT', '/faults/x', body, token);
        expect(res.status).toBe(401);
        expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
        expect(((await res.json()) as { error: { reason: string } }).error.reason).toBe('UNAUTHORIZED');
      }
      const bare = await fetch(`${h.url}/__chaos/faults`);
      expect(bare.status).toBe(401);
      expect(h.agent.faults()).toEqual([]);
      const lowercase = await fetch(`${h.url}/__chaos/faults`, {
        headers: { authorization: `bearer ${TOKEN}` },
      });
      expect(lowercase.status).toBe(200);
    } finally {
      await h.close();
    }
  });
});

describe('fault leases', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(() => h.close());
  afterEach(async () => {
    await admin(h, 'DELETE', '/faults');
  });

  it('expire by themselves when the lease runs out, unless renewed', async () => {
    await admin(h, 'PUT', '/faults/a', {
      kind: 'http-error',
      params: { status: 500, percent: 100 },
      leaseMs: 1000,
    });
    await admin(h, 'PUT', '/faults/b', {
      kind: 'http-error',
      params: { status: 502, percent: 100 },
      leaseMs: 1000,
    });
    h.advance(999);
    expect(h.agent.faults().map((f) => f.id)).toEqual(['a', 'b']);
    await admin(h, 'PUT', '/faults/b', {
      kind: 'http-error',
      params: { status: 502, percent: 100 },
      leaseMs: 1000,
    });
    h.advance(1);
    expect((await listed(h)).map((f) => f.id)).toEqual(['b']);
    expect((await fetch(`${h.url}/work`)).status).toBe(502);
    h.advance(999);
    expect(await listed(h)).toEqual([]);
    expect((await fetch(`${h.url}/work`)).status).toBe(200);
    expect(await metricValue(h.ctx.metrics, 'chaos_faults_expired_total', { kind: 'http-error' })).toBe(2);
  });

  it('the settings override reverts to the default when its lease ends', async () => {
    const res = await admin(h, 'PUT', '/settings', { workerRecovery: false, leaseMs: 2000 });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      settings: {
        workerRecovery: false,
        overridden: true,
        override: { workerRecovery: false },
        expiresAt: expect.any(Number),
      },
    });
    expect(h.agent.workerRecovery()).toBe(false);
    h.advance(1999);
    expect(h.agent.workerRecovery()).toBe(false);
    h.advance(1);
    expect(h.agent.workerRecovery()).toBe(true);
    const body = (await (await admin(h, 'GET', '/faults')).json()) as { settings: unknown };
    expect(body.settings).toEqual({ workerRecovery: true, overridden: false, expiresAt: null });
  });

  it('DELETE /settings goes back to the default at once', async () => {
    await admin(h, 'PUT', '/settings', { workerRecovery: false, leaseMs: 60_000 });
    const res = await admin(h, 'DELETE', '/settings');
    expect(await res.json()).toEqual({
      settings: { workerRecovery: true, overridden: false, expiresAt: null },
    });
    expect(h.agent.workerRecovery()).toBe(true);
  });
});

describe('fault agent, the trust setting', () => {
  it('overrides the trust mode for its lease, keeps the other setting, and goes back', async () => {
    const h = await startHarness({ trustDefault: 'half', cannotTrust: () => undefined });
    try {
      expect(h.agent.trustMode()).toBe('half');
      await admin(h, 'PUT', '/settings', { workerRecovery: false, leaseMs: 5_000 });
      const res = await admin(h, 'PUT', '/settings', { trust: 'full', leaseMs: 5_000 });
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({
        settings: { trust: 'full', workerRecovery: false, overridden: true },
      });
      expect(h.agent.trustMode()).toBe('full');
      h.advance(5_001);
      expect(h.agent.trustMode()).toBe('half');
      expect(h.agent.workerRecovery()).toBe(true);
    } finally {
      await h.close();
    }
  });

  it('refuses a mode the process cannot take, and a bad one, changing nothing', async () => {
    const h = await startHarness({
      trustDefault: 'zero',
      cannotTrust: (mode) => (mode === 'full' ? 'no certificates (TLS_CA, TLS_CERT, TLS_KEY)' : undefined),
    });
    try {
      const refused = await admin(h, 'PUT', '/settings', { trust: 'full', leaseMs: 5_000 });
      expect(refused.status).toBe(409);
      expect(await refused.json()).toMatchObject({
        error: {
          reason: 'INVALID_SETTINGS',
          message: 'test-1 cannot take trust full: no certificates (TLS_CA, TLS_CERT, TLS_KEY)',
        },
      });
      const bad = await admin(h, 'PUT', '/settings', { trust: 'total', leaseMs: 5_000 });
      expect(bad.status).toBe(400);
      expect(((await bad.json()) as { error: { message: string } }).error.message).toMatch(
        /^trust: expected zero, half, full, got "total"/,
      );
      const empty = await admin(h, 'PUT', '/settings', { leaseMs: 5_000 });
      expect(empty.status).toBe(400);
      expect(h.agent.trustMode()).toBe('zero');
    } finally {
      await h.close();
    }
  });

  it('refuses a trust override on a process that has no trust setting', async () => {
    const h = await startHarness();
    try {
      const res = await admin(h, 'PUT', '/settings', { trust: 'half', leaseMs: 5_000 });
      expect(res.status).toBe(409);
      expect(h.agent.trustMode()).toBe('zero');
    } finally {
      await h.close();
    }
  });
});

describe('fault lease timer', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('ends a lease while nobody reads, so the expiry is counted and logged on time', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'], now: T0 });
    const captured = captureLog();
    const { app, ctx, finalize } = createServiceApp({
      service: 'test',
      instanceId: 't',
      log: captured.log,
      processMetrics: false,
    });
    const agent = createFaultAgent({ ctx, token: TOKEN, workerRecoveryDefault: true });
    app.use('/__chaos', agent.router);
    finalize();
    const listening = await listen(app, 0);
    try {
      const res = await fetch(`${listening.url}/__chaos/faults/t1`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ kind: 'worker-panic', params: { percent: 50 }, leaseMs: 5000 }),
      });
      expect(res.status).toBe(201);
      vi.advanceTimersByTime(4999);
      expect(await metricValue(ctx.metrics, 'chaos_faults_expired_total')).toBe(0);
      vi.advanceTimersByTime(1);
      expect(await metricValue(ctx.metrics, 'chaos_faults_expired_total', { kind: 'worker-panic' })).toBe(1);
      expect(captured.lines().some((l) => l.msg === 'fault lease expired')).toBe(true);
      expect(vi.getTimerCount()).toBe(0);
    } finally {
      agent.close();
      await listening.close();
    }
  });
});

describe('fault middleware and hooks', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(() => h.close());
  afterEach(async () => {
    await admin(h, 'DELETE', '/faults');
    h.rolls.length = 0;
    h.sleeps.length = 0;
  });

  it('delays by delay ± jitter, adds several delays up, and never delays below zero', async () => {
    await admin(h, 'PUT', '/faults/d1', {
      kind: 'http-delay',
      params: { delayMs: 100, jitterMs: 40 },
      leaseMs: 5000,
    });
    h.rolls.push(0.75); // → +0.5 × jitter
    expect((await fetch(`${h.url}/work`)).status).toBe(200);
    expect(h.sleeps.map((s) => s.ms)).toEqual([120]);

    await admin(h, 'PUT', '/faults/d2', { kind: 'http-delay', params: { delayMs: 50 }, leaseMs: 5000 });
    h.rolls.push(0, 0.5); // d1: −jitter; d2: no jitter
    await fetch(`${h.url}/work`);
    expect(h.sleeps.map((s) => s.ms)).toEqual([120, 60 + 50]);

    await admin(h, 'DELETE', '/faults');
    await admin(h, 'PUT', '/faults/d3', {
      kind: 'http-delay',
      params: { delayMs: 10, jitterMs: 100 },
      leaseMs: 5000,
    });
    h.rolls.push(0);
    await fetch(`${h.url}/work`);
    expect(h.sleeps).toHaveLength(2);
    expect(await metricValue(h.ctx.metrics, 'chaos_injected_total', { kind: 'http-delay' })).toBe(4);
  });

  it('answers http-error with the status at the given percentage; 503 also says retry-after', async () => {
    await admin(h, 'PUT', '/faults/e', {
      kind: 'http-error',
      params: { status: 503, percent: 30 },
      leaseMs: 5000,
    });
    h.rolls.push(0.29, 0.3);
    const hit = await fetch(`${h.url}/work`, { headers: { 'x-request-id': 'req-42' } });
    expect(hit.status).toBe(503);
    expect(hit.headers.get('retry-after')).toBe('1');
    expect(await hit.json()).toEqual({
      error: {
        status: 503,
        reason: 'INJECTED_FAULT',
        message: 'injected http-error (chaos)',
        metadata: { fault: 'e' },
      },
      requestId: 'req-42',
    });
    const miss = await fetch(`${h.url}/work`);
    expect(miss.status).toBe(200);
    expect(await metricValue(h.ctx.metrics, 'chaos_injected_total', { kind: 'http-error' })).toBe(1);
  });

  it('with several http-errors the first that fires answers', async () => {
    await admin(h, 'PUT', '/faults/never', {
      kind: 'http-error',
      params: { status: 500, percent: 0 },
      leaseMs: 5000,
    });
    await admin(h, 'PUT', '/faults/always', {
      kind: 'http-error',
      params: { status: 502, percent: 100 },
      leaseMs: 5000,
    });
    await admin(h, 'PUT', '/faults/later', {
      kind: 'http-error',
      params: { status: 504, percent: 100 },
      leaseMs: 5000,
    });
    const res = await fetch(`${h.url}/work`);
    expect(res.status).toBe(502);
    expect(res.headers.get('retry-after')).toBeNull();
  });

  it('leaves infra paths alone', async () => {
    await admin(h, 'PUT', '/faults/e', {
      kind: 'http-error',
      params: { status: 500, percent: 100 },
      leaseMs: 5000,
    });
    await admin(h, 'PUT', '/faults/d', { kind: 'http-delay', params: { delayMs: 1000 }, leaseMs: 5000 });
    for (const path of ['/healthz', '/readyz', '/metrics']) {
      expect((await fetch(`${h.url}${path}`)).status).not.toBe(500);
    }
    expect((await admin(h, 'GET', '/faults')).status).toBe(200);
    expect(h.sleeps).toEqual([]);
  });

  it('stops waiting when the caller goes away', async () => {
    const { app, ctx, finalize } = createServiceApp({
      service: 'test',
      instanceId: 't',
      log: captureLog().log,
      processMetrics: false,
    });
    let sleeping: (signal: AbortSignal) => void = () => {};
    const asleep = new Promise<AbortSignal>((resolve) => {
      sleeping = resolve;
    });
    const agent = createFaultAgent({
      ctx,
      token: TOKEN,
      workerRecoveryDefault: true,
      // Never wakes by itself: only the caller leaving can end it.
      sleep: (_ms, signal) =>
        new Promise<void>((resolve) => {
          signal?.addEventListener('abort', () => resolve());
          if (signal) sleeping(signal);
        }),
    });
    let handled = false;
    app.use('/__chaos', agent.router);
    app.use(agent.middleware);
    app.get('/work', (_req, res) => {
      handled = true;
      res.json({});
    });
    finalize();
    const listening = await listen(app, 0);
    try {
      await fetch(`${listening.url}/__chaos/faults/d`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ kind: 'http-delay', params: { delayMs: 60_000 }, leaseMs: 5000 }),
      });
      const caller = new AbortController();
      const request = fetch(`${listening.url}/work`, { signal: caller.signal }).catch((err: unknown) => err);
      const signal = await asleep;
      expect(signal.aborted).toBe(false);
      caller.abort();
      await request;
      await new Promise<void>((resolve) => {
        if (signal.aborted) resolve();
        else signal.addEventListener('abort', () => resolve());
      });
      expect(signal.aborted).toBe(true);
      expect(handled).toBe(false);
    } finally {
      agent.close();
      await listening.close();
    }
  });

  it('rolls worker-panic dice per task', async () => {
    expect(h.agent.shouldPanic()).toBe(false);
    await admin(h, 'PUT', '/faults/p', { kind: 'worker-panic', params: { percent: 25 }, leaseMs: 5000 });
    h.rolls.push(0.1, 0.3, 0.2499);
    expect([h.agent.shouldPanic(), h.agent.shouldPanic(), h.agent.shouldPanic()]).toEqual([
      true,
      false,
      true,
    ]);
    expect(await metricValue(h.ctx.metrics, 'chaos_injected_total', { kind: 'worker-panic' })).toBe(2);
  });

  it('workerRecovery follows the default unless overridden', async () => {
    const off = await startHarness({ workerRecoveryDefault: false });
    try {
      expect(off.agent.workerRecovery()).toBe(false);
      await admin(off, 'PUT', '/settings', { workerRecovery: true, leaseMs: 1000 });
      expect(off.agent.workerRecovery()).toBe(true);
      expect(await (await fetch(`${off.url}/metrics`)).text()).toMatch(
        /chaos_worker_recovery_enabled\{[^}]*\} 1/,
      );
    } finally {
      await off.close();
    }
  });
});

describe('abortableSleep', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('wakes after the time, or as soon as the signal aborts, and leaves no timer behind', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    let woke = false;
    const full = abortableSleep(1000).then(() => {
      woke = true;
    });
    await vi.advanceTimersByTimeAsync(999);
    expect(woke).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await full;
    expect(woke).toBe(true);

    const controller = new AbortController();
    const cut = abortableSleep(60_000, controller.signal);
    expect(vi.getTimerCount()).toBe(1);
    controller.abort();
    await cut;
    expect(vi.getTimerCount()).toBe(0);
    await abortableSleep(60_000, controller.signal);
  });
});
