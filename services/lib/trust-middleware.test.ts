import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { captureLog, metricValue } from './__fixtures__/observe.ts';
import { createServiceApp, type Listening, listen, type ServiceContext } from './service-app.ts';
import { SIGNATURE_MAX_SKEW_MS, signRequest, TRUST_HEADERS, type TrustMode } from './trust.ts';
import { trustMiddleware } from './trust-middleware.ts';

const KEY = 'lab-trust-key';
const NOW = 1_700_000_000_000;

async function serve(mode: TrustMode, key?: string): Promise<Listening & { ctx: ServiceContext }> {
  const { app, ctx, finalize } = createServiceApp({
    service: 'test',
    instanceId: 't',
    log: captureLog().log,
    processMetrics: false,
  });
  app.use(trustMiddleware({ ctx, mode, ...(key ? { key } : {}), clock: () => NOW }));
  app.get('/__chaos/faults', (_req, res) => {
    res.json({ faults: [] });
  });
  app.get('/things/:id', (req, res) => {
    res.json({ id: req.params.id });
  });
  finalize();
  ctx.readiness.set(true);
  return { ...(await listen(app, 0)), ctx };
}

async function reason(res: Response): Promise<string> {
  return ((await res.json()) as { error: { reason: string } }).error.reason;
}

describe('trust middleware, half trust', () => {
  let server: Listening & { ctx: ServiceContext };
  beforeAll(async () => {
    server = await serve('half', KEY);
  });
  afterAll(() => server.close());

  const get = (path: string, headers: Record<string, string> = {}) =>
    fetch(`${server.url}${path}`, { headers });

  it('lets a call signed over its exact path and query through', async () => {
    const path = '/things/7?fields=a,b';
    const res = await get(path, signRequest(KEY, 'gateway-resilient', { method: 'GET', path }, NOW - 1000));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ id: '7' });
  });

  it('refuses an unsigned call with 401 TRUST_MISSING', async () => {
    const res = await get('/things/7');
    expect(res.status).toBe(401);
    expect(await reason(res)).toBe('TRUST_MISSING');
  });

  it('refuses a call missing one of the headers with 401 TRUST_MISSING', async () => {
    const headers = signRequest(KEY, 'gw', { method: 'GET', path: '/things/7' }, NOW);
    delete headers[TRUST_HEADERS.caller];
    const res = await get('/things/7', headers);
    expect(res.status).toBe(401);
    expect(await reason(res)).toBe('TRUST_MISSING');
  });

  it('refuses a tampered signature with 403 TRUST_FORGED', async () => {
    const headers = signRequest(KEY, 'gw', { method: 'GET', path: '/things/7' }, NOW);
    const sig = headers[TRUST_HEADERS.signature]!;
    headers[TRUST_HEADERS.signature] = `${sig.slice(0, -1)}${sig.endsWith('0') ? '1' : '0'}`;
    const res = await get('/things/7', headers);
    expect(res.status).toBe(403);
    expect(await reason(res)).toBe('TRUST_FORGED');
  });

  it('refuses a signature replayed on another path, by another caller, or made with another key', async () => {
    const signed = signRequest(KEY, 'gw', { method: 'GET', path: '/things/7' }, NOW);
    expect((await get('/things/8', signed)).status).toBe(403);
    expect((await get('/things/7', { ...signed, [TRUST_HEADERS.caller]: 'intruder' })).status).toBe(403);
    const otherKey = signRequest('not-the-key', 'gw', { method: 'GET', path: '/things/7' }, NOW);
    expect((await get('/things/7', otherKey)).status).toBe(403);
  });

  it('refuses a signature older than the allowed skew with 401 TRUST_EXPIRED', async () => {
    const path = '/things/7';
    const old = signRequest(KEY, 'gw', { method: 'GET', path }, NOW - SIGNATURE_MAX_SKEW_MS - 1);
    const res = await get(path, old);
    expect(res.status).toBe(401);
    expect(await reason(res)).toBe('TRUST_EXPIRED');
  });

  it('exempts the platform’s paths', async () => {
    for (const path of ['/healthz', '/readyz', '/metrics', '/__chaos/faults']) {
      expect((await get(path)).status).toBe(200);
    }
  });

  it('counts refusals by reason', async () => {
    const before = await metricValue(server.ctx.metrics, 'trust_rejected_total', { reason: 'missing' });
    await get('/things/1');
    await get('/things/2');
    expect(await metricValue(server.ctx.metrics, 'trust_rejected_total', { reason: 'missing' })).toBe(
      before + 2,
    );
    expect(
      await metricValue(server.ctx.metrics, 'trust_rejected_total', { reason: 'forged' }),
    ).toBeGreaterThan(0);
    expect(
      await metricValue(server.ctx.metrics, 'trust_rejected_total', { reason: 'expired' }),
    ).toBeGreaterThan(0);
  });
});

describe('trust middleware, zero trust', () => {
  it('believes everyone', async () => {
    const server = await serve('zero');
    try {
      expect((await fetch(`${server.url}/things/1`)).status).toBe(200);
    } finally {
      await server.close();
    }
  });

  it('refuses to start half trust without a key', () => {
    const { ctx } = createServiceApp({
      service: 't',
      instanceId: 't',
      log: captureLog().log,
      processMetrics: false,
    });
    expect(() => trustMiddleware({ ctx, mode: 'half' })).toThrow(/needs a key \(TRUST_KEY\)/);
  });
});
