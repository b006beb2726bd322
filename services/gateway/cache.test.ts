import { describe, expect, it } from 'vitest';
import { DependencyCache } from './cache.ts';

describe('DependencyCache', () => {
  it('is fresh within the TTL, stale after it, forgotten past the staleness limit', () => {
    let now = 0;
    const cache = new DependencyCache<{ likes: number }>({
      ttlMs: 1000,
      maxStaleMs: 60_000,
      clock: () => now,
    });
    expect(cache.get('1')).toEqual({ kind: 'miss' });
    cache.set('1', { likes: 3 });
    now = 999;
    expect(cache.get('1')).toEqual({ kind: 'fresh', value: { likes: 3 } });
    now = 1000;
    expect(cache.get('1')).toEqual({ kind: 'stale', value: { likes: 3 }, ageMs: 1000 });
    now = 60_001;
    expect(cache.get('1')).toEqual({ kind: 'miss' });
  });

  it('refreshes an entry when set again', () => {
    let now = 0;
    const cache = new DependencyCache<{ n: number }>({ ttlMs: 100, clock: () => now });
    cache.set('a', { n: 1 });
    now = 500;
    cache.set('a', { n: 2 });
    expect(cache.get('a')).toEqual({ kind: 'fresh', value: { n: 2 } });
  });

  it('evicts the least recently used entry beyond its size', () => {
    const cache = new DependencyCache<{ n: number }>({ ttlMs: 100, maxEntries: 2, clock: () => 0 });
    cache.set('a', { n: 1 });
    cache.set('b', { n: 2 });
    cache.get('a');
    cache.set('c', { n: 3 });
    expect(cache.get('b').kind).toBe('miss');
    expect(cache.get('a').kind).toBe('fresh');
  });

  it('refuses a staleness limit shorter than the TTL', () => {
    expect(() => new DependencyCache({ ttlMs: 1000, maxStaleMs: 10 })).toThrow(/maxStaleMs/);
  });
});
