import { describe, expect, it } from 'vitest';
import { reset } from './reset.ts';

describe('reset', () => {
  it('reads the share of connections reset from the file', () => {
    expect(reset.fromFile({ percent: 25 })).toEqual({ percent: 25 });
  });

  it('resets every new connection unless --percent says otherwise', () => {
    expect(reset.flags).toEqual(['percent']);
    expect(reset.fromFlags({})).toEqual({ percent: 100 });
    expect(reset.fromFlags({ percent: 25 })).toEqual({ percent: 25 });
  });

  it('describes itself and is not calibrated', () => {
    expect(reset.describe({ percent: 25 })).toBe('25% of connections');
    expect(reset.configured).toBeUndefined();
  });

  it("is the local fault proxy's lease only, and says why Kubernetes cannot", () => {
    // The fault proxy alone: a target without it (Kubernetes) refuses reset.
    expect(reset.injectors).toEqual(['fault-proxy']);
    expect(reset.onGateways).toBe(false);
    expect(reset.lease?.({ percent: 25 })).toEqual({ kind: 'reset', params: { percent: 25 } });
    expect(reset.netem).toBeUndefined();
  });
});
