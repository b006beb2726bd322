/**
 * Counts and latencies of one target over one stretch of time (the whole run, a phase window, a second).
 * Latencies go into an HDR histogram: microsecond resolution from 1 µs to 60 s, 3 significant digits.
 */
import { build, type Histogram } from 'hdr-histogram-js';
import { type ResponseClass, SUCCESS_CLASSES } from './classify.ts';

const LOWEST_US = 1;
const HIGHEST_US = 60_000_000;

export interface LatencySummary {
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
  readonly max: number;
}

export interface TallyStats {
  /** Sends that went out (dropped ones did not). */
  readonly sent: number;
  /** Sends with an outcome (a response, a timeout or a connection error); cancelled ones have none. */
  readonly requests: number;
  /** Sends that did not go out because the target's in-flight cap was full. */
  readonly dropped: number;
  /** Sends that went out more than the late threshold after their intended time. */
  readonly late: number;
  /** In flight when the generator was stopped without draining; no outcome. */
  readonly cancelled: number;
  readonly ok: number;
  readonly degraded: number;
  /** (ok + degraded) / requests; null without requests. */
  readonly successRate: number | null;
  /** degraded / requests; null without requests. */
  readonly degradedRate: number | null;
  /** Milliseconds from the intended send time to the end of the response, over every outcome. */
  readonly latencyMs: LatencySummary | null;
  /** Outcomes other than ok and degraded, by class. */
  readonly errors: Readonly<Record<string, number>>;
}

export class Tally {
  private histogram: Histogram | undefined;
  private readonly classes = new Map<ResponseClass, number>();
  sent = 0;
  dropped = 0;
  late = 0;
  cancelled = 0;
  requests = 0;

  record(outcome: ResponseClass, latencyMs: number): void {
    this.requests++;
    this.classes.set(outcome, (this.classes.get(outcome) ?? 0) + 1);
    // Built on first use: a second or a window with no outcome costs no 70 kB histogram.
    this.histogram ??= build({
      lowestDiscernibleValue: LOWEST_US,
      highestTrackableValue: HIGHEST_US,
      numberOfSignificantValueDigits: 3,
      autoResize: false,
    });
    const us = Math.round(latencyMs * 1000);
    this.histogram.recordValue(Math.min(HIGHEST_US, Math.max(LOWEST_US, us)));
  }

  count(outcome: ResponseClass): number {
    return this.classes.get(outcome) ?? 0;
  }

  latency(): LatencySummary | null {
    const h = this.histogram;
    if (!h || h.totalCount === 0) return null;
    return {
      p50: toMs(h.getValueAtPercentile(50)),
      p95: toMs(h.getValueAtPercentile(95)),
      p99: toMs(h.getValueAtPercentile(99)),
      max: toMs(h.maxValue),
    };
  }

  stats(): TallyStats {
    const ok = this.count('ok');
    const degraded = this.count('degraded');
    const errors: Record<string, number> = {};
    for (const [outcome, n] of [...this.classes].sort(([a], [b]) => a.localeCompare(b))) {
      if (!SUCCESS_CLASSES.has(outcome)) errors[outcome] = n;
    }
    return {
      sent: this.sent,
      requests: this.requests,
      dropped: this.dropped,
      late: this.late,
      cancelled: this.cancelled,
      ok,
      degraded,
      successRate: this.requests === 0 ? null : (ok + degraded) / this.requests,
      degradedRate: this.requests === 0 ? null : degraded / this.requests,
      latencyMs: this.latency(),
      errors,
    };
  }
}

function toMs(us: number): number {
  return Math.round(us) / 1000;
}
