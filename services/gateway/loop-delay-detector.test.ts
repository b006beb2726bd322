import { describe, expect, it } from 'vitest';
import { LoopDelayDetector, type LoopSample } from './loop-delay-detector.ts';

const TARGET_MS = 20;
const INTERVAL_MS = 100;

const late = (atMs: number, utilization = 1): LoopSample => ({ delayMs: 50, utilization, atMs });
const onTime = (atMs: number): LoopSample => ({ delayMs: 1, utilization: 0.2, atMs });

function detector(): LoopDelayDetector {
  return new LoopDelayDetector({ targetMs: TARGET_MS, intervalMs: INTERVAL_MS });
}

/** Feeds samples in order and says, after each, whether the detector sheds. */
function shedAfterEach(d: LoopDelayDetector, samples: readonly LoopSample[]): boolean[] {
  return samples.map((sample) => {
    d.observe(sample);
    return d.shedding();
  });
}

describe('LoopDelayDetector', () => {
  it('does not shed before any sample, nor on one late sample: a burst is not a queue', () => {
    const d = detector();
    expect(d.shedding()).toBe(false);
    d.observe({ delayMs: 500, utilization: 1, atMs: 0 });
    expect(d.shedding()).toBe(false);
  });

  it('sheds once the loop has stayed late for a whole interval', () => {
    expect(shedAfterEach(detector(), [late(0), late(40), late(80), late(100), late(140)])).toEqual([
      false,
      false,
      false,
      true,
      true,
    ]);
  });

  it('admits again on the first sample that is on time', () => {
    const d = detector();
    shedAfterEach(d, [late(0), late(100)]);
    expect(d.shedding()).toBe(true);
    d.observe(onTime(110));
    expect(d.shedding()).toBe(false);
  });

  it('starts the interval again when an on-time sample breaks a run of late ones', () => {
    expect(
      shedAfterEach(detector(), [late(0), late(60), onTime(70), late(90), late(150), late(190)]),
    ).toEqual([false, false, false, false, false, true]);
  });

  it('does not count a late sample of a mostly idle loop: the CPU was held by another process', () => {
    const d = detector();
    expect(shedAfterEach(d, [late(0, 0.3), late(100, 0.3), late(200, 0.3)])).toEqual([false, false, false]);
    // An idle late sample breaks a run of busy late ones, as an on-time one does.
    expect(shedAfterEach(d, [late(300), late(360, 0.3), late(400)])).toEqual([false, false, false]);
  });

  it('sheds again at once when the loop is late again soon after an episode, not an interval later', () => {
    const d = detector();
    shedAfterEach(d, [late(0), late(100)]);
    d.observe(onTime(120));
    expect(d.shedding()).toBe(false);
    d.observe(late(130));
    expect(d.shedding()).toBe(true);
  });

  it('forgets an episode ten intervals after its last refusal', () => {
    const d = detector();
    shedAfterEach(d, [late(0), late(100)]);
    d.observe(onTime(150));
    // The episode's memory ends at 100 + 10 × 100 ms.
    expect(shedAfterEach(d, [late(1_100), late(1_150), late(1_200)])).toEqual([false, false, true]);
  });

  it('describes the latest sample and its settings', () => {
    const d = detector();
    expect(d.snapshot()).toEqual({
      shedding: false,
      delayMs: 0,
      utilization: 0,
      targetMs: TARGET_MS,
      intervalMs: INTERVAL_MS,
    });
    shedAfterEach(d, [late(0), { delayMs: 35, utilization: 0.9, atMs: 100 }]);
    expect(d.snapshot()).toEqual({
      shedding: true,
      delayMs: 35,
      utilization: 0.9,
      targetMs: TARGET_MS,
      intervalMs: INTERVAL_MS,
    });
  });

  it.each([
    [{ targetMs: 0, intervalMs: 100 }, /targetMs must be positive, got 0/],
    [{ targetMs: Number.NaN, intervalMs: 100 }, /targetMs must be positive, got NaN/],
    [{ targetMs: 20, intervalMs: -1 }, /intervalMs must be positive, got -1/],
    [
      { targetMs: 20, intervalMs: 100, minUtilization: 1.5 },
      /minUtilization is a share of time, in \[0, 1\], got 1.5/,
    ],
  ])('refuses %j with a RangeError', (options, message) => {
    expect(() => new LoopDelayDetector(options)).toThrow(RangeError);
    expect(() => new LoopDelayDetector(options)).toThrow(message);
  });
});
