import { afterEach, describe, expect, it } from 'vitest';
import type { LoopSample } from './loop-delay-detector.ts';
import { type LoopSampleSource, loopDelayProbe, SamplingWhileBusy } from './loop-delay-probe.ts';

const stops: (() => void)[] = [];

afterEach(() => {
  for (const stop of stops.splice(0)) stop();
});

/** Starts `source`, and resolves with the first sample `accept` takes (the probe is stopped after the test). */
function sampleWhere(
  source: ReturnType<typeof loopDelayProbe>,
  accept: (sample: LoopSample) => boolean = () => true,
): { samples: LoopSample[]; found: Promise<LoopSample> } {
  const samples: LoopSample[] = [];
  const found = new Promise<LoopSample>((resolve) => {
    stops.push(
      source((sample) => {
        samples.push(sample);
        if (accept(sample)) resolve(sample);
      }),
    );
  });
  return { samples, found };
}

function busyWait(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // the loop is blocked: nothing else runs, no timer fires
  }
}

describe('loopDelayProbe', () => {
  it('reports how late its timer ran by its clock, and the busy share its utilization source gives', async () => {
    let clock = 1_000;
    const probe = loopDelayProbe({ everyMs: 5, now: () => clock, utilization: () => 0.8 });
    const { found } = sampleWhere(probe);
    // Due at 1 005 by the probe's clock; when the timer runs, that clock reads 1 035.
    clock = 1_035;
    expect(await found).toEqual({ delayMs: 30, utilization: 0.8, atMs: 1_035 });
  });

  it('never reports a negative delay', async () => {
    const probe = loopDelayProbe({ everyMs: 5, now: () => 0, utilization: () => 0 });
    expect((await sampleWhere(probe).found).delayMs).toBe(0);
  });

  it('sees a loop blocked by its own work as late and busy', async () => {
    const { found } = sampleWhere(loopDelayProbe({ everyMs: 10 }), (s) => s.delayMs >= 40);
    // A timer cannot fire while the loop runs this: the next look comes at least ~60 ms late.
    busyWait(60);
    const sample = await found;
    expect(sample.delayMs).toBeGreaterThanOrEqual(40);
    expect(sample.utilization).toBeGreaterThan(0.5);
  });

  it('looks no more once stopped', async () => {
    const samples: LoopSample[] = [];
    const stop = loopDelayProbe({ everyMs: 5 })((sample) => samples.push(sample));
    await new Promise((resolve) => setTimeout(resolve, 40));
    stop();
    const seen = samples.length;
    expect(seen).toBeGreaterThan(0);
    await new Promise((resolve) => setTimeout(resolve, 40));
    expect(samples.length).toBe(seen);
  });

  it.each([0, -5, Number.NaN])('refuses everyMs %d', (everyMs) => {
    expect(() => loopDelayProbe({ everyMs })).toThrow(RangeError);
  });
});

describe('SamplingWhileBusy', () => {
  it('starts at the first page, stops at the first on-time sample a second after the last, and starts again', () => {
    let now = 0;
    const listeners = new Set<(sample: LoopSample) => void>();
    const source: LoopSampleSource = (onSample) => {
      listeners.add(onSample);
      return () => listeners.delete(onSample);
    };
    const seen: number[] = [];
    const watch = new SamplingWhileBusy(
      source,
      (sample) => seen.push(sample.delayMs),
      (sample) => sample.delayMs < 20,
      { idleAfterMs: 1_000, now: () => now },
    );
    const push = (delayMs: number) => {
      for (const listener of [...listeners]) listener({ delayMs, utilization: 1, atMs: now });
    };
    expect(watch.sampling()).toBe(false);
    watch.wake();
    watch.wake();
    expect(listeners.size).toBe(1);
    now = 900;
    push(1);
    expect(watch.sampling()).toBe(true);
    now = 1_100;
    push(50); // late: watched on, whatever the time since the last page
    expect(watch.sampling()).toBe(true);
    push(1);
    expect(watch.sampling()).toBe(false);
    expect(listeners.size).toBe(0);
    expect(seen).toEqual([1, 50, 1]);
    watch.wake();
    expect(listeners.size).toBe(1);
    watch.close();
    watch.wake();
    expect(listeners.size).toBe(0);
  });
});
