/**
 * The kubelet's CrashLoopBackOff, scaled down for a lab: an instance that keeps crashing is
 * restarted after 250 ms, then 500 ms, 1 s … up to 8 s (the kubelet: 10 s doubling to
 * 5 min), and one that ran for 15 s before crashing starts again from the shortest delay
 * (the kubelet: 10 min). Short enough that a demo shows a restart within a second, long
 * enough that a crash loop does not eat the laptop's two cores.
 */

export interface BackoffPolicy {
  /** Delay before the first restart of a crash loop. */
  readonly initialMs: number;
  /** Cap of the doubling. */
  readonly maxMs: number;
  /** An instance that ran at least this long before exiting starts a fresh crash loop. */
  readonly resetAfterMs: number;
}

export const LAB_BACKOFF: BackoffPolicy = { initialMs: 250, maxMs: 8_000, resetAfterMs: 15_000 };

/** Delay before restart number `crashes` (1-based) of one crash loop. */
export function backoffDelay(policy: BackoffPolicy, crashes: number): number {
  const doublings = Math.max(0, Math.min(crashes - 1, 30));
  return Math.min(policy.maxMs, policy.initialMs * 2 ** doublings);
}

/** One instance's crash loop: tells, at each exit, how long to wait before starting it again. */
export class CrashLoop {
  #crashes = 0;

  constructor(readonly policy: BackoffPolicy = LAB_BACKOFF) {}

  /** The instance exited after running `ranMs`: the delay before its next start. */
  next(ranMs: number): number {
    if (ranMs >= this.policy.resetAfterMs) this.#crashes = 0;
    this.#crashes += 1;
    return backoffDelay(this.policy, this.#crashes);
  }

  /** Exits in the current loop. */
  get crashes(): number {
    return this.#crashes;
  }
}
