import { describe, expect, it } from 'vitest';
import type { LoopDelaySnapshot } from '../loop-delay-detector.ts';
import { recordedEvents } from './__fixtures__/calls.ts';
import { shedOnLoopDelay } from './loop-delay.ts';

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
