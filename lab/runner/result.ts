/**
 * `result.json`: what a run measured and what it concluded, in the shape the report and any other reader
 * rely on. Built from the run's own records (faults, counters) and the load generator's summaries (windows
 * per phase, seconds for the timeseries). Status — how the run ended — is kept apart from the verdict —
 * what the claims say — because an aborted run has a status and no verdict.
 */
import { renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { TrustMode } from '../../services/lib/trust.ts';
import type { BackendName, Strategy } from '../../services/topology.ts';
import { paramsOf } from '../faults/registry.ts';
import type { LoadSummary, SecondSummary, TargetStats } from '../load/generator.ts';
import type { LatencySummary } from '../load/tally.ts';
import type { Experiment, Fault, VariantSettings } from './experiment.ts';
import type { Injector, LeftoverFault, ServiceCounters, TargetName } from './target.ts';

export type { Injector, LeftoverFault, ServiceCounters } from './target.ts';

export type RunStatus = 'completed' | 'aborted' | 'failed';
export type Verdict = 'held' | 'violated' | 'no-verdict';

export interface PhaseFault {
  readonly kind: Fault['kind'];
  readonly service: BackendName;
  /** The instances it was applied to. */
  readonly instances: readonly string[];
  /** As configured, in the lab's units: `{ delayMs, jitterMs }`, `{ percent }`, `{ status, percent }`, `{}`. */
  readonly params: Readonly<Record<string, number>>;
  readonly injector: Injector;
  /** ISO time. */
  readonly injectedAt: string;
  /** ISO time; equal to injectedAt for `kill` (instantaneous); null when the run ended before removing it. */
  readonly removedAt: string | null;
}

export interface GatewayPhaseStats {
  /** Requests with an outcome (sends dropped or cancelled have none). */
  readonly requests: number;
  /** Sends per second the generator achieved in the phase. */
  readonly achievedRps: number;
  /** Null without requests. */
  readonly successRate: number | null;
  readonly degradedRate: number | null;
  /** Milliseconds from the intended send time; null without requests. */
  readonly latencyMs: LatencySummary | null;
  /** Outcomes other than ok and degraded, by class (`timeout`, `5xx:503`, `connection`, `4xx`). */
  readonly errors: Readonly<Record<string, number>>;
  /** The generator dropped sends or sent too many late: these numbers are not a verdict's basis. */
  readonly fellBehind: boolean;
  readonly sent: number;
  readonly dropped: number;
  readonly late: number;
}

export interface PhaseResult {
  readonly name: string;
  /**
   * Milliseconds from the variant's load start (the warm-up comes first) to the moment the phase's faults
   * were all applied: requests intended while faults are being injected or removed belong to no phase.
   */
  readonly startMs: number;
  /** Measured, until the removal of its faults began: the configured duration, or less if cut short. */
  readonly durationMs: number;
  readonly plannedDurationMs: number;
  /** True for the phase the run was in when it was aborted or failed. */
  readonly partial: boolean;
  readonly faults: readonly PhaseFault[];
  readonly gateways: Readonly<Partial<Record<Strategy, GatewayPhaseStats>>>;
  /** Deltas over the phase; empty when the phase was cut short before they were read. */
  readonly services: Readonly<Partial<Record<BackendName, ServiceCounters>>>;
  /**
   * How long the runner waited before the phase for every backend instance to be ready again (the
   * target's settle); present when it had to wait. Restarts meanwhile belong to no phase.
   */
  readonly settledMs?: number;
  /** The phase's rogue calls and what they got (phases with a `rogue` only). */
  readonly rogue?: RogueTally;
  /**
   * The fault proxies that restarted during the phase, and what became of this run's faults on them;
   * present where the target counts its proxies' restarts (the local lab), `[]` when none restarted.
   */
  readonly proxyRestarts?: readonly ProxyRestart[];
  /** Leases of this run that an instance or a proxy had lost (its process restarted) and the renewal put back. */
  readonly reapplied?: readonly ReappliedLease[];
}

/**
 * A fault proxy that restarted during a phase. It keeps its faults in memory, so a restart loses those
 * in force; the runner's lease renewal (every leaseMs/3) puts them back once the proxy answers again.
 */
export interface ProxyRestart {
  /** The instance the proxy stands in front of, `coin-1`. */
  readonly instance: string;
  readonly restarts: number;
  /** ISO time of its last exit. */
  readonly lastExitAt: string | null;
  /**
   * What became of this run's faults on it: `none` — none was on it when it went down; `reapplied` —
   * the renewal found them gone and put them back (`reappliedAt`); `lost` — they were not put back
   * after its last exit before the phase's faults were removed.
   */
  readonly faults: 'none' | 'reapplied' | 'lost';
  /** ISO times the renewal put its faults back. */
  readonly reappliedAt: readonly string[];
  /** The same, as the run's terminal warned. */
  readonly note: string;
}

export interface ReappliedLease {
  readonly instance: string;
  readonly injector: Injector;
  /** The lease id. */
  readonly id: string;
  /** ISO time the renewal put it back. */
  readonly at: string;
}

/** A phase's rogue calls, straight to a backend: how many were served, and why the others were not. */
export interface RogueTally {
  readonly service: BackendName;
  /** Calls made (fewer than planned if the phase was cut short). */
  readonly calls: number;
  readonly served: number;
  /** Calls refused, by the answer's reason (TRUST_MISSING, TRUST_NEEDS_MTLS…) or status. */
  readonly refused: Readonly<Record<string, number>>;
  /** Calls with no answer at all, by why (a connection refused, a timeout). */
  readonly failed: Readonly<Record<string, number>>;
}

export interface GatewaySecond {
  readonly rps: number;
  readonly successRate: number | null;
  readonly degradedRate: number | null;
  readonly p50: number | null;
  readonly p95: number | null;
  readonly p99: number | null;
  /** Outcomes other than ok and degraded. */
  readonly errors: number;
}

export interface TimeseriesPoint {
  /** Seconds since the variant's load started: the second [t, t+1). */
  readonly t: number;
  readonly gateways: Readonly<Partial<Record<Strategy, GatewaySecond>>>;
}

/**
 * A variant's warm-up: load before its first phase, excluded from phases and claims, lasting from `minMs`
 * until the lab was steady (lab/runner/steady.ts), `maxMs` at most.
 */
export interface Warmup {
  /** How long it actually lasted. */
  readonly ms: number;
  /** The shortest warm-up asked for. */
  readonly minMs: number;
  /** The longest: a lab not steady by then was measured anyway. */
  readonly maxMs: number;
  /**
   * Whether the lab was steady when measuring began; false when the longest warm-up passed first (or the
   * run ended during it): then the first phase may show the lab warming up rather than the experiment.
   */
  readonly steady: boolean;
  /** Why it was not steady, e.g. `second 29: naive 57% ok, p50 1.93s (usually 12ms), p99 2s`. */
  readonly reason?: string;
}

export interface VariantRun {
  readonly variant: string;
  readonly settings: VariantSettings;
  /** The trust mode the variant ran in: its setting, else the lab's (absent when the target does not know it). */
  readonly trust?: TrustMode;
  /** How long the warm-up before the first phase actually lasted (`warmup.ms`). */
  readonly warmupMs: number;
  readonly warmup: Warmup;
  /** How long the runner waited before the variant for every backend instance to be ready; present when it had to. */
  readonly settledMs?: number;
  readonly phases: readonly PhaseResult[];
  readonly timeseries: readonly TimeseriesPoint[];
}

export interface CalibrationEntry {
  readonly variant: string;
  readonly phase: string;
  /** e.g. `latency on coin (delay 400ms, jitter 20ms)` */
  readonly fault: string;
  readonly kind: Fault['kind'];
  readonly service: BackendName;
  readonly configured: Readonly<Record<string, number>>;
  readonly observed: Readonly<Record<string, number>>;
  /** Why `observed` is empty, when the target could not say. */
  readonly note?: string;
}

export interface ClaimResult {
  readonly variant: string;
  readonly phase: string;
  readonly gateway?: Strategy;
  readonly service?: BackendName;
  readonly metric: string;
  readonly expected: string;
  readonly actual: number | null;
  /** Null: no verdict for this claim (see `reason`). */
  readonly holds: boolean | null;
  readonly reason?: string;
}

/** What drove the load: the built-in open-model generator, or k6 (experiments/load/video-page.ts). */
export type DriverName = 'builtin' | 'k6';

export interface RunResult {
  readonly experiment: { readonly name: string; readonly description: string; readonly file: string };
  readonly target: TargetName;
  /**
   * Which load driver measured. The built-in generator measures latency from each request's intended send
   * time; k6 from its actual send (see lab/load/k6-samples.ts).
   */
  readonly driver: DriverName;
  /** The k6 that measured (`v2.2.0`), with driver k6. */
  readonly k6Version?: string;
  readonly runId: string;
  readonly status: RunStatus;
  /** Why the run failed (status `failed`) or what stopped it (`aborted`). */
  readonly error?: string;
  readonly startedAt: string;
  readonly finishedAt: string;
  /** What the audit after the rollback found still active; [] is the expected answer. */
  /** Active in the lab after the run; `null` when the audit could not be done (then `auditError` says why). */
  readonly leftoverFaults: readonly LeftoverFault[] | null;
  /** Set when the audit itself could not be done (the lab was unreachable): then nothing is known. */
  readonly auditError?: string;
  /** Steps of the rollback that failed (leases still expire by themselves). */
  readonly rollbackProblems?: readonly string[];
  readonly load: {
    readonly rate: number;
    readonly endpoint: string;
    readonly timeoutMs: number;
    readonly gateways: readonly Strategy[];
  };
  readonly generator: { readonly fellBehind: boolean; readonly reason: string | null };
  readonly runs: readonly VariantRun[];
  readonly calibration: readonly CalibrationEntry[];
  readonly claims: readonly ClaimResult[];
  readonly verdict: Verdict;
  readonly verdictReason?: string;
}

// ---------------------------------------------------------------------------------------------------------
// From the generator's summaries

export function gatewayPhaseStats(stats: TargetStats): GatewayPhaseStats {
  return {
    requests: stats.requests,
    achievedRps: stats.achievedRps,
    successRate: stats.successRate,
    degradedRate: stats.degradedRate,
    latencyMs: stats.latencyMs,
    errors: stats.errors,
    fellBehind: stats.fellBehind,
    sent: stats.sent,
    dropped: stats.dropped,
    late: stats.late,
  };
}

export function errorCount(errors: Readonly<Record<string, number>>): number {
  return Object.values(errors).reduce((sum, n) => sum + n, 0);
}

export function gatewaySecond(stats: TargetStats): GatewaySecond {
  return {
    rps: stats.achievedRps,
    successRate: stats.successRate,
    degradedRate: stats.degradedRate,
    p50: stats.latencyMs?.p50 ?? null,
    p95: stats.latencyMs?.p95 ?? null,
    p99: stats.latencyMs?.p99 ?? null,
    errors: errorCount(stats.errors),
  };
}

function byGateway<T>(
  targets: Readonly<Record<string, TargetStats>>,
  gateways: readonly Strategy[],
  map: (stats: TargetStats) => T,
): Partial<Record<Strategy, T>> {
  const out: Partial<Record<Strategy, T>> = {};
  for (const gateway of gateways) {
    const stats = targets[gateway];
    if (stats) out[gateway] = map(stats);
  }
  return out;
}

export function timeseriesOf(
  seconds: readonly SecondSummary[],
  gateways: readonly Strategy[],
): TimeseriesPoint[] {
  return seconds.map((s) => ({ t: s.second, gateways: byGateway(s.targets, gateways, gatewaySecond) }));
}

/** What the run knows of a phase before the load generator is stopped. */
export interface PhaseRecord {
  readonly name: string;
  readonly plannedDurationMs: number;
  readonly faults: PhaseFault[];
  services: Partial<Record<BackendName, ServiceCounters>>;
  partial: boolean;
  /** Index of the phase's own window among the generator's windows; undefined until it opens. */
  window: number | undefined;
  /** See PhaseResult.settledMs. */
  settledMs?: number;
  rogue?: RogueTally;
  proxyRestarts?: ProxyRestart[];
  reapplied: ReappliedLease[];
}

/**
 * A variant's phases and timeseries. Each phase has its own window of the generator's (the others — the
 * warm-up, the injections and removals between phases — are left out); without a summary (the generator
 * never started or could not be stopped) the phases keep their faults and counters and have no gateway
 * figures.
 */
export function variantRun(
  variant: {
    readonly name: string;
    readonly settings: VariantSettings;
    readonly settledMs?: number;
    readonly trust?: TrustMode;
  },
  warmup: Warmup,
  records: readonly PhaseRecord[],
  summary: LoadSummary | undefined,
  gateways: readonly Strategy[],
): VariantRun {
  const phases = records.map((record): PhaseResult => {
    const window = record.window === undefined ? undefined : summary?.windows[record.window];
    return {
      name: record.name,
      startMs: window?.startMs ?? 0,
      durationMs: window?.durationMs ?? 0,
      plannedDurationMs: record.plannedDurationMs,
      partial: record.partial,
      faults: record.faults,
      gateways: window ? byGateway(window.targets, gateways, gatewayPhaseStats) : {},
      services: record.services,
      ...(record.settledMs ? { settledMs: record.settledMs } : {}),
      ...(record.rogue ? { rogue: record.rogue } : {}),
      ...(record.proxyRestarts ? { proxyRestarts: record.proxyRestarts } : {}),
      ...(record.reapplied.length > 0 ? { reapplied: record.reapplied } : {}),
    };
  });
  return {
    variant: variant.name,
    settings: variant.settings,
    ...(variant.trust ? { trust: variant.trust } : {}),
    warmupMs: warmup.ms,
    warmup,
    ...(variant.settledMs ? { settledMs: variant.settledMs } : {}),
    phases,
    timeseries: summary ? timeseriesOf(summary.seconds, gateways) : [],
  };
}

/**
 * Whether the generator kept its schedule in every measured phase (the warm-up is excluded: it exists to
 * absorb a cold start), and where it did not.
 */
export function generatorHealth(runs: readonly VariantRun[]): RunResult['generator'] {
  const reasons: string[] = [];
  for (const run of runs) {
    for (const phase of run.phases) {
      const behind = Object.entries(phase.gateways).filter(([, stats]) => stats?.fellBehind);
      if (behind.length === 0) continue;
      const where = runs.length > 1 ? `${run.variant}/${phase.name}` : phase.name;
      const what = behind.map(([gateway, stats]) => {
        const s = stats as GatewayPhaseStats;
        const late = s.sent === 0 ? 0 : s.late / s.sent;
        return `${gateway} ${s.dropped} of ${s.sent + s.dropped} sends dropped, ${Number((late * 100).toFixed(1))}% late`;
      });
      reasons.push(`${where}: ${what.join('; ')}`);
    }
  }
  return reasons.length > 0
    ? { fellBehind: true, reason: `the load generator fell behind (${reasons.join(' | ')})` }
    : { fellBehind: false, reason: null };
}

// ---------------------------------------------------------------------------------------------------------
// The verdict and the exit code

export function verdictOf(
  status: RunStatus,
  generator: RunResult['generator'],
  claims: readonly ClaimResult[],
): Pick<RunResult, 'verdict' | 'verdictReason'> {
  if (status !== 'completed') {
    return { verdict: 'no-verdict', verdictReason: `the run ${status}: its claims are not judged` };
  }
  if (generator.fellBehind) {
    return {
      verdict: 'no-verdict',
      verdictReason: `${generator.reason}; the numbers do not describe the gateways at the asked rate`,
    };
  }
  const violated = claims.filter((c) => c.holds === false).length;
  if (violated > 0) {
    return {
      verdict: 'violated',
      verdictReason: `${violated} of ${claims.length} claim${claims.length === 1 ? '' : 's'} did not hold`,
    };
  }
  const unjudged = claims.filter((c) => c.holds === null);
  if (unjudged.length > 0) {
    return {
      verdict: 'no-verdict',
      verdictReason: `${unjudged.length} claim${unjudged.length === 1 ? '' : 's'} could not be judged: ${unjudged
        .map((c) => `${c.gateway ?? c.service} ${c.metric} in ${c.phase} (${c.reason ?? 'no value'})`)
        .join('; ')}`,
    };
  }
  return { verdict: 'held' };
}

/** The documented exit codes of `chaos-lab run`: 0 held, 1 violated / no verdict / failed, 130 aborted. */
export function exitCodeOf(result: Pick<RunResult, 'status' | 'verdict'>): 0 | 1 | 130 {
  if (result.status === 'aborted') return 130;
  if (result.status === 'failed') return 1;
  return result.verdict === 'held' ? 0 : 1;
}

// ---------------------------------------------------------------------------------------------------------
// Files

export const RESULT_FILE = 'result.json';

/** Writes `result.json` whole or not at all (a reader never sees half a file). */
export function writeResult(dir: string, result: RunResult): string {
  const file = path.join(dir, RESULT_FILE);
  const temporary = `${file}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(result, null, 2)}\n`);
  renameSync(temporary, file);
  return file;
}

/** The parameters of a fault as results show them, in the lab's units: `{ delayMs, jitterMs }`, `{}` for kill. */
export function faultParams(fault: Fault): Record<string, number> {
  return { ...paramsOf(fault) };
}

export function loadOf(experiment: Experiment): RunResult['load'] {
  return {
    rate: experiment.load.rate,
    endpoint: experiment.load.endpoint,
    timeoutMs: experiment.load.timeoutMs,
    gateways: experiment.gateways,
  };
}
