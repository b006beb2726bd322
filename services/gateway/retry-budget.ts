import { RollingCounter } from './rolling-counter.ts';

/**
 * A budget that caps retries to a share of normal traffic (Finagle's RetryBudget, Envoy's
 * retry_budget): without it, every caller retrying a struggling backend multiplies its load
 * exactly when it can least take it. Over a rolling window, retries may reach
 * `ratio × requests`, plus a small floor so a quiet gateway can still retry at all.
 */
export interface RetryBudgetOptions {
  /** Retries allowed per original request. @default 0.1 (at most 10% extra calls) */
  readonly ratio?: number;
  /** Retries allowed per second of window regardless of traffic. @default 3 */
  readonly minPerSecond?: number;
  /** @default 10_000 */
  readonly windowMs?: number;
  /** @default Date.now */
  readonly clock?: () => number;
}

export class RetryBudget {
  readonly #ratio: number;
  readonly #floor: number;
  readonly #stats: RollingCounter<'requests' | 'retries'>;

  constructor(options: RetryBudgetOptions = {}) {
    const windowMs = options.windowMs ?? 10_000;
    this.#ratio = options.ratio ?? 0.1;
    this.#floor = (options.minPerSecond ?? 3) * (windowMs / 1000);
    this.#stats = new RollingCounter(['requests', 'retries'], {
      windowMs,
      buckets: 10,
      ...(options.clock ? { clock: options.clock } : {}),
    });
  }

  /** Counts one original (first-attempt) call. */
  recordRequest(): void {
    this.#stats.add('requests');
  }

  /** Takes one retry from the budget if there is one left; false means do not retry. */
  tryWithdraw(): boolean {
    if (this.remaining() < 1) return false;
    this.#stats.add('retries');
    return true;
  }

  remaining(): number {
    const { requests, retries } = this.#stats.totals();
    return Math.floor(this.#floor + this.#ratio * requests) - retries;
  }
}
