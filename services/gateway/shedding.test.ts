import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type CapturedLog, captureLog } from '../lib/__fixtures__/observe.ts';
import { ConfigError } from '../lib/env.ts';
import type { Strategy } from '../topology.ts';
import type { LoopSample } from './loop-delay-detector.ts';
import type { LoopSampleSource } from './loop-delay-probe.ts';
import { gatewayConfigFromEnv, LOOP_DELAY_DEFAULTS, type RunningGateway } from './server.ts';
import { type Fleet, getPage, metric, startFleet, startTestGateway } from './test-fleet.ts';

/**
 * Shedding by event-loop delay over HTTP: real backends and gateways on loopback, the gateway's
 * view of its own loop fed by the test (the loop the test shares with the fleet is not the
 * gateway's own, and must not decide anything here).
 */
let fleet: Fleet;
const gateways: RunningGateway[] = [];
let nextAid = 500;
const freshAid = () => nextAid++;

beforeAll(async () => {
  fleet = await startFleet({ replicas: 1 });
});

afterEach(async () => {
  await Promise.all(gateways.splice(0).map((g) => g.close()));
});

afterAll(async () => {
  await fleet?.close();
});

/** A loop sample source the test drives: `push` hands a sample to every gateway listening. */
function drivenLoop() {
  const listeners = new Set<(sample: LoopSample) => void>();
  const source: LoopSampleSource = (onSample) => {
    listeners.add(onSample);
    return () => listeners.delete(onSample);
  };
  const push = (sample: LoopSample) => {
    for (const listener of listeners) listener(sample);
  };
  return {
    source,
    listening: () => listeners.size,
    push,
    /** Late and busy from `atMs` for a whole interval and then some: a standing queue. */
    stayLate: (atMs: number) => {
      for (let t = atMs; t <= atMs + 150; t += 50) push({ delayMs: 60, utilization: 0.95, atMs: t });
    },
  };
}

async function gatewayWith(
  strategy: Strategy,
  loopSamples: LoopSampleSource,
  loopDelayTargetMs = 20,
  loopDelayMinInFlight = 0,
  more: { loopDelayHoldMs?: number; log?: CapturedLog } = {},
) {
  const gateway = await startTestGateway(
    fleet.urls,
    {
      strategy,
      loopDelayTargetMs,
      loopDelayIntervalMs: 100,
      loopDelayMinInFlight,
      loopDelayHoldMs: more.loopDelayHoldMs ?? 0,
    },
    { loopSamples, ...(more.log ? { log: more.log.log } : {}) },
  );
  gateways.push(gateway);
  return gateway;
}

describe('shedding while the event loop runs late', () => {
  it('refuses pages with 503 OVERLOADED while the loop stays late, counts them by cause, and admits again once it is on time', async () => {
    const loop = drivenLoop();
    const gateway = await gatewayWith('resilient', loop.source);
    expect((await getPage(gateway.url, freshAid())).status).toBe(200);

    loop.stayLate(0);
    const shed = await getPage(gateway.url, freshAid());
    expect(shed.status).toBe(503);
    expect(shed.headers.get('x-strategy')).toBe('resilient');
    expect(shed.body.error).toMatchObject({
      status: 503,
      reason: 'OVERLOADED',
      message: expect.stringMatching(/event loop is running 60 ms late.*GATEWAY_LOOP_DELAY_TARGET_MS/),
    });
    expect(shed.body.requestId).toEqual(expect.any(String));
    expect(await metric(gateway.ctx.metrics, 'gateway_shed_total', { cause: 'loop_delay' })).toBe(1);
    expect(await metric(gateway.ctx.metrics, 'gateway_shed_total', { cause: 'concurrency' })).toBe(0);
    expect(await metric(gateway.ctx.metrics, 'gateway_requests_total', { status: '503' })).toBe(1);
    const scraped = await (await fetch(`${gateway.url}/metrics`)).text();
    expect(scraped).toMatch(/^gateway_shed_total\{cause="loop_delay",[^}]*\} 1$/m);
    const described = (await (await fetch(`${gateway.url}/api/upstreams`)).json()) as { loopDelay?: unknown };
    expect(described.loopDelay).toMatchObject({ shedding: true, delayMs: 60, targetMs: 20, intervalMs: 100 });

    loop.push({ delayMs: 2, utilization: 0.4, atMs: 200 });
    expect((await getPage(gateway.url, freshAid())).status).toBe(200);
    expect(await metric(gateway.ctx.metrics, 'gateway_shed_total', { cause: 'loop_delay' })).toBe(1);
  });

  it('keeps refusing for GATEWAY_LOOP_DELAY_HOLD_MS after its last refusal, though the loop is on time again', async () => {
    const loop = drivenLoop();
    const gateway = await gatewayWith('resilient', loop.source, 20, 0, { loopDelayHoldMs: 60_000 });
    expect((await getPage(gateway.url, freshAid())).status).toBe(200);
    loop.stayLate(0);
    expect((await getPage(gateway.url, freshAid())).status).toBe(503);
    loop.push({ delayMs: 2, utilization: 0.4, atMs: 200 });
    const held = await getPage(gateway.url, freshAid());
    expect(held.status).toBe(503);
    expect(held.body.error.message).toMatch(/or did within the last 60000 ms.*GATEWAY_LOOP_DELAY_HOLD_MS/);
    expect(await metric(gateway.ctx.metrics, 'gateway_shed_total', { cause: 'loop_delay' })).toBe(2);
  });

  it('refuses at the front door: no line per refusal, a count at most once a second, timed as the page route', async () => {
    const loop = drivenLoop();
    const log = captureLog('info');
    const gateway = await gatewayWith('resilient', loop.source, 20, 0, { log });
    expect((await getPage(gateway.url, freshAid())).status).toBe(200);
    loop.stayLate(0);
    const ids = ['shed-1', 'shed-2', 'shed-3'];
    for (const id of ids) {
      const res = await fetch(`${gateway.url}/api/video/${freshAid()}`, { headers: { 'x-request-id': id } });
      expect(res.status).toBe(503);
      expect(res.headers.get('x-request-id')).toBe(id);
      expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
      expect(await res.json()).toEqual({
        error: { status: 503, reason: 'OVERLOADED', message: expect.any(String), metadata: {} },
        requestId: id,
      });
    }
    const lines = log.lines().filter((l) => ids.includes(String(l.reqId ?? l.requestId)));
    expect(lines).toEqual([
      expect.objectContaining({ level: 40, refused: 1, reason: 'OVERLOADED', requestId: 'shed-1' }),
    ]);
    const scraped = await (await fetch(`${gateway.url}/metrics`)).text();
    expect(scraped).toMatch(
      /^http_server_request_duration_seconds_count\{[^}]*method="GET",route="\/api\/video\/:aid",status="503"\} 3$/m,
    );
    expect(await metric(gateway.ctx.metrics, 'gateway_requests_total', { status: '503' })).toBe(3);
    // Anything but a well-formed page request still goes to express, which says what is wrong.
    expect((await fetch(`${gateway.url}/api/video/not-a-number`)).status).toBe(400);
    const badBudget = await fetch(`${gateway.url}/api/video/7`, { headers: { 'x-request-timeout': 'soon' } });
    expect(badBudget.status).toBe(400);
    expect((await fetch(`${gateway.url}/healthz`)).status).toBe(200);
  });

  it('lets one late sample through: a burst is not a queue', async () => {
    const loop = drivenLoop();
    const gateway = await gatewayWith('resilient', loop.source);
    expect((await getPage(gateway.url, freshAid())).status).toBe(200);
    expect(loop.listening()).toBe(1);
    loop.push({ delayMs: 400, utilization: 1, atMs: 0 });
    expect((await getPage(gateway.url, freshAid())).status).toBe(200);
  });

  it('sheds nothing while fewer pages than GATEWAY_LOOP_DELAY_MIN_INFLIGHT are in flight', async () => {
    const loop = drivenLoop();
    const gateway = await gatewayWith('resilient', loop.source, 20, 16);
    expect(loop.listening()).toBe(0); // nothing asked yet: the loop is not watched
    expect((await getPage(gateway.url, freshAid())).status).toBe(200);
    loop.stayLate(0);
    const described = (await (await fetch(`${gateway.url}/api/upstreams`)).json()) as { loopDelay?: unknown };
    expect(described.loopDelay).toMatchObject({ shedding: true });
    expect((await getPage(gateway.url, freshAid())).status).toBe(200);
    expect(await metric(gateway.ctx.metrics, 'gateway_shed_total', { cause: 'loop_delay' })).toBe(0);
  });

  it.each(['naive', 'parallel'] as const)(
    'never sheds in the %s gateway, which shows what happens without a limit',
    async (strategy) => {
      const loop = drivenLoop();
      const gateway = await gatewayWith(strategy, loop.source);
      expect(loop.listening()).toBe(0);
      loop.stayLate(0);
      expect((await getPage(gateway.url, freshAid())).status).toBe(200);
      expect(await metric(gateway.ctx.metrics, 'gateway_shed_total')).toBe(0);
    },
  );

  it('is off with a target of 0', async () => {
    const loop = drivenLoop();
    const gateway = await gatewayWith('resilient', loop.source, 0);
    expect(loop.listening()).toBe(0);
    loop.stayLate(0);
    expect((await getPage(gateway.url, freshAid())).status).toBe(200);
  });

  it('stops listening to its loop when closed', async () => {
    const loop = drivenLoop();
    const gateway = await gatewayWith('resilient', loop.source);
    expect((await getPage(gateway.url, freshAid())).status).toBe(200);
    expect(loop.listening()).toBe(1);
    await gateway.close();
    gateways.splice(gateways.indexOf(gateway), 1);
    expect(loop.listening()).toBe(0);
  });
});

describe('gatewayConfigFromEnv: shedding by loop delay', () => {
  const ENV = {
    STRATEGY: 'resilient',
    UPSTREAM_ACCOUNT: 'http://127.0.0.1:8081',
    UPSTREAM_ARCHIVE: 'http://127.0.0.1:8082',
    UPSTREAM_VIP: 'http://127.0.0.1:8083',
    UPSTREAM_LIKE: 'http://127.0.0.1:8084',
    UPSTREAM_COIN: 'http://127.0.0.1:8085',
  };

  it('sheds after 20 ms late for 100 ms, with 2 pages in flight, for a second after, unless told otherwise', () => {
    expect(LOOP_DELAY_DEFAULTS).toEqual({ targetMs: 20, intervalMs: 100, minInFlight: 2, holdMs: 1_000 });
    expect(gatewayConfigFromEnv(ENV)).toMatchObject({
      loopDelayTargetMs: 20,
      loopDelayIntervalMs: 100,
      loopDelayMinInFlight: 2,
      loopDelayHoldMs: 1_000,
    });
    expect(gatewayConfigFromEnv({ ...ENV, GATEWAY_LOOP_DELAY_HOLD_MS: '0' })).toMatchObject({
      loopDelayHoldMs: 0,
    });
    expect(() => gatewayConfigFromEnv({ ...ENV, GATEWAY_LOOP_DELAY_HOLD_MS: '-5' })).toThrow(
      /GATEWAY_LOOP_DELAY_HOLD_MS="-5" is invalid/,
    );
    expect(gatewayConfigFromEnv({ ...ENV, GATEWAY_LOOP_DELAY_MIN_INFLIGHT: '4' })).toMatchObject({
      loopDelayMinInFlight: 4,
    });
    expect(() => gatewayConfigFromEnv({ ...ENV, GATEWAY_LOOP_DELAY_MIN_INFLIGHT: 'many' })).toThrow(
      /GATEWAY_LOOP_DELAY_MIN_INFLIGHT="many" is invalid/,
    );
  });

  it('reads GATEWAY_LOOP_DELAY_TARGET_MS and GATEWAY_LOOP_DELAY_INTERVAL_MS; a target of 0 turns it off', () => {
    expect(
      gatewayConfigFromEnv({
        ...ENV,
        GATEWAY_LOOP_DELAY_TARGET_MS: '35',
        GATEWAY_LOOP_DELAY_INTERVAL_MS: '250',
      }),
    ).toMatchObject({ loopDelayTargetMs: 35, loopDelayIntervalMs: 250 });
    expect(gatewayConfigFromEnv({ ...ENV, GATEWAY_LOOP_DELAY_TARGET_MS: '0' })).toMatchObject({
      loopDelayTargetMs: 0,
    });
  });

  it.each([
    [
      { GATEWAY_LOOP_DELAY_TARGET_MS: 'soon' },
      /GATEWAY_LOOP_DELAY_TARGET_MS="soon" is invalid: expected an integer from 0 to 60000/,
    ],
    [{ GATEWAY_LOOP_DELAY_TARGET_MS: '-1' }, /GATEWAY_LOOP_DELAY_TARGET_MS="-1" is invalid/],
    [
      { GATEWAY_LOOP_DELAY_INTERVAL_MS: '0' },
      /GATEWAY_LOOP_DELAY_INTERVAL_MS="0" is invalid: expected an integer from 1 to 60000/,
    ],
    [{ GATEWAY_LOOP_DELAY_INTERVAL_MS: '2.5' }, /GATEWAY_LOOP_DELAY_INTERVAL_MS="2.5" is invalid/],
  ])('refuses %j with a message naming the variable', (bad, message) => {
    expect(() => gatewayConfigFromEnv({ ...ENV, ...bad })).toThrow(ConfigError);
    expect(() => gatewayConfigFromEnv({ ...ENV, ...bad })).toThrow(message);
  });
});
