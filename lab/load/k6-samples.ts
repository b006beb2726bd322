/**
 * k6's JSON output (`k6 run --out json=FILE`: one JSON object per line) turned into the built-in generator's
 * summaries — the same Tally and HDR histograms per window, per second and for the whole run — so a run
 * driven by k6 writes the same result.json as one driven by the built-in generator.
 *
 * Three kinds of sample matter (experiments/load/config.ts's METRICS):
 * - `page_sent`: a request went out; its time is the send time, which places it in a second and a window;
 * - `page_duration`: its outcome (the `class` tag) and latency, paired with its send by the `rid` metadata;
 * - `dropped_iterations`: an arrival k6 could not start for want of a free VU (`scenario` = the gateway).
 *
 * What differs from the built-in generator, and why:
 * - latency runs from the moment k6 actually sent the request, not from the intended send time: k6 does not
 *   say when it meant to start an iteration. An iteration k6 cannot start at all is dropped and counted, so
 *   a generator that falls behind is still noticed (`fellBehind`), but a late start is not — `late` is
 *   always 0 here;
 * - samples reach the file in batches (k6 writes every 200 ms), so a second is reported once it is over,
 *   a little slack has passed, and each of its requests has an outcome.
 */
import { METRICS } from '../../experiments/load/config.ts';
import type { ResponseClass } from './classify.ts';
import { type LoadSummary, type SecondSummary, summariseWindows, type TargetStats } from './generator.ts';
import { Tally } from './tally.ts';

const DROPPED = 'dropped_iterations';

export interface K6SampleTallyOptions {
  /** Gateway names: the `gateway` tag of page samples and the `scenario` tag of dropped iterations. */
  readonly targets: readonly string[];
  readonly rate: number;
  readonly timeoutMs: number;
  /** VUs per gateway: requests that can be in flight before k6 drops arrivals. */
  readonly vus: number;
  /** Epoch ms of the load's start: second 0 begins here. */
  readonly t0: number;
  /** The first window's name. */
  readonly window: string;
  /** How long after a second ends before it may be reported (k6 writes its samples in batches). @default 1000 */
  readonly completionSlackMs?: number;
}

interface Window {
  readonly name: string;
  readonly start: number;
  end: number | undefined;
  readonly tallies: Map<string, Tally>;
}

interface Second {
  readonly tallies: Map<string, Tally>;
  pending: number;
}

interface Pending {
  readonly tallies: readonly Tally[];
  readonly second: number;
}

/** lab/load/classify.ts's classes, as the scripts' `class` tag spells them. */
const CLASS = /^(ok|degraded|4xx|5xx:\d{3}|http:\d{3}|timeout|connection)$/;

/** One line of k6's JSON output, as far as it is read here. */
interface K6Point {
  readonly metric: string;
  readonly type: string;
  readonly data: {
    readonly time: string;
    readonly value: number;
    readonly tags?: Readonly<Record<string, string>> | null;
    readonly metadata?: Readonly<Record<string, string>>;
  };
}

export class K6SampleTally {
  private readonly totals = new Map<string, Tally>();
  private readonly windows: Window[] = [];
  private readonly seconds = new Map<number, Second>();
  private readonly pending = new Map<string, Pending>();
  /** Requests sent after `stop`: their outcomes are ignored too. */
  private readonly ignored = new Set<string>();
  private nextSecond = 0;
  private stoppedAt: number | undefined;
  /** Lines that were not JSON, or a page sample without what it needs: a sign the script and this drifted. */
  unreadable = 0;

  constructor(private readonly options: K6SampleTallyOptions) {
    for (const name of options.targets) this.totals.set(name, new Tally());
    this.windows.push({
      name: options.window,
      start: options.t0,
      end: undefined,
      tallies: this.newTallies(),
    });
  }

  /** Requests sent from `at` on belong to window `name`. */
  mark(name: string, at: number): void {
    if (this.stoppedAt !== undefined) throw new Error('mark() after stop()');
    (this.windows.at(-1) as Window).end = at;
    this.windows.push({ name, start: at, end: undefined, tallies: this.newTallies() });
  }

  /** Requests sent from `at` on are not counted at all (k6 may still send a few while it stops). */
  stop(at: number): void {
    this.stoppedAt ??= at;
    (this.windows.at(-1) as Window).end ??= at;
  }

  /** Requests sent before the stop that have no outcome yet. */
  get inFlight(): number {
    return this.pending.size;
  }

  /** One line of the JSON output; anything but the samples read here is skipped cheaply. */
  feed(line: string): void {
    // Every line is parsed only if it may matter: k6 writes about fifteen samples per request.
    if (
      !line.startsWith(`{"metric":"${METRICS.sent}"`) &&
      !line.startsWith(`{"metric":"${METRICS.duration}"`)
    ) {
      if (!line.startsWith(`{"metric":"${DROPPED}"`)) return;
    }
    let point: K6Point;
    try {
      point = JSON.parse(line) as K6Point;
    } catch {
      this.unreadable++;
      return;
    }
    if (point.type !== 'Point') return;
    const at = Date.parse(point.data.time);
    const tags = point.data.tags ?? {};
    if (point.metric === DROPPED) {
      this.dropped(tags.scenario, at, point.data.value);
      return;
    }
    const gateway = tags.gateway;
    const rid = point.data.metadata?.rid;
    if (gateway === undefined || !this.totals.has(gateway) || rid === undefined || Number.isNaN(at)) {
      this.unreadable++;
      return;
    }
    if (point.metric === METRICS.sent) this.sent(gateway, rid, at);
    else {
      const outcome =
        tags.class !== undefined && CLASS.test(tags.class) ? (tags.class as ResponseClass) : undefined;
      this.outcome(gateway, rid, outcome, point.data.value, at);
    }
  }

  /**
   * Seconds that are over (by `now`, plus the slack), in order, whose requests all have an outcome; each is
   * returned once.
   */
  completeSeconds(now: number): SecondSummary[] {
    const slack = this.options.completionSlackMs ?? 1_000;
    const done: SecondSummary[] = [];
    const last = this.stoppedAt === undefined ? Number.POSITIVE_INFINITY : this.secondOf(this.stoppedAt - 1);
    while (this.nextSecond <= last) {
      const index = this.nextSecond;
      const end = this.options.t0 + (index + 1) * 1_000;
      if (now < end + slack || (this.seconds.get(index)?.pending ?? 0) > 0) break;
      done.push(this.secondSummary(index));
      this.nextSecond++;
    }
    return done;
  }

  /**
   * The summary, once k6 is gone: requests still without an outcome are `cancelled` (k6 was stopped while
   * they were in flight).
   */
  finish(): LoadSummary {
    const { t0, rate, timeoutMs, vus } = this.options;
    const end = this.stoppedAt ?? t0;
    for (const [, request] of this.pending) {
      for (const tally of request.tallies) tally.cancelled++;
    }
    this.pending.clear();
    const durationMs = Math.max(0, end - t0);
    const seconds: SecondSummary[] = [];
    for (let index = 0; t0 + index * 1_000 < end; index++) seconds.push(this.secondSummary(index));
    const targets = this.byTarget(this.totals, durationMs);
    const windows = summariseWindows(this.windows, t0, end, (tallies, ms) => this.byTarget(tallies, ms));
    const reasons = Object.entries(targets)
      .filter(([, stats]) => stats.fellBehind)
      .map(
        ([name, stats]) =>
          `${name}: ${stats.dropped} of ${stats.sent + stats.dropped} arrivals dropped (k6 had no free VU of ${vus})`,
      );
    return {
      rate,
      timeoutMs,
      maxInFlight: vus,
      // k6 does not say how late it started an iteration; only drops tell that it fell behind.
      lateThresholdMs: 0,
      startedAt: t0,
      durationMs,
      targets,
      windows,
      seconds,
      fellBehind: reasons.length > 0,
      fellBehindReason: reasons.length > 0 ? reasons.join('; ') : undefined,
    };
  }

  // -------------------------------------------------------------------------------------------------------

  private sent(gateway: string, rid: string, at: number): void {
    if (this.stoppedAt !== undefined && at >= this.stoppedAt) {
      this.ignored.add(rid);
      return;
    }
    const second = this.secondOf(at);
    const tallies = this.talliesAt(gateway, at, second);
    for (const tally of tallies) tally.sent++;
    this.secondAt(second).pending++;
    this.pending.set(rid, { tallies, second });
  }

  private outcome(
    gateway: string,
    rid: string,
    outcome: ResponseClass | undefined,
    latencyMs: number,
    at: number,
  ): void {
    if (this.ignored.delete(rid)) return;
    if (outcome === undefined || !Number.isFinite(latencyMs)) {
      this.unreadable++;
      return;
    }
    let request = this.pending.get(rid);
    if (request === undefined) {
      // Its page_sent sample was never seen (it should always come first): place it by its own send time.
      this.sent(gateway, rid, at - latencyMs);
      request = this.pending.get(rid);
      if (request === undefined) return;
    }
    this.pending.delete(rid);
    for (const tally of request.tallies) tally.record(outcome, latencyMs);
    this.secondAt(request.second).pending--;
  }

  private dropped(gateway: string | undefined, at: number, count: number): void {
    if (gateway === undefined || !this.totals.has(gateway) || Number.isNaN(at)) return;
    if (this.stoppedAt !== undefined && at >= this.stoppedAt) return;
    for (const tally of this.talliesAt(gateway, at, this.secondOf(at))) tally.dropped += count;
  }

  private talliesAt(gateway: string, at: number, second: number): Tally[] {
    return [
      this.totals.get(gateway) as Tally,
      this.windowAt(at).tallies.get(gateway) as Tally,
      this.secondAt(second).tallies.get(gateway) as Tally,
    ];
  }

  private windowAt(at: number): Window {
    for (let i = this.windows.length - 1; i > 0; i--) {
      const window = this.windows[i] as Window;
      if (window.start <= at) return window;
    }
    return this.windows[0] as Window;
  }

  private secondOf(at: number): number {
    return Math.max(0, Math.floor((at - this.options.t0) / 1_000));
  }

  private secondAt(index: number): Second {
    let second = this.seconds.get(index);
    if (!second) {
      second = { tallies: this.newTallies(), pending: 0 };
      this.seconds.set(index, second);
    }
    return second;
  }

  private secondSummary(index: number): SecondSummary {
    const start = this.options.t0 + index * 1_000;
    const end = this.stoppedAt ?? Number.POSITIVE_INFINITY;
    const durationMs = Math.min(1_000, Math.max(0, end - start));
    const tallies = this.seconds.get(index)?.tallies ?? this.newTallies();
    return { second: index, durationMs, targets: this.byTarget(tallies, durationMs) };
  }

  private byTarget(tallies: ReadonlyMap<string, Tally>, durationMs: number): Record<string, TargetStats> {
    return Object.fromEntries(
      this.options.targets.map((name) => [name, targetStats(tallies.get(name) ?? new Tally(), durationMs)]),
    );
  }

  private newTallies(): Map<string, Tally> {
    return new Map(this.options.targets.map((name) => [name, new Tally()]));
  }
}

function targetStats(tally: Tally, durationMs: number): TargetStats {
  const stats = tally.stats();
  return {
    ...stats,
    achievedRps: durationMs > 0 ? stats.sent / (durationMs / 1_000) : 0,
    lateShare: 0,
    fellBehind: stats.dropped > 0,
  };
}
