import { describe, expect, it } from 'vitest';
import { workerPanic } from './worker-panic.ts';

describe('worker-panic', () => {
  it('reads the share of tasks that panic from the file', () => {
    expect(workerPanic.fromFile({ percent: 40 })).toEqual({ percent: 40 });
  });

  it('makes every task panic unless --percent says otherwise', () => {
    expect(workerPanic.flags).toEqual(['percent']);
    expect(workerPanic.fromFlags({})).toEqual({ percent: 100 });
    expect(workerPanic.fromFlags({ percent: 5 })).toEqual({ percent: 5 });
  });

  it('describes itself, and is counted (restarts, panics recovered) rather than calibrated', () => {
    expect(workerPanic.describe({ percent: 100 })).toBe('100% of tasks');
    expect(workerPanic.configured).toBeUndefined();
  });

  it("is the fault agent's lease on both targets, gateways included", () => {
    expect(workerPanic.injectors).toEqual(['fault-agent']);
    expect(workerPanic.onGateways).toBe(true);
    expect(workerPanic.lease?.({ percent: 40 })).toEqual({ kind: 'worker-panic', params: { percent: 40 } });
  });
});
