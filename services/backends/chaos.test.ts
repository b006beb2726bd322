import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { captureLog, metricValue, untilTrue } from '../lib/__fixtures__/observe.ts';
import { signRequest, TRUST_HEADERS } from '../lib/trust.ts';
import { type BackendConfig, type RunningBackend, startBackend } from './server.ts';

/** Faults, panics and trust on real backends over real sockets. */

const TOKEN = 'chaos-token';

function config(overrides: Partial<BackendConfig> = {}): BackendConfig {
  return {
    name: 'archive',
    instanceId: 'archive-chaos',
    port: 0,
    host: '127.0.0.1',
    adminToken: TOKEN,
    trustMode: 'zero',
    workerRecovery: true,
    ...overrides,
  };
}

function chaos(backend: RunningBackend, method: string, path: string, body?: unknown): Promise<Response> {
  return fetch(`${backend.url}/__chaos${path}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

describe('faults on a backend', () => {
  let backend: RunningBackend;
  let now = 1_700_000_000_000;
  const captured = captureLog();
  beforeAll(async () => {
    backend = await startBackend(config(), { log: captured.log, clock: () => now });
  });
  afterAll(() => backend.close());
  afterEach(async () => {
    await chaos(backend, 'DELETE', '/faults');
  });

  it('http-delay really delays the answer', async () => {
    await chaos(backend, 'PUT', '/faults/slow', {
      kind: 'http-delay',
      params: { delayMs: 150 },
      leaseMs: 60_000,
    });
    const started = performance.now();
    const res = await fetch(`${backend.url}/archives/1`);
    expect(res.status).toBe(200);
    // A lower bound only: a busy machine may be slower, never faster.
    expect(performance.now() - started).toBeGreaterThanOrEqual(140);
    expect(await metricValue(backend.ctx.metrics, 'chaos_injected_total', { kind: 'http-delay' })).toBe(1);
  });

  it('http-error at 100% answers its status on every call, and stops when the lease ends', async () => {
    await chaos(backend, 'PUT', '/faults/err', {
      kind: 'http-error',
      params: { status: 500, percent: 100 },
      leaseMs: 1000,
    });
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${backend.url}/archives/1`);
      expect(res.status).toBe(500);
      expect(((await res.json()) as { error: { reason: string } }).error.reason).toBe('INJECTED_FAULT');
    }
    expect((await fetch(`${backend.url}/healthz`)).status).toBe(200);
    now += 1000;
    expect((await fetch(`${backend.url}/archives/1`)).status).toBe(200);
    expect(backend.agent.faults()).toEqual([]);
  });

  it('worker-panic at 100% with recovery on: panics are counted and the service still answers', async () => {
    await chaos(backend, 'PUT', '/faults/panic', {
      kind: 'worker-panic',
      params: { percent: 100 },
      leaseMs: 60_000,
    });
    const recovered = () =>
      metricValue(backend.ctx.metrics, 'worker_panics_recovered_total', { task: 'record-view' });
    const before = await recovered();
    for (let i = 0; i < 5; i++) expect((await fetch(`${backend.url}/archives/${i + 1}`)).status).toBe(200);
    await untilTrue(() => backend.launcher.inFlight() === 0, 'the panicking tasks');
    expect(await recovered()).toBe(before + 5);
    const metrics = await (await fetch(`${backend.url}/metrics`)).text();
    expect(metrics).toMatch(/worker_panics_recovered_total\{task="record-view"[^}]*\} \d+/);
    expect(metrics).toContain('http_server_request_duration_seconds');
    expect(
      captured.lines().some((l) => l.level === 50 && l.task === 'record-view' && typeof l.err === 'object'),
    ).toBe(true);
  });

  it('a settings override turns recovery off for its lease, then back to the default', async () => {
    const res = await chaos(backend, 'PUT', '/settings', { workerRecovery: false, leaseMs: 5_000 });
    expect(res.status).toBe(200);
    expect(backend.agent.workerRecovery()).toBe(false);
    now += 5_000;
    const listing = (await (await chaos(backend, 'GET', '/faults')).json()) as { settings: unknown };
    expect(listing.settings).toEqual({
      workerRecovery: true,
      trust: 'zero',
      overridden: false,
      expiresAt: null,
    });
    expect(backend.agent.workerRecovery()).toBe(true);
  });

  it('the admin API validates before it applies', async () => {
    const res = await chaos(backend, 'PUT', '/faults/x', {
      kind: 'http-error',
      params: { status: 500, percent: 150 },
      leaseMs: 1000,
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({
      error: {
        reason: 'INVALID_FAULT',
        message: 'params.percent: expected a number from 0 to 100, got 150',
        metadata: { field: 'params.percent' },
      },
    });
    expect(backend.agent.faults()).toEqual([]);
  });
});

describe('a backend without an admin token', () => {
  it('has its admin API off', async () => {
    const backend = await startBackend(config({ adminToken: undefined }), { log: captureLog().log });
    try {
      const res = await chaos(backend, 'GET', '/faults');
      expect(res.status).toBe(404);
      expect(await res.json()).toMatchObject({ error: { reason: 'CHAOS_ADMIN_DISABLED' } });
    } finally {
      await backend.close();
    }
  });
});

describe('a backend in half trust', () => {
  const KEY = 'shared-key';
  const NOW = 1_700_000_000_000;
  let backend: RunningBackend;
  beforeAll(async () => {
    backend = await startBackend(config({ name: 'coin', trustMode: 'half', trustKey: KEY }), {
      log: captureLog().log,
      clock: () => NOW,
    });
  });
  afterAll(() => backend.close());

  const call = (path: string, headers: Record<string, string> = {}) =>
    fetch(`${backend.url}${path}`, { headers });
  const reasonOf = async (res: Response) =>
    ((await res.json()) as { error: { reason: string } }).error.reason;

  it('serves a call the gateway signed', async () => {
    const res = await call(
      '/coins/1',
      signRequest(KEY, 'gateway-resilient', { method: 'GET', path: '/coins/1', audience: 'coin' }, NOW),
    );
    expect(res.status).toBe(200);
  });

  it('refuses an unsigned call with 401 TRUST_MISSING', async () => {
    const res = await call('/coins/1');
    expect(res.status).toBe(401);
    expect(await reasonOf(res)).toBe('TRUST_MISSING');
  });

  it('refuses a tampered signature with 403 TRUST_FORGED', async () => {
    const headers = signRequest(KEY, 'gw', { method: 'GET', path: '/coins/1', audience: 'coin' }, NOW);
    headers[TRUST_HEADERS.signature] = headers[TRUST_HEADERS.signature]!.replace(/.$/, (c) =>
      c === 'f' ? 'e' : 'f',
    );
    const res = await call('/coins/1', headers);
    expect(res.status).toBe(403);
    expect(await reasonOf(res)).toBe('TRUST_FORGED');
  });

  it('refuses an old signature with 401 TRUST_EXPIRED', async () => {
    const res = await call(
      '/coins/1',
      signRequest(KEY, 'gw', { method: 'GET', path: '/coins/1', audience: 'coin' }, NOW - 60_000),
    );
    expect(res.status).toBe(401);
    expect(await reasonOf(res)).toBe('TRUST_EXPIRED');
  });

  it('refuses before any fault spends time on the call', async () => {
    await chaos(backend, 'PUT', '/faults/slow', {
      kind: 'http-delay',
      params: { delayMs: 5_000 },
      leaseMs: 60_000,
    });
    try {
      const res = await call('/coins/1');
      expect(res.status).toBe(401);
      expect(await metricValue(backend.ctx.metrics, 'chaos_injected_total', { kind: 'http-delay' })).toBe(0);
    } finally {
      await chaos(backend, 'DELETE', '/faults');
    }
  });

  it('exempts probes, metrics and the admin API, and counts refusals', async () => {
    for (const path of ['/healthz', '/readyz', '/metrics']) expect((await call(path)).status).toBe(200);
    expect((await chaos(backend, 'GET', '/faults')).status).toBe(200);
    const metrics = await (await call('/metrics')).text();
    expect(metrics).toMatch(/trust_rejected_total\{reason="missing"[^}]*\} [1-9]/);
    expect(
      await metricValue(backend.ctx.metrics, 'trust_rejected_total', { reason: 'forged' }),
    ).toBeGreaterThan(0);
    expect(
      await metricValue(backend.ctx.metrics, 'trust_rejected_total', { reason: 'expired' }),
    ).toBeGreaterThan(0);
  });
});
