import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { BACKENDS, type BackendName } from '../topology.ts';
import { DependencyCache } from './cache.ts';
import { PageBudget } from './deadline.ts';
import type { DependencyCall, Fetched, Upstreams } from './dependency-caller.ts';
import { createGatewayMetrics, type GatewayMetrics } from './metrics.ts';
import { likeCall, recordedEvents, answers as scripted } from './policies/__fixtures__/calls.ts';
import { ResilientCaller, type ResilientCallerOptions, resilientPolicies } from './resilient-caller.ts';
import { RetryBudget } from './retry-budget.ts';
import { SreBreaker } from './sre-breaker.ts';
import { metric } from './test-fleet.ts';
import { UpstreamSet } from './upstream.ts';

/**
 * The resilient caller's policies with an injected clock and dice, against two like
 * stand-ins on real sockets whose answer (200 or an error status) the test sets per instance.
 */
const answers: number[] = [200, 200];
const hits: number[] = [0, 0];
const totalHits = () => hits.reduce((a, b) => a + b, 0);
const servers: Server[] = [];
const urls: string[] = [];
const sets: UpstreamSet[] = [];

beforeAll(async () => {
  for (const index of [0, 1]) {
    const server = createServer((req, res) => {
      if (req.url === '/readyz') {
        res.end('{}');
        return;
      }
      hits[index] = (hits[index] ?? 0) + 1;
      const aid = Number(req.url?.split('/').pop());
      res.statusCode = answers[index] ?? 200;
      res.setHeader('content-type', 'application/json');
      res.end(
        JSON.stringify(res.statusCode === 200 ? { aid, likes: 10 + index } : { error: { reason: 'X' } }),
      );
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    urls.push(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  }
});

beforeEach(() => {
  answers.splice(0, 2, 200, 200);
  hits.splice(0, 2, 0, 0);
});

afterAll(async () => {
  await Promise.all(sets.map((s) => s.close()));
  for (const server of servers) {
    server.closeAllConnections();
    server.close();
  }
});

async function setup(options: Partial<ResilientCallerOptions> = {}) {
  const registry = new Registry();
  const metrics: GatewayMetrics = createGatewayMetrics(registry);
  const log = pino({ level: 'silent' });
  const upstreams = Object.fromEntries(
    BACKENDS.map((dependency) => {
      const set = new UpstreamSet({ dependency, urls, probeIntervalMs: 10_000, metrics, log });
      sets.push(set);
      return [dependency, set];
    }),
  ) as Record<BackendName, UpstreamSet>;
  await upstreams.like.probeAll();
  const clock = { now: 1_000_000 };
  const caller = new ResilientCaller({
    upstreams: upstreams as Upstreams,
    metrics,
    clock: () => clock.now,
    random: () => 0,
    ...options,
  });
  const ctx = () => ({ requestId: 'r', budget: new PageBudget(800, () => clock.now) });
  return { caller, registry, clock, ctx };
}

describe('ResilientCaller', () => {
  it('answers from the cache while fresh, and serves it stale when the backend fails', async () => {
    const { caller, registry, clock, ctx } = await setup();
    expect(await caller.fetch('like', 5, ctx())).toMatchObject({ ok: true, stale: false });
    expect(await caller.fetch('like', 5, ctx())).toMatchObject({ ok: true, stale: false });
    expect(totalHits()).toBe(1);
    expect(await metric(registry, 'gateway_cache_hits_total', { dependency: 'like' })).toBe(1);

    answers.splice(0, 2, 500, 500);
    clock.now += 2_000; // like's TTL is 1 s
    const stale = await caller.fetch('like', 5, ctx());
    expect(stale).toMatchObject({ ok: true, stale: true, value: { aid: 5 } });
    expect(await metric(registry, 'gateway_cache_stale_serves_total', { dependency: 'like' })).toBe(1);
  });

  it('retries a temporary failure once, on the other instance', async () => {
    const { caller, registry, ctx } = await setup();
    answers[0] = 503;
    answers[1] = 503;
    const result = await caller.fetch('like', 6, ctx());
    expect(result.ok).toBe(false);
    expect(hits).toEqual([1, 1]);
    expect(await metric(registry, 'gateway_retries_total', { dependency: 'like' })).toBe(1);
  });

  it('does not throttle a dependency whose failing instance is covered by retries to its sibling', async () => {
    const { caller, ctx } = await setup({ breaker: { minRequests: 4 } });
    answers[0] = 503;
    for (let aid = 40; aid < 60; aid++)
      expect(await caller.fetch('like', aid, ctx())).toMatchObject({ ok: true });
    expect(hits[0]).toBeGreaterThanOrEqual(5); // first attempts still rotate over both instances
    expect(caller.breakers().like.dropProbability).toBe(0);
  });

  it('does not retry when the retry budget is spent', async () => {
    const { caller, registry, ctx } = await setup({ retryBudget: { ratio: 0, minPerSecond: 0 } });
    answers.splice(0, 2, 503, 503);
    const result = await caller.fetch('like', 7, ctx());
    expect(!result.ok && result.error.reason).toBe('DEPENDENCY_UNAVAILABLE');
    expect(totalHits()).toBe(1);
    expect(await metric(registry, 'gateway_retry_budget_exhausted_total', { dependency: 'like' })).toBe(1);
    expect(await metric(registry, 'gateway_retries_total', { dependency: 'like' })).toBe(0);
  });

  it('does not call at all when the page budget is spent', async () => {
    const { caller, clock } = await setup();
    const budget = new PageBudget(100, () => clock.now);
    clock.now += 100;
    const result = await caller.fetch('like', 8, { requestId: 'r', budget });
    expect(!result.ok && [result.error.status, result.error.reason]).toEqual([504, 'DEPENDENCY_TIMEOUT']);
    expect(hits).toEqual([0, 0]);
  });

  it('drops calls locally once the breaker throttles, and lets them through again as the window rolls', async () => {
    const { caller, registry, clock, ctx } = await setup({
      breaker: { minRequests: 4, windowMs: 1_000, buckets: 10 },
      maxAttempts: 1,
    });
    answers.splice(0, 2, 500, 500);
    for (let aid = 10; aid < 14; aid++) await caller.fetch('like', aid, ctx());
    expect(totalHits()).toBe(4);
    const dropped = await caller.fetch('like', 20, ctx());
    expect(!dropped.ok && [dropped.error.status, dropped.error.reason]).toEqual([503, 'CIRCUIT_OPEN']);
    expect(totalHits()).toBe(4);
    expect(await metric(registry, 'gateway_breaker_drops_total', { dependency: 'like' })).toBe(1);
    expect(await metric(registry, 'gateway_breaker_state', { dependency: 'like' })).toBe(1);
    expect(caller.breakers().like.state).toBe('throttling');

    answers.splice(0, 2, 200, 200);
    clock.now += 1_000;
    expect(await metric(registry, 'gateway_breaker_state', { dependency: 'like' })).toBe(0);
    expect(await caller.fetch('like', 21, ctx())).toMatchObject({ ok: true });
  });

  it('counts a 404 as accepted: it never opens the breaker', async () => {
    const { caller, ctx } = await setup({ breaker: { minRequests: 2 }, maxAttempts: 1 });
    answers.splice(0, 2, 404, 404);
    for (let aid = 30; aid < 40; aid++) {
      const result = await caller.fetch('like', aid, ctx());
      expect(!result.ok && result.error.status).toBe(404);
    }
    expect(caller.breakers().like.dropProbability).toBe(0);
  });
});

describe('resilientPolicies', () => {
  /** The chain around a backend that gives the answers queued in `next`, one per attempt. */
  function chainOverScript() {
    const clock = { now: 0 };
    const { events, seen } = recordedEvents();
    const breaker = new SreBreaker({ minRequests: 4, clock: () => clock.now, random: () => 0 });
    const next: Fetched<object>[] = [];
    const attempts: DependencyCall[] = [];
    const handle = resilientPolicies({
      cache: new DependencyCache<object>({ ttlMs: 1_000, clock: () => clock.now }),
      deadlineMs: 100,
      breaker,
      retryBudget: new RetryBudget({ clock: () => clock.now }),
      maxAttempts: 2,
      events,
    })(async (call) => {
      attempts.push(call);
      const answer = next.shift();
      if (!answer) throw new Error(`no answer queued for attempt ${attempts.length}`);
      return answer;
    });
    /** The events one call publishes, a call-finished named with its outcome. */
    const eventsOf = async (call: DependencyCall, ...queued: Fetched<object>[]) => {
      next.push(...queued);
      seen.length = 0;
      await handle(call);
      expect(next, 'every queued answer was used').toEqual([]);
      return seen.map((e) => (e.type === 'call-finished' ? `${e.type} ${e.outcome}` : e.type));
    };
    return { clock, breaker, attempts, eventsOf };
  }

  it('retries inside one measured call, with the deadline the outer policy set', async () => {
    const { eventsOf, attempts } = chainOverScript();
    expect(await eventsOf(likeCall(), scripted.unavailable(), scripted.ok())).toEqual([
      'retry',
      'call-finished ok',
    ]);
    expect(attempts.map((a) => a.deadlineMs)).toEqual([100, 100]);
    expect(attempts.every((a) => a.signal instanceof AbortSignal)).toBe(true);
  });

  it('answers a fresh hit before anything is measured, and serves stale after the failed call is', async () => {
    const { eventsOf, clock } = chainOverScript();
    await eventsOf(likeCall(), scripted.ok());
    expect(await eventsOf(likeCall())).toEqual(['cache-hit']);
    clock.now += 2_000;
    expect(await eventsOf(likeCall(), scripted.failed())).toEqual([
      'call-finished error',
      'cache-stale-served',
    ]);
  });

  it('measures a call the page budget had no time for, without calling', async () => {
    const { eventsOf, attempts, clock } = chainOverScript();
    const spent = new PageBudget(100, () => clock.now);
    clock.now += 100;
    expect(await eventsOf(likeCall({ budget: spent }))).toEqual(['call-finished timeout']);
    expect(attempts).toEqual([]);
  });

  it('judges the dependency after its retries: a failure its retry covers is no failure', async () => {
    const { eventsOf, breaker } = chainOverScript();
    for (let id = 1; id <= 10; id++) await eventsOf(likeCall({ id }), scripted.unavailable(), scripted.ok());
    expect(breaker.dropProbability()).toBe(0);
  });

  it('drops calls once the dependency keeps failing, measured as dropped and served stale', async () => {
    const { eventsOf, clock } = chainOverScript();
    await eventsOf(likeCall({ id: 1 }), scripted.ok());
    // 4 requests, 1 accepted: past minRequests, and (4 − 2·1) / 5 of calls are dropped.
    for (let id = 2; id <= 4; id++) await eventsOf(likeCall({ id }), scripted.failed());
    clock.now += 2_000;
    expect(await eventsOf(likeCall({ id: 1 }))).toEqual([
      'breaker-rejected',
      'call-finished dropped',
      'cache-stale-served',
    ]);
  });
});
