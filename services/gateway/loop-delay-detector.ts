/**
 * Whether the gateway's own process is the bottleneck, judged CoDel-style (Nichols & Jacobson,
 * "Controlling Queue Delay") from how late its event loop runs.
 *
 * A request waits, before any handler of it runs, for the loop to get round to its socket: the
 * loop's delay is that queueing time. A concurrency limit cannot see it — a loop with more work
 * than CPU leaves requests unread in the kernel, so few pages are ever in flight — and a
 * dependency that is slow does not cause it: waiting on I/O leaves the loop idle and on time.
 *
 * As in CoDel, a burst is not a queue: one late turn (a GC pause, a burst of TLS handshakes) is
 * let through; the loop must stay late by at least `targetMs`, sample after sample, for
 * `intervalMs` before new pages are refused. From then on each sample decides — late: refuse,
 * on time: admit — so the gateway admits as much as its loop drains; and a loop late again
 * soon after (within ten intervals of the last refusal, CoDel's memory of a recent episode)
 * refuses again at once instead of letting another interval's worth of pages pile up.
 *
 * A sample counts as late only when the loop was also busy for most of the time since the
 * previous one (`minUtilization`): a loop that is late though mostly idle is a process waiting
 * for a CPU other processes hold, which refusing pages would not cure.
 */

/** One look at the event loop. */
export interface LoopSample {
  /** How late a timer ran: the time work ahead of it in the loop kept it waiting. */
  readonly delayMs: number;
  /** Share of the time since the previous sample the loop spent running code, in [0, 1]. */
  readonly utilization: number;
  /** When the sample was taken, on a monotonic clock. */
  readonly atMs: number;
}

export interface LoopDelayDetectorOptions {
  /** A loop this late, sample after sample, is a standing queue. */
  readonly targetMs: number;
  /** How long it must stay late before pages are refused. */
  readonly intervalMs: number;
  /** Below this share of busy time a late sample is not counted late. @default 0.75 */
  readonly minUtilization?: number;
}

export interface LoopDelaySnapshot {
  readonly shedding: boolean;
  /** The latest sample's delay; 0 before any. */
  readonly delayMs: number;
  readonly utilization: number;
  readonly targetMs: number;
  readonly intervalMs: number;
}

/** CoDel keeps the memory of a dropping episode for 16 intervals; fewer suit a loop's faster swings. */
const EPISODE_MEMORY_INTERVALS = 10;

export class LoopDelayDetector {
  readonly targetMs: number;
  readonly intervalMs: number;
  readonly #minUtilization: number;
  /** When the current run of late samples began; undefined while the loop is on time. */
  #lateSince: number | undefined;
  /** Until then a late sample refuses at once: the episode that refused last is not over. */
  #episodeUntil = Number.NEGATIVE_INFINITY;
  #shedding = false;
  #last: LoopSample = { delayMs: 0, utilization: 0, atMs: 0 };

  constructor(options: LoopDelayDetectorOptions) {
    const { targetMs, intervalMs, minUtilization = 0.75 } = options;
    if (!(targetMs > 0)) throw new RangeError(`targetMs must be positive, got ${targetMs}`);
    if (!(intervalMs > 0)) throw new RangeError(`intervalMs must be positive, got ${intervalMs}`);
    if (!(minUtilization >= 0 && minUtilization <= 1)) {
      throw new RangeError(`minUtilization is a share of time, in [0, 1], got ${minUtilization}`);
    }
    this.targetMs = targetMs;
    this.intervalMs = intervalMs;
    this.#minUtilization = minUtilization;
  }

  observe(sample: LoopSample): void {
    this.#last = sample;
    const late = sample.delayMs >= this.targetMs && sample.utilization >= this.#minUtilization;
    if (!late) {
      this.#lateSince = undefined;
      this.#shedding = false;
      return;
    }
    this.#lateSince ??= sample.atMs;
    this.#shedding = sample.atMs - this.#lateSince >= this.intervalMs || sample.atMs < this.#episodeUntil;
    if (this.#shedding) this.#episodeUntil = sample.atMs + EPISODE_MEMORY_INTERVALS * this.intervalMs;
  }

  /** True while new pages should be refused. */
  shedding(): boolean {
    return this.#shedding;
  }

  snapshot(): LoopDelaySnapshot {
    return {
      shedding: this.#shedding,
      delayMs: this.#last.delayMs,
      utilization: this.#last.utilization,
      targetMs: this.targetMs,
      intervalMs: this.intervalMs,
    };
  }
}
