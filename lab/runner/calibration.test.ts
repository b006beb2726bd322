import { describe, expect, it } from 'vitest';
import type { Fault } from '../faults/registry.ts';
import { configuredOf, describeFault, isCalibrated } from './calibration.ts';

const onCoin = { service: 'coin', instances: ['coin-1', 'coin-2'] } as const;

function latency(requestShare: number): Fault {
  return {
    kind: 'latency',
    ...onCoin,
    instances: [...onCoin.instances],
    delayMs: 300,
    jitterMs: 20,
    requestShare,
  };
}

describe('calibration of a latency with a direction', () => {
  it('configures what a call pays in all and on each way, under the keys the proxies observe', () => {
    expect(isCalibrated(latency(0.5))).toBe(true);
    expect(configuredOf(latency(0.5))).toEqual({
      addedLatencyMs: 300,
      jitterMs: 20,
      requestLatencyMs: 150,
      responseLatencyMs: 150,
    });
    expect(configuredOf(latency(1))).toMatchObject({
      addedLatencyMs: 300,
      requestLatencyMs: 300,
      responseLatencyMs: 0,
    });
    expect(configuredOf(latency(0))).toMatchObject({
      addedLatencyMs: 300,
      requestLatencyMs: 0,
      responseLatencyMs: 300,
    });
  });

  it('names the way of a one-way latency in the fault it describes', () => {
    expect(describeFault(latency(0.5))).toBe('latency on coin (delay 300ms, jitter 20ms)');
    expect(describeFault(latency(1))).toBe('latency on coin (delay 300ms, jitter 20ms on requests)');
    expect(describeFault({ ...latency(0), instances: ['coin-2'] })).toBe(
      'latency on coin-2 (delay 300ms, jitter 20ms on responses)',
    );
  });
});
