import { LRUCache } from 'lru-cache';

/**
 * The resilient gateway's local (second-level) cache for one dependency. An answer younger
 * than `ttlMs` is *fresh* and saves the call; an older one is *stale* and is only served when
 * the dependency fails, so the page shows slightly old numbers rather than none. Past
 * `maxStaleMs` an answer is forgotten: very old data is worse than an honest gap.
 */
export interface DependencyCacheOptions {
  readonly ttlMs: number;
  /** @default 60_000 */
  readonly maxStaleMs?: number;
  /** @default 10_000 */
  readonly maxEntries?: number;
  /** @default Date.now */
  readonly clock?: () => number;
}

export type CacheLookup<T> =
  | { readonly kind: 'fresh'; readonly value: T }
  | { readonly kind: 'stale'; readonly value: T; readonly ageMs: number }
  | { readonly kind: 'miss' };

interface Entry<T> {
  readonly value: T;
  readonly storedAt: number;
}

export class DependencyCache<T extends {}> {
  readonly #ttlMs: number;
  readonly #maxStaleMs: number;
  readonly #clock: () => number;
  readonly #lru: LRUCache<string, Entry<T>>;

  constructor(options: DependencyCacheOptions) {
    const maxStaleMs = options.maxStaleMs ?? 60_000;
    if (maxStaleMs < options.ttlMs) {
      throw new RangeError(`maxStaleMs (${maxStaleMs}) must be >= ttlMs (${options.ttlMs})`);
    }
    this.#ttlMs = options.ttlMs;
    this.#maxStaleMs = maxStaleMs;
    this.#clock = options.clock ?? Date.now;
    this.#lru = new LRUCache<string, Entry<T>>({
      max: options.maxEntries ?? 10_000,
      // lru-cache expires at the staleness limit; freshness is judged here from storedAt.
      ttl: maxStaleMs,
      perf: { now: this.#clock },
      // Its default (1 ms) memoizes "now" behind a timer, which would hide an injected clock.
      ttlResolution: 0,
    });
  }

  get(key: string): CacheLookup<T> {
    const entry = this.#lru.get(key);
    if (!entry) return { kind: 'miss' };
    const ageMs = this.#clock() - entry.storedAt;
    // Checked here too: lru-cache treats a start time of 0 as "no TTL" (an injected clock may start there).
    if (ageMs > this.#maxStaleMs) {
      this.#lru.delete(key);
      return { kind: 'miss' };
    }
    return ageMs < this.#ttlMs
      ? { kind: 'fresh', value: entry.value }
      : { kind: 'stale', value: entry.value, ageMs };
  }

  set(key: string, value: T): void {
    this.#lru.set(key, { value, storedAt: this.#clock() });
  }
}
