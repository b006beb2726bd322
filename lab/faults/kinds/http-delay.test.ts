import { describe, expect, it } from 'vitest';
import { httpDelay } from './http-delay.ts';

describe('http-delay', () => {
  it('reads the file in milliseconds, as latency does', () => {
    expect(httpDelay.fromFile({ delay: '2s', jitter: '250ms' })).toEqual({ delayMs: 2000, jitterMs: 250 });
    expect(httpDelay.fromFile({ delay: '90ms' })).toEqual({ delayMs: 90, jitterMs: 0 });
  });

  it('needs --delay, and says so in its own name', () => {
    expect(httpDelay.fromFlags({ delay: 150, jitter: 10 })).toEqual({ delayMs: 150, jitterMs: 10 });
    expect(() => httpDelay.fromFlags({})).toThrow(
      expect.objectContaining({ message: 'http-delay needs --delay', exitCode: 2 }),
    );
  });

  it('describes itself as latency does', () => {
    expect(httpDelay.describe({ delayMs: 2000, jitterMs: 250 })).toBe('delay 2s, jitter 250ms');
  });

  it('is not calibrated', () => {
    expect(httpDelay.configured).toBeUndefined();
  });

  it("is the fault agent's lease on both targets, gateways included, with no netem", () => {
    expect(httpDelay.injectors).toEqual(['fault-agent']);
    expect(httpDelay.onGateways).toBe(true);
    expect(httpDelay.lease?.({ delayMs: 150, jitterMs: 10 })).toEqual({
      kind: 'http-delay',
      params: { delayMs: 150, jitterMs: 10 },
    });
    expect(httpDelay.netem).toBeUndefined();
  });
});
