import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { httpError } from './http-error.ts';

describe('http-error', () => {
  it('reads the status and the share from the file as written', () => {
    expect(httpError.fromFile({ status: 502, percent: 12.5 })).toEqual({ status: 502, percent: 12.5 });
  });

  it('refuses a status outside 400-599 in a file', () => {
    const fields = z.object(httpError.fields).strict();
    expect(fields.safeParse({ status: 302, percent: 50 }).error?.issues.map((i) => i.message)).toEqual([
      'got 302; expected an HTTP status code from 400 to 599',
    ]);
  });

  it('answers 503 to every request unless the flags say otherwise', () => {
    expect(httpError.flags).toEqual(['status', 'percent']);
    expect(httpError.fromFlags({})).toEqual({ status: 503, percent: 100 });
    expect(httpError.fromFlags({ status: 500, percent: 30 })).toEqual({ status: 500, percent: 30 });
  });

  it('describes itself and is calibrated by the share of errors', () => {
    expect(httpError.describe({ status: 503, percent: 50 })).toBe('503 on 50%');
    expect(httpError.configured?.({ status: 503, percent: 50 })).toEqual({ errorRate: 0.5 });
  });

  it("is the fault agent's lease on both targets, gateways included", () => {
    expect(httpError.injectors).toEqual(['fault-agent']);
    expect(httpError.onGateways).toBe(true);
    expect(httpError.lease?.({ status: 503, percent: 50 })).toEqual({
      kind: 'http-error',
      params: { status: 503, percent: 50 },
    });
  });
});
