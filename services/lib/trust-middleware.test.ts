import { Pool } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLabPki, type LabPki, tlsFor } from '../../lab/pki.ts';
import { type CapturedLog, captureLog, metricValue } from './__fixtures__/observe.ts';
import { createServiceApp, type Listening, listen, type ServiceContext } from './service-app.ts';
import type { TlsMaterial } from './tls.ts';
import {
  SIGNATURE_MAX_SKEW_MS,
  type SignedRequest,
  signRequest,
  TRUST_HEADERS,
  type TrustMode,
} from './trust.ts';
import { trustMiddleware } from './trust-middleware.ts';

const KEY = 'lab-trust-key';
const NOW = 1_700_000_000_000;
/** The service the test server plays: signatures name it as their audience. */
const SERVICE = 'coin';
const at = (path: string): SignedRequest => ({ method: 'GET', path, audience: SERVICE });

type Served = Listening & { ctx: ServiceContext; captured: CapturedLog; handled: () => number };

async function serve(mode: TrustMode | (() => TrustMode), key?: string, tls?: TlsMaterial): Promise<Served> {
  const captured = captureLog();
  const { app, ctx, finalize } = createServiceApp({
    service: SERVICE,
    instanceId: 't',
    log: captured.log,
    processMetrics: false,
  });
  let handled = 0;
  app.use(trustMiddleware({ ctx, mode, ...(key ? { key } : {}), tls: tls !== undefined, clock: () => NOW }));
  app.get('/__chaos/faults', (_req, res) => {
    res.json({ faults: [] });
  });
  app.get('/things/:id', (req, res) => {
    handled += 1;
    res.json({ id: req.params.id });
  });
  finalize();
  ctx.readiness.set(true);
  return { ...(await listen(app, 0, '127.0.0.1', tls)), ctx, captured, handled: () => handled };
}

async function reason(res: Response): Promise<string> {
  return ((await res.json()) as { error: { reason: string } }).error.reason;
}

describe('trust middleware, half trust', () => {
  let server: Served;
  beforeAll(async () => {
    server = await serve('half', KEY);
  });
  afterAll(() => server.close());

  const get = (path: string, headers: Record<string, string> = {}) =>
    fetch(`${server.url}${path}`, { headers });

  it('lets a call signed over its exact path and query through', async () => {
    const path = '/things/7?fields=a,b';
    const res = await get(path, signRequest(KEY, 'gateway-resilient', at(path), NOW - 1000));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ id: '7' });
  });

  it('refuses an unsigned call with 401 TRUST_MISSING', async () => {
    const res = await get('/things/7');
    expect(res.status).toBe(401);
    expect(await reason(res)).toBe('TRUST_MISSING');
  });

  it('refuses a call missing one of the headers with 401 TRUST_MISSING', async () => {
    const headers = signRequest(KEY, 'gw', at('/things/7'), NOW);
    delete headers[TRUST_HEADERS.caller];
    const res = await get('/things/7', headers);
    expect(res.status).toBe(401);
    expect(await reason(res)).toBe('TRUST_MISSING');
  });

  it('refuses a tampered signature with 403 TRUST_FORGED', async () => {
    const headers = signRequest(KEY, 'gw', at('/things/7'), NOW);
    const sig = headers[TRUST_HEADERS.signature]!;
    headers[TRUST_HEADERS.signature] = `${sig.slice(0, -1)}${sig.endsWith('0') ? '1' : '0'}`;
    const res = await get('/things/7', headers);
    expect(res.status).toBe(403);
    expect(await reason(res)).toBe('TRUST_FORGED');
  });

  it('refuses a signature replayed on another path, by another caller, or made with another key', async () => {
    const signed = signRequest(KEY, 'gw', at('/things/7'), NOW);
    expect((await get('/things/8', signed)).status).toBe(403);
    expect((await get('/things/7', { ...signed, [TRUST_HEADERS.caller]: 'intruder' })).status).toBe(403);
    const otherKey = signRequest('not-the-key', 'gw', at('/things/7'), NOW);
    expect((await get('/things/7', otherKey)).status).toBe(403);
  });

  it('refuses a signature older than the allowed skew with 401 TRUST_EXPIRED', async () => {
    const path = '/things/7';
    const old = signRequest(KEY, 'gw', at(path), NOW - SIGNATURE_MAX_SKEW_MS - 1);
    const res = await get(path, old);
    expect(res.status).toBe(401);
    expect(await reason(res)).toBe('TRUST_EXPIRED');
  });

  it('serves a signed call once: the same call again is refused with 401 TRUST_REPLAYED', async () => {
    const path = '/things/9';
    const signed = signRequest(KEY, 'gateway-naive', at(path), NOW);
    const before = server.handled();
    expect((await get(path, signed)).status).toBe(200);
    for (let i = 0; i < 3; i++) {
      const again = await get(path, signed);
      expect(again.status).toBe(401);
      expect(await reason(again)).toBe('TRUST_REPLAYED');
    }
    expect(server.handled()).toBe(before + 1);
    // A new call (a new nonce) to the same path is served.
    expect((await get(path, signRequest(KEY, 'gateway-naive', at(path), NOW))).status).toBe(200);
  });

  it('refuses a call signed for another service', async () => {
    const path = '/things/7';
    const forLike = signRequest(KEY, 'gw', { ...at(path), audience: 'like' }, NOW);
    const res = await get(path, forLike);
    expect(res.status).toBe(403);
    expect(await reason(res)).toBe('TRUST_FORGED');
  });

  it('refuses a good signature with junk after it, or in upper case', async () => {
    const path = '/things/7';
    for (const spoil of [(sig: string) => `${sig}zz`, (sig: string) => sig.toUpperCase()]) {
      const signed = signRequest(KEY, 'gw', at(path), NOW);
      const res = await get(path, {
        ...signed,
        [TRUST_HEADERS.signature]: spoil(signed[TRUST_HEADERS.signature] as string),
      });
      expect(res.status).toBe(403);
      expect(await reason(res)).toBe('TRUST_FORGED');
    }
  });

  it('never writes a signature or a nonce in full to its log', async () => {
    const path = '/things/11';
    const signed = signRequest(KEY, 'gw', at(path), NOW);
    await get(path, signed);
    await get(path, signed);
    const text = server.captured
      .lines()
      .map((line) => JSON.stringify(line))
      .join('\n');
    expect(text).toContain((signed[TRUST_HEADERS.signature] as string).slice(0, 8));
    expect(text).not.toContain(signed[TRUST_HEADERS.signature]);
    expect(text).not.toContain(signed[TRUST_HEADERS.nonce]);
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
    expect(() => trustMiddleware({ ctx, mode: 'full', key: KEY })).toThrow(/needs the lab certificates/);
    expect(() => trustMiddleware({ ctx, mode: 'full', tls: true })).toThrow(/needs a key/);
  });
});

describe('trust middleware, full trust (mutual TLS)', () => {
  let pki: LabPki;
  let server: Served;
  const pools: Pool[] = [];
  const over = (tls: Partial<TlsMaterial> & { ca: string }, servername = SERVICE): Pool => {
    const pool = new Pool(server.url.replace('http:', 'https:'), { connect: { ...tls, servername } });
    pools.push(pool);
    return pool;
  };
  beforeAll(async () => {
    pki = await createLabPki();
    server = await serve('full', KEY, tlsFor(pki, 'coin'));
  });
  afterAll(async () => {
    await Promise.all(pools.map((p) => p.close()));
    await server.close();
  });

  it('serves the gateway over mutual TLS, with its client certificate and its signature', async () => {
    const gateway = over(tlsFor(pki, 'gateway'));
    const path = '/things/3';
    const res = await gateway.request({
      path,
      method: 'GET',
      headers: signRequest(KEY, 'gw', at(path), NOW),
    });
    expect(res.statusCode).toBe(200);
    expect(await res.body.json()).toEqual({ id: '3' });
    // Over TLS, unsigned: full trust is half trust's signatures, encrypted.
    const unsigned = await gateway.request({ path, method: 'GET' });
    expect(unsigned.statusCode).toBe(401);
    expect(((await unsigned.body.json()) as { error: { reason: string } }).error.reason).toBe(
      'TRUST_MISSING',
    );
  });

  it('refuses a plain call, even signed, before any handler: 401 TRUST_NEEDS_MTLS', async () => {
    const before = server.handled();
    const path = '/things/3';
    for (const headers of [{}, signRequest(KEY, 'gw', at(path), NOW)]) {
      const res = await fetch(`${server.url}${path}`, { headers });
      expect(res.status).toBe(401);
      expect(await reason(res)).toBe('TRUST_NEEDS_MTLS');
    }
    expect(server.handled()).toBe(before);
  });

  it('ends the handshake of a client without a certificate, or with a backend’s: no HTTP at all', async () => {
    const before = server.handled();
    const noCert = over({ ca: pki.ca });
    await expect(noCert.request({ path: '/things/3', method: 'GET' })).rejects.toThrow();
    const backendAsClient = over(tlsFor(pki, 'like'));
    await expect(backendAsClient.request({ path: '/things/3', method: 'GET' })).rejects.toThrow();
    expect(server.handled()).toBe(before);
  });

  it('refuses a certificate from another CA', async () => {
    const other = await createLabPki();
    const res = over({ ...tlsFor(other, 'gateway'), ca: pki.ca });
    await expect(res.request({ path: '/things/3', method: 'GET' })).rejects.toThrow();
  });

  it('still answers the platform’s paths in plain HTTP (probes, scraping, the fault agent)', async () => {
    for (const path of ['/healthz', '/readyz', '/metrics', '/__chaos/faults']) {
      expect((await fetch(`${server.url}${path}`)).status).toBe(200);
    }
  });
});

describe('trust middleware, a mode switched while it runs', () => {
  it('reads the mode on every call', async () => {
    const pki = await createLabPki();
    let mode: TrustMode = 'zero';
    const server = await serve(() => mode, KEY, tlsFor(pki, 'coin'));
    const gateway = new Pool(server.url.replace('http:', 'https:'), {
      connect: { ...tlsFor(pki, 'gateway'), servername: SERVICE },
    });
    try {
      const plain = async () => {
        const res = await fetch(`${server.url}/things/1`);
        await res.arrayBuffer();
        return res.status;
      };
      expect(await plain()).toBe(200);
      mode = 'half';
      expect(await plain()).toBe(401);
      mode = 'full';
      expect(await plain()).toBe(401);
      const res = await gateway.request({
        path: '/things/1',
        method: 'GET',
        headers: signRequest(KEY, 'gw', at('/things/1'), NOW),
      });
      expect(res.statusCode).toBe(200);
      await res.body.dump();
      mode = 'zero';
      expect(await plain()).toBe(200);
    } finally {
      await gateway.close();
      await server.close();
    }
  });
});
