import { afterEach, describe, expect, it, vi } from 'vitest';
import { isTimeout } from '../lib/errors.ts';
import { PageBudget, parseBudget, startDeadline } from './deadline.ts';

describe('parseBudget', () => {
  it('falls back when the header is absent', () => {
    expect(parseBudget(undefined, 800)).toEqual({ ok: true, value: 800 });
  });

  it('reads whole milliseconds', () => {
    expect(parseBudget('250', 800)).toEqual({ ok: true, value: 250 });
  });

  it.each(['0', '-5', '1.5', 'abc', '', '250ms', '9999999'])('refuses %j with 400 INVALID_TIMEOUT', (raw) => {
    const result = parseBudget(raw, 800);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.error.status).toBe(400);
    expect(result.error.reason).toBe('INVALID_TIMEOUT');
    expect(result.error.message).toContain('x-request-timeout');
  });
});

describe('PageBudget', () => {
  it('gives each call min(its own deadline, what remains)', () => {
    let now = 1000;
    const budget = new PageBudget(500, () => now);
    expect(budget.callDeadlineMs(300)).toBe(300);
    now += 350;
    expect(budget.remainingMs()).toBe(150);
    expect(budget.callDeadlineMs(300)).toBe(150);
    expect(budget.callDeadlineMs(100)).toBe(100);
    now += 1000;
    expect(budget.remainingMs()).toBe(0);
    expect(budget.callDeadlineMs(100)).toBe(0);
  });
});

describe('startDeadline', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('aborts its signal with a timeout error when the time is up', () => {
    vi.useFakeTimers();
    const deadline = startDeadline(100);
    vi.advanceTimersByTime(99);
    expect(deadline.signal.aborted).toBe(false);
    vi.advanceTimersByTime(1);
    expect(deadline.signal.aborted).toBe(true);
    expect(isTimeout(deadline.signal.reason)).toBe(true);
  });

  it('never fires once cleared', () => {
    vi.useFakeTimers();
    const deadline = startDeadline(100);
    deadline.clear();
    vi.advanceTimersByTime(1000);
    expect(deadline.signal.aborted).toBe(false);
  });
});
