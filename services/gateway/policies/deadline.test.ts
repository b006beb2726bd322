import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { isTimeout } from '../../lib/errors.ts';
import { PageBudget } from '../deadline.ts';
import type { DependencyCall } from '../dependency-caller.ts';
import { answers, likeCall, scripted } from './__fixtures__/calls.ts';
import { deadlineFromBudget } from './deadline.ts';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

/** A page budget of `budgetMs`, `spentMs` of which are gone. */
function budget(budgetMs: number, spentMs: number): PageBudget {
  const clock = { now: 0 };
  const b = new PageBudget(budgetMs, () => clock.now);
  clock.now = spentMs;
  return b;
}

describe('deadlineFromBudget', () => {
  it.each([
    ['the dependency’s own deadline, when the page has more left', budget(800, 100), 250],
    ['what the page has left, when that is less', budget(800, 700), 100],
    ['the dependency’s own deadline, without a page budget', undefined, 250],
  ])('gives the call %s', async (_, pageBudget, expected) => {
    const backend = scripted(answers.ok());
    await deadlineFromBudget(250)(backend)(likeCall(pageBudget ? { budget: pageBudget } : {}));
    expect(backend.calls[0]?.deadlineMs).toBe(expected);
  });

  it('does not call at all when the page budget is spent', async () => {
    const backend = scripted(answers.ok());
    const answer = await deadlineFromBudget(250)(backend)(likeCall({ budget: budget(800, 800) }));
    expect(!answer.ok && [answer.error.status, answer.error.reason]).toEqual([504, 'DEPENDENCY_TIMEOUT']);
    expect(!answer.ok && isTimeout(answer.error)).toBe(true);
    expect(backend.calls).toEqual([]);
  });

  it('aborts the call’s signal, with a timeout as the reason, when the deadline passes', async () => {
    let signal: AbortSignal | undefined;
    const handle = deadlineFromBudget(250)(async (call: DependencyCall) => {
      signal = call.signal;
      return new Promise((resolve) =>
        call.signal?.addEventListener('abort', () => resolve(answers.timedOut())),
      );
    });
    const pending = handle(likeCall());
    await vi.advanceTimersByTimeAsync(249);
    expect(signal?.aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await pending;
    expect(signal?.aborted).toBe(true);
    expect(isTimeout(signal?.reason)).toBe(true);
  });

  it('stops the timer when the call is over', async () => {
    const backend = scripted(answers.ok());
    await deadlineFromBudget(250)(backend)(likeCall());
    expect(vi.getTimerCount()).toBe(0);
    expect(backend.calls[0]?.signal?.aborted).toBe(false);
  });
});
