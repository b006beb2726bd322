import { describe, expect, it } from 'vitest';
import { loss } from './loss.ts';

describe('loss', () => {
  it('reads the share of packets lost from the file', () => {
    expect(loss.fromFile({ percent: 30 })).toEqual({ percent: 30 });
  });

  it('needs --percent: no default, since 100% loss stalls every connection', () => {
    expect(loss.fromFlags({ percent: 10 })).toEqual({ percent: 10 });
    expect(() => loss.fromFlags({})).toThrow(
      expect.objectContaining({ message: 'loss needs --percent', hint: 'e.g. --percent 10', exitCode: 2 }),
    );
  });

  it('describes itself and is calibrated by the loss rate', () => {
    expect(loss.describe({ percent: 30 })).toBe('30%');
    expect(loss.configured?.({ percent: 30 })).toEqual({ lossRate: 0.3 });
  });

  it("is the fault proxy's lease locally and netem's loss on Kubernetes", () => {
    expect(loss.injectors).toEqual(['fault-proxy', 'tc-netem']);
    expect(loss.onGateways).toBe(false);
    expect(loss.lease?.({ percent: 30 })).toEqual({ kind: 'loss', params: { percent: 30 } });
    expect(loss.netem?.({ percent: 30 })).toEqual(['loss', '30%']);
  });
});
