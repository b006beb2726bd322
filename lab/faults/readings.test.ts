import { describe, expect, it } from 'vitest';
import type { ProxyStatsSnapshot, Summary } from '../../services/fault-proxy/stats.ts';
import { observedLatency, tallyOf, ZERO_TALLY } from './readings.ts';

type Held = { count: number; meanMs: number; p50Ms?: number; p95Ms?: number };

function summary({ count, meanMs, p50Ms = meanMs, p95Ms = meanMs }: Held): Summary {
  return { count, meanMs, p50Ms, p95Ms, p99Ms: p95Ms, maxMs: p95Ms };
}

/** A proxy's window: chunks held on the way back (`responses`) and, from a proxy with directions, on the way there. */
function stats(responses: Held, requests?: Held): ProxyStatsSnapshot {
  return {
    since: 0,
    until: 1,
    connections: { accepted: 0, active: 0, upstreamFailed: 0 },
    bytes: { upstream: 0, downstream: 0 },
    latency: summary(responses),
    ...(requests ? { requestLatency: summary(requests) } : {}),
    loss: {
      segments: { rolls: 0, lost: 0, share: null },
      syns: { rolls: 0, lost: 0, share: null },
      addedMs: 0,
      capped: 0,
    },
    reset: { rolls: 0, reset: 0, share: null },
  };
}

describe('latency calibration per direction', () => {
  it('adds the two ways up into what a call paid, and tells each way', () => {
    // A 400 ms ± 20 ms latency on both ways: 200 ± 10 each, on two proxies.
    const observed = observedLatency([
      {
        now: stats(
          { count: 10, meanMs: 201, p50Ms: 200, p95Ms: 209 },
          { count: 10, meanMs: 199, p50Ms: 200, p95Ms: 209 },
        ),
        base: ZERO_TALLY,
      },
      {
        now: stats(
          { count: 30, meanMs: 203, p50Ms: 200, p95Ms: 209 },
          { count: 30, meanMs: 201, p50Ms: 200, p95Ms: 209 },
        ),
        base: ZERO_TALLY,
      },
    ]);
    expect(observed).toEqual({
      addedLatencyMs: 403,
      requestLatencyMs: 200.5,
      responseLatencyMs: 202.5,
      jitterMs: 20,
      samples: 80,
    });
  });

  it('shows 0 on a way the fault leaves alone', () => {
    const onResponses = observedLatency([
      { now: stats({ count: 20, meanMs: 300 }, { count: 20, meanMs: 0 }), base: ZERO_TALLY },
    ]);
    expect(onResponses).toMatchObject({ addedLatencyMs: 300, requestLatencyMs: 0, responseLatencyMs: 300 });
    const onRequests = observedLatency([
      { now: stats({ count: 20, meanMs: 0.5 }, { count: 20, meanMs: 300 }), base: ZERO_TALLY },
    ]);
    expect(onRequests).toMatchObject({
      addedLatencyMs: 300.5,
      requestLatencyMs: 300,
      responseLatencyMs: 0.5,
    });
  });

  it('subtracts each way of a window shared with an earlier fault, and then tells no jitter', () => {
    const earlier = tallyOf(stats({ count: 10, meanMs: 100 }, { count: 10, meanMs: 20 }));
    expect(earlier).toMatchObject({
      latencyCount: 10,
      latencySumMs: 1000,
      requestLatencyCount: 10,
      requestLatencySumMs: 200,
    });
    const observed = observedLatency([
      { now: stats({ count: 30, meanMs: 100 }, { count: 30, meanMs: 140 }), base: earlier },
    ]);
    // Since the injection: 20 chunks each way, (3000 − 1000) / 20 back and (4200 − 200) / 20 there.
    expect(observed).toEqual({
      addedLatencyMs: 100 + 200,
      requestLatencyMs: 200,
      responseLatencyMs: 100,
      samples: 40,
    });
  });

  it('reads a proxy without directions as it always did: responses only, no way told', () => {
    const old = stats({ count: 10, meanMs: 400, p50Ms: 400, p95Ms: 418 });
    expect(tallyOf(old)).toEqual({ latencyCount: 10, latencySumMs: 4000, lossRolls: 0, lossLost: 0 });
    expect(observedLatency([{ now: old, base: ZERO_TALLY }])).toEqual({
      addedLatencyMs: 400,
      jitterMs: 20,
      samples: 10,
    });
  });

  it('has nothing to say without a chunk held since the injection', () => {
    const idle = stats({ count: 0, meanMs: 0 }, { count: 0, meanMs: 0 });
    expect(observedLatency([{ now: idle, base: ZERO_TALLY }])).toEqual({ samples: 0 });
  });
});
