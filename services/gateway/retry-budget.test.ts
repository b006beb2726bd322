import { describe, expect, it } from 'vitest';
import { RetryBudget } from './retry-budget.ts';

describe('RetryBudget', () => {
  it('allows the floor even with no traffic, and not one retry more', () => {
    const budget = new RetryBudget({ ratio: 0.1, minPerSecond: 3, windowMs: 1000, clock: () => 0 });
    expect([budget.tryWithdraw(), budget.tryWithdraw(), budget.tryWithdraw()]).toEqual([true, true, true]);
    expect(budget.tryWithdraw()).toBe(false);
  });

  it('adds 10% of the requests in the window on top of the floor', () => {
    const budget = new RetryBudget({ ratio: 0.1, minPerSecond: 0, windowMs: 1000, clock: () => 0 });
    for (let i = 0; i < 100; i++) budget.recordRequest();
    let granted = 0;
    for (let i = 0; i < 100; i++) if (budget.tryWithdraw()) granted++;
    expect(granted).toBe(10);
  });

  it('refills as the window rolls past old retries', () => {
    let now = 0;
    const budget = new RetryBudget({ ratio: 0, minPerSecond: 2, windowMs: 1000, clock: () => now });
    expect(budget.tryWithdraw()).toBe(true);
    expect(budget.tryWithdraw()).toBe(true);
    expect(budget.tryWithdraw()).toBe(false);
    now = 1000;
    expect(budget.remaining()).toBe(2);
    expect(budget.tryWithdraw()).toBe(true);
  });
});
