/**
 * Whether the lab is steady: the warm-up's judge. A lab that has just started answers its first seconds
 * of load slowly and partly (JIT, connections, caches, two busy cores): on a two-core laptop the tour's
 * baseline, with no fault at all, once saw naive serve 57% of pages at p50 1.93 s after a fixed 3 s
 * warm-up, and the verdict was lost. So measuring starts only once the load generator's own per-second
 * figures say the lab answers as it usually does.
 *
 * A second is steady when, for every gateway,
 *   - it answered: at least one request of the second has an outcome;
 *   - with success: at least 99% of them were pages (ok or degraded);
 *   - at its usual latency: its p50 is within 1.5× (or 20 ms, whichever is more) of the lowest p50 the
 *     gateway had in the last 10 seconds — a warming lab's latency falls second by second; a machine
 *     that has become busier for good is its new usual once 10 s have passed;
 *   - with no request near its timeout: its p99 is at most half the load's timeout;
 * and the generator kept its schedule (no send dropped, at most 1% of them late: `fellBehind`). The
 * lab is steady when its last `seconds` reported seconds are all steady, judged against the lowest p50s
 * known now (a second that looked fine alone is not when the next ones are much faster).
 *
 * Pure: it is fed the generator's seconds (`add`) and keeps no clock; the runner decides when to look.
 */
import type { SecondSummary, TargetStats } from '../load/generator.ts';

export interface SteadyCriteria {
  /** Consecutive steady seconds that make a steady lab. @default 2 */
  readonly seconds: number;
  /** A gateway's successRate in a steady second. @default 0.99 */
  readonly minSuccessRate: number;
  /** A steady second's p50 is at most this many times the gateway's lowest recent p50… @default 1.5 */
  readonly p50Tolerance: number;
  /** …or this many milliseconds above it, whichever is more (noise on a 5 ms page is no trend). @default 20 */
  readonly p50SlackMs: number;
  /** How many of the latest seconds the lowest p50 is taken from. @default 10 */
  readonly horizonSeconds: number;
  /** A steady second's p99 is at most this. @default half the load's timeout */
  readonly maxP99Ms: number;
}

export const STEADY_DEFAULTS = {
  seconds: 2,
  minSuccessRate: 0.99,
  p50Tolerance: 1.5,
  p50SlackMs: 20,
  horizonSeconds: 10,
} as const;

/** The criteria for a load whose requests time out after `timeoutMs`. */
export function steadyCriteria(timeoutMs: number, overrides: Partial<SteadyCriteria> = {}): SteadyCriteria {
  return { ...STEADY_DEFAULTS, maxP99Ms: timeoutMs / 2, ...overrides };
}

/** What a gateway did in one second, as the judge needs it. */
interface GatewayFigures {
  readonly requests: number;
  readonly successRate: number | null;
  readonly p50: number | null;
  readonly p99: number | null;
}

interface JudgedSecond {
  readonly t: number;
  readonly gateways: ReadonlyMap<string, GatewayFigures | undefined>;
  /** Why the generator itself was not on schedule, if it was not. */
  readonly behind: string | undefined;
}

export interface SecondVerdict {
  /** The second's number since the load started. */
  readonly t: number;
  /**
   * What was not steady in it, one entry per gateway (and one for the generator), e.g.
   * `naive 57% ok, p50 1.93s (usually 12ms), p99 2s`; empty when the second was steady.
   */
  readonly problems: readonly string[];
  /** Whether the lab is steady now, this second included. */
  readonly steady: boolean;
}

export class SteadyWatch {
  private readonly judged: JudgedSecond[] = [];

  constructor(
    private readonly gateways: readonly string[],
    private readonly criteria: SteadyCriteria,
  ) {}

  /** Takes the generator's next reported second; says what was unsteady in it, and whether the lab is steady. */
  add(second: SecondSummary): SecondVerdict {
    const gateways = new Map(this.gateways.map((g) => [g, figuresOf(second.targets[g])] as const));
    const behind = Object.values(second.targets).find((s) => s.fellBehind);
    this.judged.push({ t: second.second, gateways, behind: behind ? behindText(behind) : undefined });
    const latest = this.judged.at(-1) as JudgedSecond;
    return { t: second.second, problems: this.problems(latest), steady: this.steady };
  }

  /** The last `seconds` seconds were all steady. */
  get steady(): boolean {
    const last = this.judged.slice(-this.criteria.seconds);
    return last.length >= this.criteria.seconds && last.every((s) => this.problems(s).length === 0);
  }

  /** What kept the lab from being steady, from the latest unsteady second of the last ones; none when steady. */
  get reason(): string | undefined {
    if (this.steady) return undefined;
    if (this.judged.length === 0) return 'the load generator reported no second yet';
    for (const second of this.judged.slice(-this.criteria.seconds).reverse()) {
      const problems = this.problems(second);
      if (problems.length > 0) return `second ${second.t}: ${problems.join('; ')}`;
    }
    return `only ${this.judged.length} steady second${this.judged.length === 1 ? '' : 's'} of the ${this.criteria.seconds} in a row needed`;
  }

  private problems(second: JudgedSecond): string[] {
    const problems: string[] = [];
    for (const gateway of this.gateways) {
      const figures = second.gateways.get(gateway);
      const problem = this.gatewayProblem(gateway, figures);
      if (problem) problems.push(problem);
    }
    if (second.behind) problems.push(`the load generator ${second.behind}`);
    return problems;
  }

  private gatewayProblem(gateway: string, figures: GatewayFigures | undefined): string | undefined {
    if (!figures || figures.requests === 0) return `${gateway} no answer`;
    const c = this.criteria;
    const lowest = this.lowestP50(gateway);
    const p50Bound =
      lowest === undefined ? undefined : Math.max(lowest * c.p50Tolerance, lowest + c.p50SlackMs);
    const unsuccessful = figures.successRate === null || figures.successRate < c.minSuccessRate;
    const slow = figures.p50 !== null && p50Bound !== undefined && figures.p50 > p50Bound;
    const tail = figures.p99 !== null && figures.p99 > c.maxP99Ms;
    if (!unsuccessful && !slow && !tail) return undefined;
    const parts = [
      `${percent(figures.successRate)} ok`,
      `p50 ${ms(figures.p50)}${slow && lowest !== undefined ? ` (usually ${ms(lowest)})` : ''}`,
      `p99 ${ms(figures.p99)}${tail ? ` (over ${ms(c.maxP99Ms)})` : ''}`,
    ];
    return `${gateway} ${parts.join(', ')}`;
  }

  private lowestP50(gateway: string): number | undefined {
    let lowest: number | undefined;
    for (const second of this.judged.slice(-this.criteria.horizonSeconds)) {
      const p50 = second.gateways.get(gateway)?.p50;
      if (p50 !== null && p50 !== undefined && (lowest === undefined || p50 < lowest)) lowest = p50;
    }
    return lowest;
  }
}

function figuresOf(stats: TargetStats | undefined): GatewayFigures | undefined {
  if (!stats) return undefined;
  return {
    requests: stats.requests,
    successRate: stats.successRate,
    p50: stats.latencyMs?.p50 ?? null,
    p99: stats.latencyMs?.p99 ?? null,
  };
}

function behindText(stats: TargetStats): string {
  const parts: string[] = [];
  if (stats.dropped > 0) parts.push(`dropped ${stats.dropped} of ${stats.sent + stats.dropped} sends`);
  if (stats.late > 0) parts.push(`sent ${stats.late} of ${stats.sent} late`);
  return parts.length > 0 ? parts.join(', ') : 'fell behind';
}

function percent(share: number | null): string {
  return share === null ? '-%' : `${Number((share * 100).toFixed(1))}%`;
}

/** `12ms`, `1.93s`, as the terminal's figures. */
function ms(value: number | null): string {
  if (value === null) return '-';
  return value < 1000 ? `${Math.round(value)}ms` : `${Number((value / 1000).toFixed(2))}s`;
}
