import { performance } from 'node:perf_hooks';
import type { LoopSample } from './loop-delay-detector.ts';

/** Something that hands out loop samples until the function it returned is called. */
export type LoopSampleSource = (onSample: (sample: LoopSample) => void) => () => void;

export interface LoopDelayProbeOptions {
  /** How often the loop is looked at, when it is on time. @default 10 */
  readonly everyMs?: number;
  /** Monotonic milliseconds. @default performance.now */
  readonly now?: () => number;
  /** The loop's busy share since the previous call. @default from `performance.eventLoopUtilization` */
  readonly utilization?: () => number;
}

/**
 * Looks at the event loop every `everyMs`: a timer asked for then runs as late as the work ahead
 * of it in the loop (a loop with more work than CPU runs every timer late by a whole turn), and
 * the loop's busy share since the last look says whether that work was the process's own. The
 * timer does not keep the process alive.
 */
export function loopDelayProbe(options: LoopDelayProbeOptions = {}): LoopSampleSource {
  const everyMs = options.everyMs ?? 10;
  if (!(everyMs > 0)) throw new RangeError(`everyMs must be positive, got ${everyMs}`);
  const now = options.now ?? (() => performance.now());
  return (onSample) => {
    const utilization = options.utilization ?? utilizationSinceLastCall();
    let timer: NodeJS.Timeout | undefined;
    const schedule = () => {
      const dueAt = now() + everyMs;
      timer = setTimeout(() => {
        const atMs = now();
        schedule(); // first: a listener that throws must not stop the probe
        onSample({ delayMs: Math.max(0, atMs - dueAt), utilization: utilization(), atMs });
      }, everyMs);
      timer.unref();
    };
    schedule();
    return () => clearTimeout(timer);
  };
}

function utilizationSinceLastCall(): () => number {
  let last = performance.eventLoopUtilization();
  return () => {
    const current = performance.eventLoopUtilization();
    const since = performance.eventLoopUtilization(current, last);
    last = current;
    return since.utilization;
  };
}

export interface WhileBusyOptions {
  /** Sampling stops at the first on-time sample this long after the last page. @default 1000 */
  readonly idleAfterMs?: number;
  /** Monotonic milliseconds. @default performance.now */
  readonly now?: () => number;
}

/**
 * Looks at the loop only while pages come: `wake()`, on every page, starts `source` if it is
 * stopped; it stops again at the first sample `onTime` calls on time more than `idleAfterMs`
 * after the last page. An idle gateway's loop, a hundred looks a second for nothing, cost an
 * idle lab more CPU than all its probes; a loop running late has pages coming, so it is watched.
 */
export class SamplingWhileBusy {
  readonly #source: LoopSampleSource;
  readonly #onSample: (sample: LoopSample) => void;
  readonly #onTime: (sample: LoopSample) => boolean;
  readonly #idleAfterMs: number;
  readonly #now: () => number;
  #stop: (() => void) | undefined;
  #lastWake = Number.NEGATIVE_INFINITY;
  #closed = false;

  constructor(
    source: LoopSampleSource,
    onSample: (sample: LoopSample) => void,
    onTime: (sample: LoopSample) => boolean,
    options: WhileBusyOptions = {},
  ) {
    this.#source = source;
    this.#onSample = onSample;
    this.#onTime = onTime;
    this.#idleAfterMs = options.idleAfterMs ?? 1_000;
    this.#now = options.now ?? (() => performance.now());
  }

  /** Whether the loop is being looked at now. */
  sampling(): boolean {
    return this.#stop !== undefined;
  }

  wake(): void {
    if (this.#closed) return;
    this.#lastWake = this.#now();
    this.#stop ??= this.#source((sample) => {
      this.#onSample(sample);
      if (this.#onTime(sample) && this.#now() - this.#lastWake > this.#idleAfterMs) this.#halt();
    });
  }

  /** Stops for good. */
  close(): void {
    this.#closed = true;
    this.#halt();
  }

  #halt(): void {
    this.#stop?.();
    this.#stop = undefined;
  }
}
