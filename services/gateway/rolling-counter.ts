/**
 * Counts over the last `windowMs`, split into buckets so old counts fall out a bucket at a
 * time (the rolling window Kratos' breaker and Finagle's retry budget both stand on). The
 * clock is injected: tests move time by hand instead of sleeping.
 */
export interface RollingCounterOptions {
  /** @default 10_000 */
  readonly windowMs?: number;
  /** @default 10 */
  readonly buckets?: number;
  /** @default Date.now */
  readonly clock?: () => number;
}

export class RollingCounter<Key extends string> {
  readonly #keys: readonly Key[];
  readonly #bucketMs: number;
  readonly #clock: () => number;
  /** Which time slice (now / bucketMs) each slot holds; a slot from an older slice is reset on write. */
  readonly #epochs: number[];
  readonly #counts: Record<Key, number>[];

  constructor(keys: readonly Key[], options: RollingCounterOptions = {}) {
    const windowMs = options.windowMs ?? 10_000;
    const buckets = options.buckets ?? 10;
    if (!Number.isInteger(buckets) || buckets < 1)
      throw new RangeError(`buckets must be >= 1, got ${buckets}`);
    if (!(windowMs >= buckets)) throw new RangeError(`windowMs must be >= buckets, got ${windowMs}`);
    this.#keys = keys;
    this.#bucketMs = windowMs / buckets;
    this.#clock = options.clock ?? Date.now;
    this.#epochs = Array.from({ length: buckets }, () => Number.NEGATIVE_INFINITY);
    this.#counts = Array.from({ length: buckets }, () => this.#zero());
  }

  add(key: Key, amount = 1): void {
    const epoch = this.#epoch();
    const slot = this.#slot(epoch);
    if (this.#epochs[slot] !== epoch) {
      this.#epochs[slot] = epoch;
      this.#counts[slot] = this.#zero();
    }
    (this.#counts[slot] as Record<Key, number>)[key] += amount;
  }

  /** Sums of every key over the buckets still inside the window. */
  totals(): Record<Key, number> {
    const oldest = this.#epoch() - this.#epochs.length + 1;
    const sums = this.#zero();
    for (let slot = 0; slot < this.#epochs.length; slot++) {
      if ((this.#epochs[slot] as number) < oldest) continue;
      const counts = this.#counts[slot] as Record<Key, number>;
      for (const key of this.#keys) sums[key] += counts[key];
    }
    return sums;
  }

  #epoch(): number {
    return Math.floor(this.#clock() / this.#bucketMs);
  }

  #slot(epoch: number): number {
    const n = this.#epochs.length;
    return ((epoch % n) + n) % n;
  }

  #zero(): Record<Key, number> {
    return Object.fromEntries(this.#keys.map((k) => [k, 0])) as Record<Key, number>;
  }
}
