import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningFaultProxy, startFaultProxy } from '../../services/fault-proxy/proxy.ts';
import { createGatewayMetrics } from '../../services/gateway/metrics.ts';
import { captureLog } from '../../services/lib/__fixtures__/observe.ts';
import { createFaultAgent } from '../../services/lib/fault-agent.ts';
import { createServiceApp, type Listening, listen } from '../../services/lib/service-app.ts';
import { parsePromText } from '../prom-text.ts';
import { createLabFeed, groupFaults, histogramQuantile, secondBetween, VIDEO_ROUTE } from './lab-feed.ts';

describe('secondBetween: two scrapes of a gateway make one second', () => {
  const scrape = (at: number, lines: string[]) => ({ samples: parsePromText(lines.join('\n')), at });
  const bucket = (le: string, n: number, route = VIDEO_ROUTE) =>
    `http_server_request_duration_seconds_bucket{le="${le}",method="GET",route="${route}",status="200",service="gateway"} ${n}`;
  const before = scrape(10_000, [
    'gateway_requests_total{strategy="naive",status="200",degraded="false"} 100',
    'gateway_requests_total{strategy="naive",status="200",degraded="true"} 10',
    'gateway_requests_total{strategy="naive",status="503",degraded="false"} 5',
    bucket('0.01', 60),
    bucket('0.1', 110),
    bucket('+Inf', 115),
    bucket('0.01', 5000, '/metrics'),
  ]);

  it('takes rates from the counters and p50/p99 from the video route’s histogram buckets', () => {
    const after = scrape(12_000, [
      'gateway_requests_total{strategy="naive",status="200",degraded="false"} 130',
      'gateway_requests_total{strategy="naive",status="200",degraded="true"} 20',
      'gateway_requests_total{strategy="naive",status="503",degraded="false"} 15',
      bucket('0.01', 60),
      bucket('0.1', 110 + 50),
      bucket('+Inf', 115 + 50),
      bucket('0.01', 9000, '/metrics'),
    ]);
    const figures = secondBetween(before, after);
    // 50 requests in 2 s: 30 full pages, 10 degraded ones, 10 errors.
    expect(figures?.requests).toBe(50);
    expect(figures?.second).toMatchObject({ rps: 25, successRate: 0.8, degradedRate: 0.2, errors: 10 });
    // All 50 took 10–100 ms (the /metrics route does not count): p50 is the bucket's middle.
    expect(figures?.second.p50).toBeCloseTo(55, 6);
    expect(figures?.second.p99).toBeCloseTo(10 + 90 * 0.99, 6);
  });

  it('gives nothing across a restart (a counter went down) or without time between the scrapes', () => {
    const restarted = scrape(11_000, [
      'gateway_requests_total{strategy="naive",status="200",degraded="false"} 3',
    ]);
    expect(secondBetween(before, restarted)).toBeUndefined();
    expect(secondBetween(before, { ...before })).toBeUndefined();
  });

  it('has no rates and no latency for a second without requests', () => {
    const figures = secondBetween(before, { ...before, at: 11_000 });
    expect(figures?.second).toEqual({
      rps: 0,
      successRate: null,
      degradedRate: null,
      p50: null,
      p95: null,
      p99: null,
      errors: 0,
    });
  });
});

describe('histogramQuantile', () => {
  it('interpolates within the bucket holding the rank, from 0 for the first', () => {
    const buckets = [
      { le: 0.001, count: 0 },
      { le: 0.005, count: 40 },
      { le: 0.025, count: 80 },
      { le: Number.POSITIVE_INFINITY, count: 80 },
    ];
    expect(histogramQuantile(0.5, buckets)).toBeCloseTo(1 + (4 * (40 - 0)) / 40, 9); // the first bucket's top: 5 ms
    expect(histogramQuantile(0.25, buckets)).toBeCloseTo(3, 9);
    expect(histogramQuantile(0.75, buckets)).toBeCloseTo(5 + 20 * 0.5, 9);
  });

  it('gives the highest finite bound for a rank in +Inf, and null without observations', () => {
    expect(
      histogramQuantile(0.99, [
        { le: 0.5, count: 1 },
        { le: Number.POSITIVE_INFINITY, count: 10 },
      ]),
    ).toBe(500);
    expect(histogramQuantile(0.5, [{ le: Number.POSITIVE_INFINITY, count: 0 }])).toBeNull();
    expect(histogramQuantile(0.5, [])).toBeNull();
  });
});

describe('groupFaults', () => {
  const lease = (id: string, expiresAt: number) => ({
    id,
    kind: 'latency',
    params: { delayMs: 300, jitterMs: 20 },
    leaseMs: 60_000,
    appliedAt: 0,
    expiresAt,
  });

  it('lists a fault applied to every instance of a service once, and a recovery override apart', () => {
    const faults = groupFaults([
      { injector: 'fault-proxy', service: 'coin', instance: 'coin-2', faults: [lease('cli-1', 9_000)] },
      { injector: 'fault-proxy', service: 'coin', instance: 'coin-1', faults: [lease('cli-1', 9_500)] },
      {
        injector: 'fault-agent',
        service: 'archive',
        instance: 'archive-1',
        faults: [],
        recovery: { workerRecovery: false, expiresAt: 5_000 },
      },
    ]);
    expect(faults).toEqual([
      {
        key: 'fault-proxy:cli-1:latency',
        description: 'latency on coin (delay 300 ms, jitter 20 ms)',
        instances: ['coin-1', 'coin-2'],
        expiresAt: 9_500,
        label: 'latency on coin',
        detail: 'delay 300 ms, jitter 20 ms',
        shaded: true,
      },
      {
        key: 'recovery:archive-1',
        description: 'worker panic recovery off on archive',
        instances: ['archive-1'],
        expiresAt: 5_000,
        label: 'worker panic recovery off on archive',
        shaded: false,
      },
    ]);
  });
});

describe('the lab feed, against a real gateway app and a real fault proxy on loopback', () => {
  const TOKEN = 'lab-feed-test-token';
  let gateway: Listening;
  let proxy: RunningFaultProxy;

  beforeAll(async () => {
    // The service app and the gateway metrics the real gateway has, so the labels are the real ones.
    const { app, ctx, finalize } = createServiceApp({
      service: 'gateway',
      instanceId: 'gateway-naive',
      log: captureLog().log,
      processMetrics: false,
    });
    const metrics = createGatewayMetrics(ctx.metrics);
    const agent = createFaultAgent({ ctx, token: TOKEN, workerRecoveryDefault: true });
    app.use('/__chaos', agent.router);
    app.use(agent.middleware);
    app.get('/api/video/:aid', (req, res) => {
      const aid = Number(req.params.aid);
      const degraded = aid % 5 === 0;
      res.on('finish', () =>
        metrics.requests.inc({
          strategy: 'naive',
          status: String(res.statusCode),
          degraded: degraded && res.statusCode === 200 ? 'true' : 'false',
        }),
      );
      if (aid > 100) res.status(503).json({ error: 'down' });
      else res.json({ aid, degraded: degraded ? ['coin'] : [] });
    });
    finalize();
    gateway = await listen(app, 0);
    proxy = await startFaultProxy(
      {
        instanceId: 'coin-1-proxy',
        listenHost: '127.0.0.1',
        listenPort: 0,
        upstream: { host: '127.0.0.1', port: 9 },
        adminPort: 0,
        adminToken: TOKEN,
      },
      { log: pino({ level: 'silent' }) },
    );
  });
  afterAll(async () => {
    await gateway?.close();
    await proxy?.close();
  });

  const feedFor = (intervalMs = 1_000) =>
    createLabFeed({
      gateways: { naive: gateway.url },
      agents: [{ id: 'gateway-naive', url: gateway.url, service: 'gateway', instance: 'gateway-naive' }],
      proxies: [{ id: 'coin-1-proxy', url: proxy.adminUrl, service: 'coin', instance: 'coin-1' }],
      adminToken: TOKEN,
      intervalMs,
    });

  const send = async (aids: readonly number[]) => {
    for (const aid of aids) await (await fetch(`${gateway.url}/api/video/${aid}`)).arrayBuffer();
  };

  const admin = (method: string, path: string, body?: unknown) =>
    fetch(`${proxy.adminUrl}/__chaos${path}`, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });

  it('turns the traffic between two scrapes into one second of figures', async () => {
    const feed = feedFor();
    try {
      await feed.scrape();
      // 12 pages: 2 degraded (aid 5, 10), 2 errors (aid 101, 102).
      await send([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 101, 102]);
      await feed.scrape();
      const snapshot = feed.model.snapshot();
      expect(snapshot.seconds).toHaveLength(1);
      const second = snapshot.seconds[0]?.gateways.naive;
      expect(second).toMatchObject({ successRate: 10 / 12, degradedRate: 2 / 12, errors: 2 });
      expect(second?.rps).toBeGreaterThan(0);
      // Estimates from the buckets (how fast is the machine's business, not this test's).
      expect(second?.p50).toBeGreaterThan(0);
      expect(second?.p99).toBeGreaterThanOrEqual(second?.p50 ?? Number.POSITIVE_INFINITY);
      expect(second?.p99).toBeLessThanOrEqual(5_000);
      expect(snapshot.totals).toEqual({ naive: 12 });
      expect(snapshot.latencyNote).toMatch(/estimated from its histogram's buckets/);
    } finally {
      feed.close();
    }
  });

  it('shows a fault while an injector holds it, as a shaded window that closes when it goes', async () => {
    const feed = feedFor();
    try {
      expect(
        (
          await admin('PUT', '/faults/cli-latency-1', {
            kind: 'latency',
            params: { delayMs: 300 },
            leaseMs: 30_000,
          })
        ).status,
      ).toBe(201);
      await feed.scrape();
      let snapshot = feed.model.snapshot();
      expect(snapshot.faults).toEqual([
        expect.objectContaining({
          key: 'fault-proxy:cli-latency-1:latency',
          description: expect.stringMatching(/^latency on coin \(delay 300 ms/),
          instances: ['coin-1'],
        }),
      ]);
      expect(snapshot.bands).toEqual([
        expect.objectContaining({
          key: 'fault-proxy:cli-latency-1:latency',
          label: 'latency on coin',
          to: null,
        }),
      ]);
      expect((await admin('DELETE', '/faults/cli-latency-1')).status).toBe(200);
      await feed.scrape();
      snapshot = feed.model.snapshot();
      expect(snapshot.faults).toEqual([]);
      expect(snapshot.bands[0]?.to).not.toBeNull();
    } finally {
      feed.close();
    }
  });

  it('scrapes on its own only while a page watches, and breaks the lines over the unwatched gap', async () => {
    const feed = feedFor(50);
    try {
      feed.watchers(1);
      const deadline = Date.now() + 5_000;
      while (
        feed.model.snapshot().seconds.filter((s) => s.gateways.naive).length < 2 &&
        Date.now() < deadline
      ) {
        await send([1]);
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(feed.model.snapshot().seconds.filter((s) => s.gateways.naive).length).toBeGreaterThanOrEqual(2);
      feed.watchers(0);
      // A scrape already under way may still land (on loopback, within milliseconds).
      await new Promise((r) => setTimeout(r, 1_000));
      const frozen = feed.model.snapshot().version;
      await new Promise((r) => setTimeout(r, 200));
      expect(feed.model.snapshot().version).toBe(frozen);
      feed.watchers(1);
      const seconds = feed.model.snapshot().seconds;
      // The first point when a watcher returns measures nothing: a gap in every line.
      expect(seconds.at(-1)?.gateways).toEqual({});
    } finally {
      feed.close();
    }
  });
});
