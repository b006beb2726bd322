import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { kill } from './kill.ts';

describe('kill', () => {
  it('has no parameters: nothing in the file, no flags', () => {
    expect(z.object(kill.fields).strict().safeParse({ percent: 50 }).success).toBe(false);
    expect(kill.fromFile({})).toEqual({});
    expect(kill.flags).toEqual([]);
    expect(kill.fromFlags({ percent: 50 })).toEqual({});
    expect(kill.describe({})).toBe('');
  });

  it('is instantaneous: no lease to renew, nothing to calibrate', () => {
    expect(kill.lease).toBeUndefined();
    expect(kill.netem).toBeUndefined();
    expect(kill.configured).toBeUndefined();
  });

  it("is the supervisor's SIGKILL locally and the fault sidecar's on Kubernetes, never a gateway's", () => {
    expect(kill.injectors).toEqual(['supervisor', 'fault-sidecar']);
    expect(kill.onGateways).toBe(false);
  });
});
