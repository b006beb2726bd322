import { describe, expect, it } from 'vitest';
import { RollingCounter } from './rolling-counter.ts';

describe('RollingCounter', () => {
  it('sums every bucket inside the window and drops them a bucket at a time', () => {
    let now = 0;
    const counter = new RollingCounter(['a', 'b'], { windowMs: 1000, buckets: 10, clock: () => now });
    counter.add('a', 2);
    now = 450;
    counter.add('a');
    counter.add('b', 5);
    expect(counter.totals()).toEqual({ a: 3, b: 5 });
    now = 1000; // the bucket of t=0 has left the window, t=450 is still in it
    expect(counter.totals()).toEqual({ a: 1, b: 5 });
    now = 1450;
    expect(counter.totals()).toEqual({ a: 0, b: 0 });
  });

  it('reuses a slot for a new time slice without carrying old counts over', () => {
    let now = 0;
    const counter = new RollingCounter(['n'], { windowMs: 100, buckets: 2, clock: () => now });
    counter.add('n', 7);
    now = 200; // same slot index (epoch 4 vs 0), a different slice
    counter.add('n');
    expect(counter.totals()).toEqual({ n: 1 });
  });

  it('refuses a window with no buckets', () => {
    expect(() => new RollingCounter(['n'], { buckets: 0 })).toThrow(/buckets/);
  });
});
