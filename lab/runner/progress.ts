/**
 * The terminal while an experiment runs: one status line, rewritten every second on a TTY (appended as
 * plain lines otherwise, so CI logs stay readable), and a summary when it is over:
 *
 *   [default] fault · latency on coin (delay 400ms) · 12s left │ naive 30 rps p99 412ms err 0 │ …
 */
import type { Strategy } from '../../services/topology.ts';
import { formatDuration } from '../duration.ts';
import { table } from '../io.ts';
import type { RunEvent } from './journal.ts';
import type { ClaimResult, GatewayPhaseStats, GatewaySecond, RunResult } from './result.ts';
import { errorCount } from './result.ts';
import type { ProgressSink } from './run.ts';

export interface TerminalProgressOptions {
  readonly write: (text: string) => void;
  /** Rewrite one line in place (a terminal) or append lines (a pipe, a CI log). */
  readonly isTTY: boolean;
  /** Line width on a TTY; longer status lines are cut. @default 160 */
  readonly columns?: number;
  /** Epoch milliseconds. @default Date.now */
  readonly now?: () => number;
}

export interface TerminalProgress extends ProgressSink {
  /** Ends the status line; call before printing anything else. */
  close(): void;
}

const CLEAR_LINE = '\r\x1b[2K';

export function createTerminalProgress(options: TerminalProgressOptions): TerminalProgress {
  const now = options.now ?? Date.now;
  const columns = options.columns ?? 160;
  let variant = '';
  let phase: { name: string; faults: readonly string[]; endsAt: number } | undefined;
  let warmup = false;
  /** The latest unsteady second of the warm-up, while the runner waits for a steady lab. */
  let unsteady: { elapsedMs: number; problems: readonly string[] } | undefined;
  let gateways: readonly Strategy[] = [];
  let latest: Partial<Record<Strategy, GatewaySecond>> = {};
  let shown = false;
  let ticker: NodeJS.Timeout | undefined;

  /** Off a TTY each unsteady second of the warm-up has a line of its own; on one, the status line tells it. */
  const warmupText = (): string => {
    if (!unsteady) return 'warm-up';
    const waiting = 'warm-up · waiting for the lab to be steady';
    if (!options.isTTY) return waiting;
    return `${waiting} (${formatDuration(unsteady.elapsedMs)}): ${unsteady.problems.join('; ')}`;
  };

  const statusLine = (): string | undefined => {
    if (!variant) return undefined;
    const where = phase
      ? [
          phase.name,
          ...(phase.faults.length > 0 ? [phase.faults.join(', ')] : []),
          `${Math.max(0, Math.ceil((phase.endsAt - now()) / 1000))}s left`,
        ].join(' · ')
      : warmup
        ? warmupText()
        : 'starting';
    const perGateway = gateways.map((g) => {
      const s = latest[g];
      return s
        ? `${g} ${Math.round(s.rps)} rps p99 ${s.p99 === null ? '-' : ms(s.p99)} err ${s.errors}`
        : `${g} -`;
    });
    return [`[${variant}] ${where}`, ...perGateway].join(' │ ');
  };

  const draw = () => {
    const line = statusLine();
    if (line === undefined) return;
    if (options.isTTY) {
      options.write(`${CLEAR_LINE}${line.length > columns ? `${line.slice(0, columns - 1)}…` : line}`);
      shown = true;
    } else {
      options.write(`${line}\n`);
    }
  };

  const print = (line: string) => {
    if (options.isTTY && shown) options.write(CLEAR_LINE);
    options.write(`${line}\n`);
    shown = false;
    if (options.isTTY) draw();
  };

  const startTicker = () => {
    if (!options.isTTY || ticker) return;
    // The countdown moves even between seconds reported by the generator (those lag by up to a timeout).
    ticker = setInterval(draw, 1000);
    ticker.unref();
  };

  return {
    event(event: RunEvent) {
      switch (event.type) {
        case 'run-started':
          gateways = event.gateways;
          print(
            `running ${event.experiment.name} (${event.experiment.file}) on the ${event.target} target: ${
              event.phases.length
            } phase${event.phases.length === 1 ? '' : 's'} × ${event.variants.length} variant${
              event.variants.length === 1 ? '' : 's'
            }, ${event.rate} rps to each of ${event.gateways.join(', ')} → ${event.runId}`,
          );
          return;
        case 'lab-ready':
          print(
            `lab ready: ${Object.entries(event.gateways)
              .map(([g, url]) => `${g} ${url}`)
              .join(', ')}`,
          );
          return;
        case 'variant-started':
          variant = event.variant;
          phase = undefined;
          warmup = false;
          unsteady = undefined;
          latest = {};
          return;
        case 'load-started':
          warmup = true;
          startTicker();
          draw();
          return;
        case 'warmup-waiting':
          unsteady = { elapsedMs: event.elapsedMs, problems: event.problems };
          if (!options.isTTY) {
            print(
              `[${event.variant}] waiting for the lab to be steady (${formatDuration(event.elapsedMs)}): ${event.problems.join('; ')}`,
            );
          } else {
            draw();
          }
          return;
        case 'warmup-finished':
          // A lab that never got steady is a warning of the run's, printed as such.
          if (unsteady && event.steady) {
            print(
              `[${event.variant}] the lab is steady: measuring after ${formatDuration(event.ms)} of warm-up`,
            );
          }
          unsteady = undefined;
          return;
        case 'phase-started':
          phase = { name: event.phase, faults: event.faults, endsAt: now() + event.durationMs };
          if (!options.isTTY) {
            print(
              `[${event.variant}] phase ${event.phase} (${formatDuration(event.durationMs)})${
                event.faults.length > 0 ? `: ${event.faults.join(', ')}` : ''
              }`,
            );
          } else {
            draw();
          }
          return;
        case 'second':
          latest = event.gateways;
          draw();
          return;
        case 'variant-finished':
          phase = undefined;
          warmup = false;
          return;
        case 'rollback':
          print(`${event.reason === 'abort' ? 'aborted' : 'failed'}: ${event.error ?? ''} — rolling back…`);
          return;
        default:
          return;
      }
    },
    note(line) {
      print(line);
    },
    close() {
      clearInterval(ticker);
      ticker = undefined;
      if (options.isTTY && shown) options.write('\n');
      shown = false;
    },
  };
}

// ---------------------------------------------------------------------------------------------------------
// The summary

/** The per-phase table for each gateway, the claims, the verdict and the audit, as lines. */
/** What became of the run's faults on a fault proxy that restarted (result.ts's ProxyRestart). */
const PROXY_FAULTS = {
  none: 'no fault of the run on it',
  reapplied: "the run's faults on it lost and put back",
  lost: "the run's faults on it lost until the phase's end",
} as const;

export function summaryLines(result: RunResult): string[] {
  const lines: string[] = [];
  for (const run of result.runs) {
    lines.push(
      result.runs.length > 1 || run.variant !== 'default'
        ? `variant ${run.variant} ${JSON.stringify({ ...run.settings, ...(run.trust ? { trust: run.trust } : {}) })}`
        : `${result.experiment.name}`,
    );
    const rows: string[][] = [
      ['PHASE', 'GATEWAY', 'REQUESTS', 'RPS', 'SUCCESS', 'DEGRADED', 'P50', 'P99', 'ERRORS'],
    ];
    for (const phase of run.phases) {
      const name = phase.partial ? `${phase.name} (partial)` : phase.name;
      for (const gateway of result.load.gateways) {
        const stats = phase.gateways[gateway];
        rows.push(
          stats ? gatewayRow(name, gateway, stats) : [name, gateway, '-', '-', '-', '-', '-', '-', '-'],
        );
      }
    }
    lines.push(...table(rows).map((line) => `  ${line}`));
    if (run.warmup && !run.warmup.steady) {
      lines.push(
        `  warm-up: the lab was not steady after ${formatDuration(run.warmup.ms)}${
          run.warmup.reason ? ` (${run.warmup.reason})` : ''
        }; the first phase may show it warming up`,
      );
    }
    const restarts = run.phases.flatMap((phase) =>
      Object.entries(phase.services)
        .filter(([, c]) => c && (c.restarts > 0 || c.panicsRecovered > 0))
        .map(
          ([service, c]) =>
            `${phase.name}: ${service} ${c?.restarts ?? 0} restart(s), ${c?.panicsRecovered ?? 0} recovered panic(s)`,
        ),
    );
    if (restarts.length > 0) lines.push(`  services — ${restarts.join('; ')}`);
    const proxies = run.phases.flatMap((phase) =>
      (phase.proxyRestarts ?? []).map(
        (r) => `${phase.name}: ${r.instance} ${r.restarts} restart(s), ${PROXY_FAULTS[r.faults]}`,
      ),
    );
    if (proxies.length > 0) lines.push(`  fault proxies — ${proxies.join('; ')}`);
  }
  lines.push(
    result.driver === 'k6'
      ? `measured by k6${result.k6Version ? ` ${result.k6Version}` : ''} (latency from the actual send)`
      : 'measured by the built-in generator (latency from the intended send time)',
  );
  if (result.calibration.length > 0) {
    lines.push('calibration');
    for (const row of result.calibration) {
      const observed =
        Object.keys(row.observed).length > 0 ? pairs(row.observed) : (row.note ?? 'not observed');
      lines.push(`  ${row.phase}: ${row.fault} — configured ${pairs(row.configured)}, observed ${observed}`);
    }
  }
  if (result.claims.length > 0) {
    lines.push('claims');
    for (const claim of result.claims) lines.push(`  ${claimLine(claim, result.runs.length > 1)}`);
  }
  if (result.status !== 'completed')
    lines.push(`status: ${result.status}${result.error ? ` — ${result.error}` : ''}`);
  lines.push(
    result.verdict === 'held'
      ? 'verdict: held — every claim held'
      : `verdict: ${result.verdict}${result.verdictReason ? ` — ${result.verdictReason}` : ''}`,
  );
  if (result.auditError || result.leftoverFaults === null)
    lines.push(`audit: unknown — ${result.auditError ?? 'not audited'}`);
  else
    lines.push(
      result.leftoverFaults.length === 0
        ? 'audit: no fault left in the lab'
        : `audit: STILL ACTIVE ${result.leftoverFaults.map((l) => `${l.kind} ${l.id} on ${l.instance}`).join(', ')}`,
    );
  for (const problem of result.rollbackProblems ?? []) lines.push(`rollback: ${problem}`);
  return lines;
}

function gatewayRow(phase: string, gateway: string, s: GatewayPhaseStats): string[] {
  const errors = Object.entries(s.errors)
    .sort(([, a], [, b]) => b - a)
    .map(([kind, n]) => `${kind} ${n}`);
  return [
    phase,
    s.fellBehind ? `${gateway} (behind)` : gateway,
    String(s.requests),
    s.achievedRps.toFixed(1),
    share(s.successRate),
    share(s.degradedRate),
    s.latencyMs ? ms(s.latencyMs.p50) : '-',
    s.latencyMs ? ms(s.latencyMs.p99) : '-',
    errorCount(s.errors) === 0 ? '0' : errors.join(', '),
  ];
}

export function claimLine(claim: ClaimResult, withVariant: boolean): string {
  const mark = claim.holds === true ? '✓' : claim.holds === false ? '✗' : '?';
  const actual = claim.actual === null ? 'no value' : formatMetric(claim.metric, claim.actual);
  const where = withVariant ? `${claim.phase} (${claim.variant})` : claim.phase;
  const tail = claim.holds === null ? ` — no verdict: ${claim.reason ?? 'unknown'}` : '';
  return `${mark} ${claim.gateway ?? claim.service} ${claim.metric} ${claim.expected} in ${where}: ${actual}${tail}`;
}

function formatMetric(metric: string, value: number): string {
  if (metric === 'successRate' || metric === 'degradedRate') return share(value);
  if (['p50', 'p95', 'p99', 'max'].includes(metric)) return ms(value);
  if (metric === 'achievedRps') return `${value.toFixed(1)} rps`;
  return String(value);
}

function share(value: number | null): string {
  return value === null ? '-' : `${Number((value * 100).toFixed(2))}%`;
}

function ms(value: number): string {
  return value < 1000 ? `${Math.round(value)}ms` : `${Number((value / 1000).toFixed(2))}s`;
}

function pairs(record: Readonly<Record<string, number>>): string {
  return Object.entries(record)
    .map(([k, v]) => `${k} ${Number(v.toFixed(3))}`)
    .join(', ');
}
