/**
 * A realistic result of `weak-dependency-latency` on the local target, for the report's tests and for
 * looking at the report: 400 ms of latency on coin (weak), naive and parallel wait for it (p99 ~420 ms),
 * resilient cuts coin off at its 100 ms deadline and serves degraded pages (p99 ~110 ms). One claim is
 * written too tight and is violated. The per-second figures are noise around those levels from a fixed
 * seed, so the fixture is the same on every run.
 */
import type { Strategy } from '../../../services/topology.ts';
import type { GatewaySecond, RunResult, TimeseriesPoint, VariantRun } from '../../runner/result.ts';

const RATE = 50;
const WARMUP_MS = 2_000;
/** Measured windows: the fault phase is a little longer than planned, the time to inject and remove. */
const PHASES = [
  { name: 'baseline', startMs: 2_000, durationMs: 10_000, plannedDurationMs: 10_000, partial: false },
  { name: 'fault', startMs: 12_000, durationMs: 20_060, plannedDurationMs: 20_000, partial: false },
  { name: 'recovery', startMs: 32_060, durationMs: 10_000, plannedDurationMs: 10_000, partial: false },
] as const;
const SECONDS = 42;

/** Typical per-second levels of each gateway, in and out of the fault. */
const LEVELS = {
  naive: {
    calm: { p50: 6.1, p95: 9.8, p99: 14.2, degraded: 0 },
    fault: { p50: 411, p95: 419, p99: 424, degraded: 0 },
  },
  parallel: {
    calm: { p50: 3.4, p95: 6.2, p99: 9.1, degraded: 0 },
    fault: { p50: 404, p95: 416, p99: 420, degraded: 0 },
  },
  resilient: {
    calm: { p50: 3.8, p95: 6.9, p99: 10.4, degraded: 0 },
    fault: { p50: 104, p95: 108, p99: 111, degraded: 0.998 },
  },
} as const;

function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function timeseries(): TimeseriesPoint[] {
  const random = seeded(20_250_601);
  const wobble = (value: number, spread: number) =>
    Number((value * (1 + (random() - 0.5) * spread)).toFixed(2));
  const points: TimeseriesPoint[] = [];
  for (let t = 0; t < SECONDS; t++) {
    const inFault = t >= 12 && t < 32;
    // The first second after the fault still completes a few pages that were sent into it.
    const draining = t === 32;
    const gateways: Record<string, GatewaySecond> = {};
    for (const [name, level] of Object.entries(LEVELS)) {
      const l = inFault ? level.fault : level.calm;
      const blip = name === 'resilient' && t === 19;
      gateways[name] = {
        rps: wobble(RATE, 0.04),
        successRate: blip ? 0.96 : 1,
        degradedRate: inFault ? Math.min(1, wobble(l.degraded, 0.004)) : 0,
        p50: wobble(l.p50, 0.08),
        p95: wobble(draining ? level.fault.p95 * 0.6 : l.p95, 0.05),
        p99: wobble(draining ? level.fault.p99 * 0.95 : l.p99, 0.04),
        errors: blip ? 2 : 0,
      };
    }
    points.push({ t, gateways });
  }
  return points;
}

const FAULT = {
  kind: 'latency',
  service: 'coin',
  instances: ['coin-1', 'coin-2'],
  params: { delayMs: 400, jitterMs: 20, requestShare: 0.5 },
  injector: 'fault-proxy',
  injectedAt: '2025-06-01T14:03:22.418Z',
  removedAt: '2025-06-01T14:03:42.431Z',
} as const;

const quiet = { restarts: 0, panicsRecovered: 0 };
const services = { account: quiet, archive: quiet, vip: quiet, like: quiet, coin: quiet };

const run: VariantRun = {
  variant: 'default',
  settings: {},
  trust: 'half',
  warmupMs: WARMUP_MS,
  warmup: { ms: WARMUP_MS, minMs: 1_000, maxMs: 30_000, steady: true },
  phases: [
    {
      ...PHASES[0],
      faults: [],
      gateways: {
        naive: gateway(500, 50.0, 1, 0, [6.2, 10.1, 15.8, 31.4]),
        parallel: gateway(500, 50.0, 1, 0, [3.5, 6.3, 9.6, 22.7]),
        resilient: gateway(500, 50.0, 1, 0, [3.9, 7.0, 11.2, 24.9]),
      },
      services,
    },
    {
      ...PHASES[1],
      faults: [FAULT],
      gateways: {
        naive: gateway(1000, 49.9, 1, 0, [411.2, 419.6, 421.7, 436.0]),
        parallel: gateway(1000, 50.0, 1, 0, [404.6, 415.3, 419.3, 431.9]),
        resilient: gateway(1000, 50.0, 0.998, 0.997, [104.1, 108.3, 111.8, 187.2], { '5xx:503': 2 }),
      },
      services,
    },
    {
      ...PHASES[2],
      faults: [],
      gateways: {
        naive: gateway(500, 50.0, 1, 0, [6.3, 10.4, 88.5, 412.9]),
        parallel: gateway(500, 50.0, 1, 0, [3.5, 6.4, 61.2, 405.3]),
        resilient: gateway(500, 50.0, 1, 0, [3.9, 7.1, 12.0, 104.8]),
      },
      services,
    },
  ],
  timeseries: timeseries(),
};

function gateway(
  requests: number,
  achievedRps: number,
  successRate: number,
  degradedRate: number,
  [p50, p95, p99, max]: readonly [number, number, number, number],
  errors: Record<string, number> = {},
) {
  return {
    requests,
    achievedRps,
    successRate,
    degradedRate,
    latencyMs: { p50, p95, p99, max },
    errors,
    fellBehind: false,
    sent: requests,
    dropped: 0,
    late: 0,
  };
}

export const sampleResult: RunResult = {
  experiment: {
    name: 'weak-dependency-latency',
    description:
      '400 ms of latency on coin (weak) — naive and parallel wait for it, resilient degrades the page and stays fast',
    file: 'experiments/weak-dependency-latency.yaml',
  },
  target: 'local',
  driver: 'builtin',
  runId: '20250601-140312-weak-dependency-latency',
  status: 'completed',
  startedAt: '2025-06-01T14:03:09.102Z',
  finishedAt: '2025-06-01T14:03:53.877Z',
  leftoverFaults: [],
  load: { rate: RATE, endpoint: 'video', timeoutMs: 2_000, gateways: ['naive', 'parallel', 'resilient'] },
  generator: { fellBehind: false, reason: null },
  runs: [run],
  calibration: [
    {
      variant: 'default',
      phase: 'fault',
      fault: 'latency on coin (delay 400ms, jitter 20ms)',
      kind: 'latency',
      service: 'coin',
      configured: { addedLatencyMs: 400, jitterMs: 20, requestLatencyMs: 200, responseLatencyMs: 200 },
      observed: {
        addedLatencyMs: 401.3,
        samples: 1200,
        jitterMs: 11.6,
        requestLatencyMs: 200.4,
        responseLatencyMs: 200.9,
      },
    },
  ],
  claims: [
    claim('resilient', 'successRate', '>= 0.99', 0.998, true),
    claim('resilient', 'p99', '< 350ms', 111.8, true),
    claim('resilient', 'degradedRate', '>= 0.5', 0.997, true),
    claim('resilient', 'p99', '< 100ms', 111.8, false),
    claim('naive', 'p50', '>= 380ms', 411.2, true),
    claim('parallel', 'p50', '>= 380ms', 404.6, true),
    {
      variant: 'default',
      phase: 'fault',
      service: 'coin',
      metric: 'restarts',
      expected: '== 0',
      actual: 0,
      holds: true,
    },
    { ...claim('resilient', 'successRate', '>= 0.99', 1, true), phase: 'recovery' },
  ],
  verdict: 'violated',
  verdictReason: '1 of 8 claims did not hold: resilient p99 in fault was 111.8 ms, expected < 100ms',
};

function claim(gateway: Strategy, metric: string, expected: string, actual: number, holds: boolean) {
  return { variant: 'default', phase: 'fault', gateway, metric, expected, actual, holds };
}

/**
 * The same experiment stopped with Ctrl-C eight seconds into the fault: the fault phase is cut short,
 * recovery never ran, and no claim gets a verdict.
 */
export const abortedResult: RunResult = {
  ...sampleResult,
  runId: '20250601-141500-weak-dependency-latency',
  status: 'aborted',
  error: 'interrupted by SIGINT during phase "fault" (8.0 s of 20 s); faults removed',
  startedAt: '2025-06-01T14:15:00.204Z',
  finishedAt: '2025-06-01T14:15:21.950Z',
  runs: [
    {
      ...run,
      phases: [run.phases[0]!, { ...run.phases[1]!, durationMs: 8_000, partial: true, services: {} }],
      timeseries: run.timeseries.filter((s) => s.t < 20),
    },
  ],
  calibration: [],
  claims: sampleResult.claims.map((c) => ({
    ...c,
    actual: c.phase === 'recovery' ? null : c.actual,
    holds: null,
    reason: 'the run aborted',
  })),
  verdict: 'no-verdict',
  verdictReason: 'the run aborted: its claims are not judged',
};
