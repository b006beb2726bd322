import { describe, expect, it } from 'vitest';
import { findCapacity } from './overload.ts';

/** What the generator would measure at each rate: kept up with below `capacity`, not above; `stalls` fail once. */
function gateway(capacity: number, stalls: readonly number[] = []) {
  const asked: number[] = [];
  const stalled = new Set<number>();
  const measure = async (rps: number) => {
    asked.push(rps);
    const stall = stalls.includes(rps) && !stalled.has(rps);
    if (stall) stalled.add(rps);
    const good = rps <= capacity && !stall;
    return {
      achievedRps: rps,
      successRate: good ? 1 : 0.89,
      fellBehind: false,
      latencyMs: { p50: 5, p95: 10, p99: good ? 20 : 322, max: 400 },
    };
  };
  return { measure, asked };
}

const LIMITS = { budgetMs: 800, log: () => {}, pauseMs: 0 };
const RATES = [25, 50, 75, 100, 150, 200, 300, 400];

describe('findCapacity', () => {
  it('steps up to the first rate not kept up with (measured twice), then once between', async () => {
    const { measure, asked } = gateway(250);
    const found = await findCapacity(measure, RATES, LIMITS);
    expect(asked).toEqual([25, 50, 75, 100, 150, 200, 300, 300, 250]);
    expect(found.capacityRps).toBe(250);
    expect(found.steps.map((s) => s.keptUp)).toEqual([
      true,
      true,
      true,
      true,
      true,
      true,
      false,
      false,
      true,
    ]);
  });

  it('measures a rate that was not kept up with once more: one stall is not the capacity', async () => {
    const { measure, asked } = gateway(250, [75]);
    const found = await findCapacity(measure, RATES, LIMITS);
    expect(asked.slice(0, 4)).toEqual([25, 50, 75, 75]);
    expect(found.capacityRps).toBe(250);
  });

  it('says so when no rate is kept up with', async () => {
    const { measure } = gateway(10);
    await expect(findCapacity(measure, RATES, LIMITS)).rejects.toThrow(
      /kept up with none of the rates tried \(25, 50, 75, 100, 150, 200, 300, 400 rps\)/,
    );
  });
});
