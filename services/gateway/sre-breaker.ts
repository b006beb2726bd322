import { RollingCounter } from './rolling-counter.ts';

/**
 * Client-side adaptive throttling from Google's SRE book ("Handling Overload"), as Kratos
 * implements it (go-kratos/aegis circuitbreaker/sre). There is no open/half-open dance: the
 * client compares what it asked for with what the backend accepted over a rolling window,
 * and drops a share of calls locally with probability
 *
 *     max(0, (requests − K·accepts) / (requests + 1))
 *
 * so a backend that accepts nothing gets almost no traffic, a backend that recovers gets
 * traffic back smoothly, and a healthy one is never throttled. Calls dropped here still count
 * as requests (as in Kratos), which keeps the pressure off while the backend is down.
 */
export interface SreBreakerOptions {
  /**
   * Multiplier on accepts: 2 lets twice as many requests through as the backend accepts
   * before dropping; lower is more aggressive. The SRE book recommends 2; Kratos' default
   * success 0.6 is K ≈ 1.67. Below 2 a dependency failing half its calls is throttled towards
   * dropping everything (K·0.5 < 1), and a throttled one climbs back slowly because dropped
   * calls count as requests: with 2 it recovers within a few windows.
   * @default 2
   */
  readonly k?: number;
  /** Below this many requests in the window nothing is dropped (too little to judge). @default 20 */
  readonly minRequests?: number;
  /**
   * The window requests and accepts are counted over (Kratos' default, as is `buckets`): with
   * the default K of 2, a throttled dependency that recovers gets its traffic back within a
   * few windows.
   * @default 3_000
   */
  readonly windowMs?: number;
  /** @default 10 */
  readonly buckets?: number;
  /** @default Date.now */
  readonly clock?: () => number;
  /** Uniform in [0, 1). @default Math.random */
  readonly random?: () => number;
}

export type BreakerState = 'closed' | 'throttling';

export class SreBreaker {
  readonly #k: number;
  readonly #minRequests: number;
  readonly #random: () => number;
  readonly #stats: RollingCounter<'requests' | 'accepts'>;

  constructor(options: SreBreakerOptions = {}) {
    this.#k = options.k ?? 2;
    this.#minRequests = options.minRequests ?? 20;
    this.#random = options.random ?? Math.random;
    this.#stats = new RollingCounter(['requests', 'accepts'], {
      windowMs: options.windowMs ?? 3_000,
      buckets: options.buckets ?? 10,
      ...(options.clock ? { clock: options.clock } : {}),
    });
  }

  /** Share of calls dropped right now, 0 when healthy or when the window holds too few calls. */
  dropProbability(): number {
    const { requests, accepts } = this.#stats.totals();
    if (requests < this.#minRequests) return 0;
    return Math.max(0, (requests - this.#k * accepts) / (requests + 1));
  }

  state(): BreakerState {
    return this.dropProbability() > 0 ? 'throttling' : 'closed';
  }

  /**
   * One dice roll: true lets the call through (then report it with `markSuccess` or
   * `markFailure`); false drops it, and the drop is already counted.
   */
  allow(): boolean {
    const p = this.dropProbability();
    if (p > 0 && this.#random() < p) {
      this.#stats.add('requests');
      return false;
    }
    return true;
  }

  /** The backend accepted the call (it answered, even with a 404). */
  markSuccess(): void {
    this.#stats.add('requests');
    this.#stats.add('accepts');
  }

  /** The backend did not accept the call: a timeout, a refused connection, a 5xx. */
  markFailure(): void {
    this.#stats.add('requests');
  }
}
