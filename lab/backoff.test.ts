import { describe, expect, it } from 'vitest';
import { backoffDelay, CrashLoop, LAB_BACKOFF } from './backoff.ts';

describe('CrashLoop', () => {
  it('doubles from 250 ms to a cap of 8 s while the instance keeps crashing', () => {
    const loop = new CrashLoop();
    const delays = Array.from({ length: 9 }, () => loop.next(50));
    expect(delays).toEqual([250, 500, 1_000, 2_000, 4_000, 8_000, 8_000, 8_000, 8_000]);
    expect(loop.crashes).toBe(9);
  });

  it('starts again from the shortest delay once an instance ran 15 s', () => {
    const loop = new CrashLoop();
    loop.next(10);
    loop.next(10);
    expect(loop.next(14_999)).toBe(1_000);
    expect(loop.next(15_000)).toBe(250);
    expect(loop.next(10)).toBe(500);
  });

  it('never overflows, however long the loop', () => {
    expect(backoffDelay(LAB_BACKOFF, 10_000)).toBe(8_000);
    expect(backoffDelay({ initialMs: 10_000, maxMs: 300_000, resetAfterMs: 600_000 }, 1)).toBe(10_000);
  });
});
