import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createLabPki, tlsFor } from '../../lab/pki.ts';
import { BACKENDS, type BackendName, STRATEGIES, type Strategy } from '../topology.ts';
import type { RunningGateway } from './server.ts';
import {
  ADMIN_TOKEN,
  type Fleet,
  getPage,
  median,
  metric,
  startFleet,
  startTestGateway,
} from './test-fleet.ts';

/**
 * The gateway against real backends over loopback: every strategy, the faults the lab
 * injects, and what each strategy makes of them.
 */
let fleet: Fleet;
const gateways = {} as Record<Strategy, RunningGateway>;
const extra: RunningGateway[] = [];
// Each test reads its own videos, so one test's cache never answers for another.
let nextAid = 100;
const freshAid = () => nextAid++;

beforeAll(async () => {
  fleet = await startFleet();
  for (const strategy of STRATEGIES) gateways[strategy] = await startTestGateway(fleet.urls, { strategy });
});

afterEach(async () => {
  await fleet.clearFaults();
  await Promise.all(extra.splice(0).map((g) => g.close()));
});

afterAll(async () => {
  await Promise.all(STRATEGIES.map((s) => gateways[s]?.close()));
  await fleet?.close();
});

async function gatewayWith(...args: Parameters<typeof startTestGateway>): Promise<RunningGateway> {
  const gateway = await startTestGateway(...args);
  extra.push(gateway);
  return gateway;
}

/** A base URL nothing listens on: a backend instance that is down. */
async function deadUrls(): Promise<string[]> {
  const { createServer } = await import('node:net');
  const ports = await Promise.all(
    [0, 1].map(
      () =>
        new Promise<number>((resolve) => {
          const server = createServer().listen(0, '127.0.0.1', () => {
            const { port } = server.address() as { port: number };
            server.close(() => resolve(port));
          });
        }),
    ),
  );
  return ports.map((port) => `http://127.0.0.1:${port}`);
}

describe.each(STRATEGIES)('the video page through the %s gateway', (strategy) => {
  it('assembles archive, uploader, VIP, likes and coins', async () => {
    const page = await getPage(gateways[strategy].url, 7);
    expect(page.status).toBe(200);
    expect(page.headers.get('x-strategy')).toBe(strategy);
    expect(page.headers.get('x-degraded')).toBeNull();
    expect(page.body).toMatchObject({
      aid: 7,
      bvid: expect.stringMatching(/^BV/),
      title: expect.any(String),
      duration: expect.any(Number),
      owner: {
        mid: expect.any(Number),
        name: expect.any(String),
        face: expect.any(String),
        level: expect.any(Number),
        vip: { type: expect.any(String), active: expect.any(Boolean) },
      },
      stats: { likes: expect.any(Number), coins: expect.any(Number) },
      degraded: [],
      stale: [],
      strategy,
    });
    expect(page.body).not.toHaveProperty('ownerMid');
  });

  it('answers 404 VIDEO_NOT_FOUND for an unknown video', async () => {
    const page = await getPage(gateways[strategy].url, 999_999);
    expect(page.status).toBe(404);
    expect(page.body.error.reason).toBe('VIDEO_NOT_FOUND');
  });

  it.each(['0', '-3', 'abc', '1.5'])('answers 400 INVALID_AID for aid %j', async (aid) => {
    const page = await getPage(gateways[strategy].url, aid);
    expect(page.status).toBe(400);
    expect(page.body.error.reason).toBe('INVALID_AID');
    expect(page.body.error.message).toContain(JSON.stringify(aid));
  });

  it('answers 400 INVALID_TIMEOUT for a bad x-request-timeout', async () => {
    const page = await getPage(gateways[strategy].url, 7, { 'x-request-timeout': 'soon' });
    expect(page.status).toBe(400);
    expect(page.body.error.reason).toBe('INVALID_TIMEOUT');
  });

  it('propagates its request id to every backend it calls', async () => {
    const requestId = `trace-${strategy}-${freshAid()}`;
    const page = await getPage(gateways[strategy].url, freshAid(), { 'x-request-id': requestId });
    expect(page.status).toBe(200);
    const services = new Set(
      fleet.logs
        .filter((line) => line.includes(requestId))
        .map((line) => (JSON.parse(line) as { service: string }).service),
    );
    expect([...services].sort()).toEqual([...BACKENDS].sort());
  });
});

describe('a 300 ms delay on coin', () => {
  it('slows naive and parallel by the delay; resilient degrades coin well before it', async () => {
    const before = {} as Record<Strategy, number[]>;
    const after = {} as Record<Strategy, number[]>;
    for (const strategy of STRATEGIES) {
      before[strategy] = [];
      for (let i = 0; i < 5; i++)
        before[strategy].push((await getPage(gateways[strategy].url, freshAid())).ms);
    }
    await fleet.fault('coin', 'http-delay', { delayMs: 300 });
    for (const strategy of STRATEGIES) {
      after[strategy] = [];
      for (let i = 0; i < 5; i++) {
        const page = await getPage(gateways[strategy].url, freshAid());
        after[strategy].push(page.ms);
        expect(page.status).toBe(200);
        if (strategy === 'resilient') {
          expect(page.body.degraded).toEqual(['coin']);
          expect(page.headers.get('x-degraded')).toBe('coin');
          expect(page.body.stats.coins).toBeNull();
          expect(page.body.stats.likes).toEqual(expect.any(Number));
          expect(page.ms).toBeLessThan(250);
        } else {
          expect(page.body.degraded).toEqual([]);
          expect(page.ms).toBeGreaterThanOrEqual(295);
        }
      }
    }
    const p50 = (xs: Record<Strategy, number[]>) =>
      Object.fromEntries(STRATEGIES.map((s) => [s, Math.round(median(xs[s]))]));
    console.log('median page latency (ms) without fault', p50(before), 'with 300 ms coin delay', p50(after));
    const resilient = gateways.resilient.ctx.metrics;
    expect(await metric(resilient, 'gateway_degraded_total', { dependency: 'coin' })).toBeGreaterThanOrEqual(
      5,
    );
    expect(
      await metric(resilient, 'gateway_dependency_duration_seconds_count', {
        dependency: 'coin',
        outcome: 'timeout',
      }),
    ).toBeGreaterThanOrEqual(5);
  });
});

describe('a strong dependency down', () => {
  it('fails every strategy; resilient says which dependency and why', async () => {
    const urls = { ...fleet.urls, archive: await deadUrls() };
    for (const strategy of STRATEGIES) {
      const gateway = await gatewayWith(urls, { strategy });
      const page = await getPage(gateway.url, freshAid());
      expect(page.status, strategy).toBe(503);
      expect(page.body.error.reason).toBe('DEPENDENCY_UNAVAILABLE');
      expect(page.body.error.metadata.dependency).toBe('archive');
    }
  });

  it('shows every archive instance as not ready in /api/upstreams', async () => {
    const gateway = await gatewayWith({ ...fleet.urls, archive: await deadUrls() });
    const response = await fetch(`${gateway.url}/api/upstreams`);
    const body = (await response.json()) as {
      upstreams: Record<BackendName, { url: string; ready: boolean }[]>;
    };
    expect(body.upstreams.archive.map((u) => u.ready)).toEqual([false, false]);
    expect(body.upstreams.account.map((u) => u.ready)).toEqual([true, true]);
    expect(await metric(gateway.ctx.metrics, 'gateway_upstream_ready', { dependency: 'archive' })).toBe(0);
  });

  it('times out a slow archive within the caller budget with 504 DEPENDENCY_TIMEOUT', async () => {
    await fleet.fault('archive', 'http-delay', { delayMs: 1000 });
    const page = await getPage(gateways.resilient.url, freshAid(), { 'x-request-timeout': '150' });
    expect(page.status).toBe(504);
    expect(page.body.error.reason).toBe('DEPENDENCY_TIMEOUT');
    expect(page.body.error.metadata.dependency).toBe('archive');
    expect(page.ms).toBeLessThan(900);
  });
});

describe('a weak dependency failing every call', () => {
  it('degrades the resilient page and fails the parallel and naive ones', async () => {
    await fleet.fault('like', 'http-error', { status: 500, percent: 100 });
    const resilient = await getPage(gateways.resilient.url, freshAid());
    expect(resilient.status).toBe(200);
    expect(resilient.body.degraded).toEqual(['like']);
    expect(resilient.body.stats.likes).toBeNull();
    expect(resilient.headers.get('x-degraded')).toBe('like');
    for (const strategy of ['parallel', 'naive'] as const) {
      const page = await getPage(gateways[strategy].url, freshAid());
      expect(page.status, strategy).toBe(502);
      expect(page.body.error.reason).toBe('DEPENDENCY_FAILED');
      expect(page.body.error.metadata.dependency).toBe('like');
    }
  });

  it('moves the breaker: drops are counted once failures are sustained', async () => {
    const gateway = await gatewayWith(fleet.urls, { strategy: 'resilient' });
    await fleet.fault('like', 'http-error', { status: 500, percent: 100 });
    const registry = gateway.ctx.metrics;
    for (let i = 0; i < 40; i++) {
      const page = await getPage(gateway.url, freshAid());
      expect(page.status).toBe(200);
      expect(page.body.degraded).toEqual(['like']);
    }
    expect(await metric(registry, 'gateway_breaker_drops_total', { dependency: 'like' })).toBeGreaterThan(0);
    expect(await metric(registry, 'gateway_breaker_state', { dependency: 'like' })).toBe(1);
    expect(
      await metric(registry, 'gateway_breaker_drop_probability', { dependency: 'like' }),
    ).toBeGreaterThan(0.5);
    expect(
      await metric(registry, 'gateway_dependency_duration_seconds_count', {
        dependency: 'like',
        outcome: 'dropped',
      }),
    ).toBeGreaterThan(0);
    expect(await metric(registry, 'gateway_breaker_state', { dependency: 'coin' })).toBe(0);
  });
});

describe('the resilient cache', () => {
  it('serves a stale answer when the dependency fails, named in stale and not in degraded', async () => {
    let now = Date.now();
    const gateway = await gatewayWith(fleet.urls, { strategy: 'resilient' }, { clock: () => now });
    const aid = freshAid();
    const first = await getPage(gateway.url, aid);
    expect(first.status).toBe(200);

    const hit = await getPage(gateway.url, aid);
    expect(await metric(gateway.ctx.metrics, 'gateway_cache_hits_total', { dependency: 'archive' })).toBe(1);
    expect(hit.body.stale).toEqual([]);

    await fleet.fault('like', 'http-error', { status: 500, percent: 100 });
    now += 5_000; // past like's TTL (1 s), well within the staleness limit (60 s)
    const stale = await getPage(gateway.url, aid);
    expect(stale.status).toBe(200);
    expect(stale.body.stale).toEqual(['like']);
    expect(stale.body.degraded).toEqual([]);
    expect(stale.body.stats.likes).toBe(first.body.stats.likes);
    expect(stale.headers.get('x-degraded')).toBeNull();
    expect(
      await metric(gateway.ctx.metrics, 'gateway_cache_stale_serves_total', { dependency: 'like' }),
    ).toBe(1);

    now += 120_000; // past the staleness limit: nothing left to serve, the page degrades
    const gone = await getPage(gateway.url, aid);
    expect(gone.body.degraded).toEqual(['like']);
    expect(gone.body.stale).toEqual([]);
  });
});

describe('retries', () => {
  it('retries a temporary error on the other instance, and the page is whole', async () => {
    await fleet.fault('coin', 'http-error', { status: 503, percent: 100 }, 0);
    for (let i = 0; i < 4; i++) {
      const page = await getPage(gateways.resilient.url, freshAid());
      expect(page.status).toBe(200);
      expect(page.body.degraded).toEqual([]);
      expect(page.body.stats.coins).toEqual(expect.any(Number));
    }
    expect(
      await metric(gateways.resilient.ctx.metrics, 'gateway_retries_total', { dependency: 'coin' }),
    ).toBeGreaterThanOrEqual(1);
  });

  it('does not retry an error that is not temporary', async () => {
    const gateway = await gatewayWith(fleet.urls, { strategy: 'resilient' });
    await fleet.fault('coin', 'http-error', { status: 500, percent: 100 }, 0);
    for (let i = 0; i < 4; i++) await getPage(gateway.url, freshAid());
    expect(await metric(gateway.ctx.metrics, 'gateway_retries_total', { dependency: 'coin' })).toBe(0);
  });
});

describe('load shedding', () => {
  it('sheds pages beyond the concurrency limit with 503 OVERLOADED', async () => {
    const gateway = await gatewayWith(fleet.urls, { strategy: 'resilient', maxConcurrency: 1 });
    await fleet.fault('archive', 'http-delay', { delayMs: 150 });
    const pages = await Promise.all([0, 1, 2, 3].map(() => getPage(gateway.url, freshAid())));
    const statuses = pages.map((p) => p.status).sort();
    expect(statuses).toContain(200);
    expect(statuses).toContain(503);
    const shed = pages.find((p) => p.status === 503);
    expect(shed?.body.error.reason).toBe('OVERLOADED');
    expect(await metric(gateway.ctx.metrics, 'gateway_shed_total')).toBeGreaterThanOrEqual(1);
    expect(await metric(gateway.ctx.metrics, 'gateway_inflight')).toBe(0);
  });
});

describe('half trust', () => {
  it('signs every call: backends that check signatures accept the gateway, refuse an unsigned one', async () => {
    const trusted = await startFleet({ replicas: 1, trustMode: 'half', trustKey: 'lab-key' });
    try {
      const signing = await gatewayWith(trusted.urls, {
        strategy: 'parallel',
        trustMode: 'half',
        trustKey: 'lab-key',
      });
      const page = await getPage(signing.url, freshAid());
      expect(page.status).toBe(200);

      const unsigned = await gatewayWith(trusted.urls, { strategy: 'parallel' });
      const refused = await getPage(unsigned.url, freshAid());
      expect(refused.status).toBe(502);
      expect(refused.body.error.metadata.upstreamReason).toBe('TRUST_MISSING');
    } finally {
      await trusted.close();
    }
  });
});

describe('full trust', () => {
  it('calls every backend over mutual TLS; a gateway without the certificate is refused', async () => {
    const pki = await createLabPki();
    const trusted = await startFleet({
      replicas: 1,
      trustMode: 'full',
      trustKey: 'lab-key',
      tls: (name) => tlsFor(pki, name),
    });
    try {
      const secure = await gatewayWith(trusted.urls, {
        strategy: 'parallel',
        trustMode: 'full',
        trustKey: 'lab-key',
        tls: tlsFor(pki, 'gateway'),
      });
      const page = await getPage(secure.url, freshAid());
      expect(page.status).toBe(200);

      // Signed, but in plain HTTP: full trust wants the certificate.
      const signing = await gatewayWith(trusted.urls, {
        strategy: 'parallel',
        trustMode: 'half',
        trustKey: 'lab-key',
      });
      const refused = await getPage(signing.url, freshAid());
      expect(refused.status).toBe(502);
      expect(refused.body.error.metadata.upstreamReason).toBe('TRUST_NEEDS_MTLS');
    } finally {
      await trusted.close();
    }
  });

  it('switches mode for a settings lease on the gateway and the backends, and back', async () => {
    const pki = await createLabPki();
    const trusted = await startFleet({
      replicas: 1,
      trustMode: 'half',
      trustKey: 'lab-key',
      tls: (name) => tlsFor(pki, name),
    });
    try {
      const gateway = await gatewayWith(trusted.urls, {
        strategy: 'parallel',
        trustMode: 'half',
        trustKey: 'lab-key',
        tls: tlsFor(pki, 'gateway'),
        adminToken: ADMIN_TOKEN,
      });
      const settle = async (url: string, trust: string) => {
        const res = await fetch(`${url}/__chaos/settings`, {
          method: 'PUT',
          headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
          body: JSON.stringify({ trust, leaseMs: 60_000 }),
        });
        expect(res.status).toBe(200);
      };
      const everyBackend = BACKENDS.flatMap((name) => trusted.urls[name]);
      for (const url of [...everyBackend, gateway.url]) await settle(url, 'full');
      expect((await getPage(gateway.url, freshAid())).status).toBe(200);
      // The backends now refuse plain calls, so the page above came over TLS.
      const plain = await fetch(`${trusted.urls.coin[0]}/coins/1`);
      expect(plain.status).toBe(401);
      for (const url of [...everyBackend, gateway.url]) await settle(url, 'zero');
      expect((await getPage(gateway.url, freshAid())).status).toBe(200);
      expect((await fetch(`${trusted.urls.coin[0]}/coins/1`)).status).toBe(200);
    } finally {
      await trusted.close();
    }
  });
});

describe('the metrics', () => {
  it('count pages by strategy, status and degradation', async () => {
    await getPage(gateways.parallel.url, 7);
    await getPage(gateways.parallel.url, 999_999);
    const registry = gateways.parallel.ctx.metrics;
    expect(
      await metric(registry, 'gateway_requests_total', {
        strategy: 'parallel',
        status: '200',
        degraded: 'false',
      }),
    ).toBeGreaterThanOrEqual(1);
    expect(await metric(registry, 'gateway_requests_total', { status: '404' })).toBeGreaterThanOrEqual(1);
    const text = await registry.metrics();
    for (const name of [
      'gateway_requests_total',
      'gateway_dependency_duration_seconds',
      'gateway_degraded_total',
      'gateway_breaker_drops_total',
      'gateway_breaker_drop_probability',
      'gateway_breaker_state',
      'gateway_cache_hits_total',
      'gateway_cache_stale_serves_total',
      'gateway_retries_total',
      'gateway_retry_budget_exhausted_total',
      'gateway_shed_total',
      'gateway_inflight',
      'gateway_upstream_ready',
    ]) {
      expect(text).toContain(`# TYPE ${name} `);
    }
  });
});
