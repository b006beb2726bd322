import { describe, expect, it } from 'vitest';
import type { LoopDelaySnapshot } from '../loop-delay-detector.ts';
import { recordedEvents } from './__fixtures__/calls.ts';
import { LoopDelayGate, shedOnLoopDelay } from './loop-delay.ts';

/** A detector whose verdict the test sets. */
function switchedDetector(delayMs = 42) {
  let shedding = false;
  return {
    set: (value: boolean) => {
      shedding = value;
    },
    detector: {
      shedding: () => shedding,
      snapshot: (): LoopDelaySnapshot => ({
        shedding,
        delayMs,
        utilization: 1,
        targetMs: 20,
        intervalMs: 100,
      }),
    },
  };
}

describe('shedOnLoopDelay', () => {
  it('passes calls through while the loop is on time', async () => {
    const { events, seen } = recordedEvents();
    const { detector } = switchedDetector();
    const handle = shedOnLoopDelay({
      detector,
      events,
      inFlight: () => 0,
      rejected: (name: string) => `rejected ${name}`,
    })(async (name) => `done ${name}`);
    expect(await handle('a')).toBe('done a');
    expect(seen).toEqual([]);
  });

  it('answers with `rejected` without calling what it wraps while the detector sheds, and says how late the loop ran', async () => {
    const { events, seen } = recordedEvents();
    const { detector, set } = switchedDetector(42);
    const called: string[] = [];
    const handle = shedOnLoopDelay({
      detector,
      events,
      inFlight: () => 0,
      rejected: (name: string) => `rejected ${name}`,
    })(async (name) => {
      called.push(name);
      return `done ${name}`;
    });
    set(true);
    expect(await handle('a')).toBe('rejected a');
    expect(called).toEqual([]);
    expect(seen).toEqual([{ type: 'loop-delay-rejected', delayMs: 42 }]);
    set(false);
    expect(await handle('b')).toBe('done b');
    expect(called).toEqual(['b']);
  });

  it('refuses nothing while fewer than minInFlight calls are in flight, however late the loop', async () => {
    const { events, seen } = recordedEvents();
    const { detector, set } = switchedDetector(42);
    let inFlight = 3;
    const handle = shedOnLoopDelay({
      detector,
      events,
      inFlight: () => inFlight,
      minInFlight: 4,
      rejected: (name: string) => `rejected ${name}`,
    })(async (name) => `done ${name}`);
    set(true);
    expect(await handle('a')).toBe('done a');
    expect(seen).toEqual([]);
    inFlight = 4;
    expect(await handle('b')).toBe('rejected b');
    expect(seen).toEqual([{ type: 'loop-delay-rejected', delayMs: 42 }]);
  });
});

describe('LoopDelayGate', () => {
  it('keeps refusing for holdMs after its last refusal while minInFlight calls are in flight, each refusal starting the hold again', () => {
    const { detector, set } = switchedDetector();
    let now = 0;
    let inFlight = 2;
    const gate = new LoopDelayGate({
      detector,
      inFlight: () => inFlight,
      minInFlight: 2,
      holdMs: 1_000,
      clock: () => now,
    });
    expect(gate.refuses()).toBe(false);
    set(true);
    expect(gate.refuses()).toBe(true);
    set(false);
    now = 600;
    expect(gate.refuses()).toBe(true); // held: the last refusal was 600 ms ago
    now = 1_500;
    expect(gate.refuses()).toBe(true); // 900 ms after the refusal at 600
    inFlight = 1;
    now = 1_600;
    expect(gate.refuses()).toBe(false); // too few in flight, held or not
    inFlight = 2;
    now = 2_500;
    expect(gate.refuses()).toBe(false); // 1 s after the last refusal: the hold is over
    now = 2_600;
    expect(gate.refuses()).toBe(false);
  });

  it('with no hold, refuses only while the detector sheds', () => {
    const { detector, set } = switchedDetector();
    const gate = new LoopDelayGate({ detector, inFlight: () => 5, clock: () => 0 });
    set(true);
    expect(gate.refuses()).toBe(true);
    set(false);
    expect(gate.refuses()).toBe(false);
  });

  it('is shared by the policy given it: a refusal at one door holds the other', async () => {
    const { events, seen } = recordedEvents();
    const { detector, set } = switchedDetector(42);
    let now = 0;
    const gate = new LoopDelayGate({ detector, inFlight: () => 3, holdMs: 1_000, clock: () => now });
    const handle = shedOnLoopDelay({
      gate,
      events,
      rejected: (name: string) => `rejected ${name}`,
    })(async (name) => `done ${name}`);
    set(true);
    expect(gate.refuses()).toBe(true);
    set(false);
    now = 500;
    expect(await handle('a')).toBe('rejected a');
    expect(seen).toEqual([{ type: 'loop-delay-rejected', delayMs: 42 }]);
    now = 1_600;
    expect(await handle('b')).toBe('done b');
  });
});
