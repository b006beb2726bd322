import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { CliError } from '../../cli-error.ts';
import { latency } from './latency.ts';

describe('latency', () => {
  it('reads the file in milliseconds, jitter 0 when left out', () => {
    expect(latency.fromFile({ delay: '1.5s', jitter: '20ms' })).toEqual({ delayMs: 1500, jitterMs: 20 });
    expect(latency.fromFile({ delay: '400ms' })).toEqual({ delayMs: 400, jitterMs: 0 });
  });

  it('refuses a delay of 0ms in a file, a fault that would do nothing', () => {
    const fields = z.object(latency.fields).strict();
    expect(fields.safeParse({ delay: '1ms' }).success).toBe(true);
    expect(fields.safeParse({ delay: '0ms' }).error?.issues.map((i) => i.message)).toEqual([
      'got "0ms"; expected a duration with a unit, such as 300ms, 1.5s, 20s or 2m, from 1ms to 1m',
    ]);
    expect(fields.safeParse({ delay: '2m' }).success).toBe(false);
  });

  it('takes --delay and --jitter, and needs --delay', () => {
    expect(latency.flags).toEqual(['delay', 'jitter']);
    expect(latency.fromFlags({ delay: 300 })).toEqual({ delayMs: 300, jitterMs: 0 });
    expect(latency.fromFlags({ delay: 300, jitter: 20 })).toEqual({ delayMs: 300, jitterMs: 20 });
    expect(() => latency.fromFlags({ jitter: 20 })).toThrow(
      expect.objectContaining({ message: 'latency needs --delay', hint: 'e.g. --delay 300ms', exitCode: 2 }),
    );
    expect(() => latency.fromFlags({})).toThrow(CliError);
  });

  it('describes itself, jitter only when there is some', () => {
    expect(latency.describe({ delayMs: 400, jitterMs: 20 })).toBe('delay 400ms, jitter 20ms');
    expect(latency.describe({ delayMs: 1500, jitterMs: 0 })).toBe('delay 1.5s');
  });

  it('is calibrated by the latency the instances added', () => {
    expect(latency.configured?.({ delayMs: 400, jitterMs: 20 })).toEqual({
      addedLatencyMs: 400,
      jitterMs: 20,
    });
  });

  it("is the fault proxy's lease locally and netem's delay on Kubernetes", () => {
    expect(latency.injectors).toEqual(['fault-proxy', 'tc-netem']);
    expect(latency.onGateways).toBe(false);
    expect(latency.lease?.({ delayMs: 400, jitterMs: 20 })).toEqual({
      kind: 'latency',
      params: { delayMs: 400, jitterMs: 20 },
    });
    expect(latency.netem?.({ delayMs: 400, jitterMs: 20 })).toEqual(['delay', '400ms', '20ms']);
    expect(latency.netem?.({ delayMs: 400, jitterMs: 0 })).toEqual(['delay', '400ms']);
  });
});
