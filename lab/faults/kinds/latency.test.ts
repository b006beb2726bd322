import { InvalidArgumentError } from 'commander';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { CliError } from '../../cli-error.ts';
import { PARAM_FLAGS } from '../flags.ts';
import { LATENCY_DIRECTIONS, latency } from './latency.ts';

const fields = z.object(latency.fields).strict();
const both = { delayMs: 400, jitterMs: 20, requestShare: 0.5 };

describe('latency', () => {
  it('reads the file in milliseconds, jitter 0 when left out, both ways by default', () => {
    expect(latency.fromFile({ delay: '1.5s', jitter: '20ms' })).toEqual({
      delayMs: 1500,
      jitterMs: 20,
      requestShare: 0.5,
    });
    expect(latency.fromFile({ delay: '400ms' })).toEqual({ delayMs: 400, jitterMs: 0, requestShare: 0.5 });
  });

  it('reads the direction as the share of the delay paid on the way to the backend', () => {
    const share = (direction: 'requests' | 'responses' | 'both', injector?: 'netem' | 'fault-proxy') =>
      latency.fromFile({ delay: '300ms', direction, injector }).requestShare;
    expect([share('requests'), share('responses'), share('both')]).toEqual([1, 0, 0.5]);
    // Written out, the direction is what it says, whichever injector is asked for.
    expect(share('both', 'netem')).toBe(0.5);
    expect(share('responses', 'fault-proxy')).toBe(0);
  });

  it('delays responses by default under netem, which delays only what the pod sends; both ways otherwise', () => {
    expect(latency.fromFile({ delay: '300ms', injector: 'netem' }).requestShare).toBe(0);
    expect(latency.fromFile({ delay: '300ms', injector: 'fault-proxy' }).requestShare).toBe(0.5);
    expect(latency.fromFile({ delay: '300ms', injector: undefined }).requestShare).toBe(0.5);
  });

  it('refuses a direction it does not know, naming the ones it does', () => {
    expect(fields.safeParse({ delay: '300ms', direction: 'responses' }).success).toBe(true);
    expect(
      fields.safeParse({ delay: '300ms', direction: 'upstream' }).error?.issues.map((i) => i.message),
    ).toEqual(['got "upstream"; expected one of requests, responses, both']);
    expect(fields.safeParse({ delay: '300ms', direction: 1 }).success).toBe(false);
  });

  it('refuses a delay of 0ms in a file, a fault that would do nothing', () => {
    expect(fields.safeParse({ delay: '1ms' }).success).toBe(true);
    expect(fields.safeParse({ delay: '0ms' }).error?.issues.map((i) => i.message)).toEqual([
      'got "0ms"; expected a duration with a unit, such as 300ms, 1.5s, 20s or 2m, from 1ms to 1m',
    ]);
    expect(fields.safeParse({ delay: '2m' }).success).toBe(false);
  });

  it('takes --delay, --jitter and --direction, and needs --delay', () => {
    expect(latency.flags).toEqual(['delay', 'jitter', 'direction']);
    expect(latency.fromFlags({ delay: 300 })).toEqual({ delayMs: 300, jitterMs: 0, requestShare: 0.5 });
    expect(latency.fromFlags({ delay: 300, jitter: 20, direction: 1 })).toEqual({
      delayMs: 300,
      jitterMs: 20,
      requestShare: 1,
    });
    expect(latency.fromFlags({ delay: 300, direction: 0.5, injector: 'netem' }).requestShare).toBe(0.5);
    expect(latency.fromFlags({ delay: 300, injector: 'netem' }).requestShare).toBe(0);
    expect(() => latency.fromFlags({ jitter: 20 })).toThrow(
      expect.objectContaining({ message: 'latency needs --delay', hint: 'e.g. --delay 300ms', exitCode: 2 }),
    );
    expect(() => latency.fromFlags({})).toThrow(CliError);
  });

  it('parses --direction as the same share a file gives, and refuses another word naming the three', () => {
    const parse = PARAM_FLAGS.direction.parse;
    expect(['requests', 'responses', 'both'].map(parse)).toEqual([1, 0, 0.5]);
    expect(LATENCY_DIRECTIONS).toEqual({ requests: 1, responses: 0, both: 0.5 });
    for (const word of ['upstream', 'Both', '', '0.5', 'toString']) {
      expect(() => parse(word)).toThrow(InvalidArgumentError);
    }
    expect(() => parse('upstream')).toThrow(
      '--direction expects requests, responses or both, got "upstream".',
    );
  });

  it('describes itself, jitter only when there is some, the way only when it is one way', () => {
    expect(latency.describe(both)).toBe('delay 400ms, jitter 20ms');
    expect(latency.describe({ delayMs: 1500, jitterMs: 0, requestShare: 0.5 })).toBe('delay 1.5s');
    expect(latency.describe({ delayMs: 300, jitterMs: 0, requestShare: 1 })).toBe('delay 300ms on requests');
    expect(latency.describe({ delayMs: 300, jitterMs: 20, requestShare: 0 })).toBe(
      'delay 300ms, jitter 20ms on responses',
    );
  });

  it('is calibrated by the latency a call paid in all, and on each way', () => {
    expect(latency.configured?.(both)).toEqual({
      addedLatencyMs: 400,
      jitterMs: 20,
      requestLatencyMs: 200,
      responseLatencyMs: 200,
    });
    expect(latency.configured?.({ delayMs: 300, jitterMs: 0, requestShare: 1 })).toEqual({
      addedLatencyMs: 300,
      jitterMs: 0,
      requestLatencyMs: 300,
      responseLatencyMs: 0,
    });
    expect(latency.configured?.({ delayMs: 300, jitterMs: 0, requestShare: 0 })).toMatchObject({
      requestLatencyMs: 0,
      responseLatencyMs: 300,
    });
  });

  it("is the fault proxy's lease, with its share, locally and netem's delay on Kubernetes", () => {
    expect(latency.injectors).toEqual(['fault-proxy', 'tc-netem']);
    expect(latency.onGateways).toBe(false);
    expect(latency.lease?.(both)).toEqual({
      kind: 'latency',
      params: { delayMs: 400, jitterMs: 20, requestShare: 0.5 },
    });
    expect(latency.netem?.({ delayMs: 400, jitterMs: 20, requestShare: 0 })).toEqual([
      'delay',
      '400ms',
      '20ms',
    ]);
    expect(latency.netem?.({ delayMs: 400, jitterMs: 0, requestShare: 0 })).toEqual(['delay', '400ms']);
  });

  it('is refused by netem on requests, which it cannot delay, and by nothing else', () => {
    const requests = { delayMs: 300, jitterMs: 0, requestShare: 1 };
    const responses = { ...requests, requestShare: 0 };
    expect(latency.refuses?.(both, 'tc-netem')).toBe(
      'netem delays only what the pod sends (its responses): direction both needs the fault proxy — leave injector out, or write direction: responses',
    );
    expect(latency.refuses?.(requests, 'tc-netem')).toMatch(
      /^netem .*: direction requests needs the fault proxy/,
    );
    expect(latency.refuses?.(responses, 'tc-netem')).toBeUndefined();
    for (const params of [both, requests, responses]) {
      expect(latency.refuses?.(params, 'fault-proxy')).toBeUndefined();
    }
  });
});
