import { describe, expect, it } from 'vitest';
import type { DependencyCall, Fetched } from '../dependency-caller.ts';
import { RetryBudget, type RetryBudgetOptions } from '../retry-budget.ts';
import { answers, likeCall, recordedEvents, scripted } from './__fixtures__/calls.ts';
import { retryTemporaryErrors } from './retry.ts';

function setup(options: { maxAttempts?: number; budget?: RetryBudgetOptions } = {}) {
  const budget = new RetryBudget({ clock: () => 0, ...options.budget });
  const { events, seen } = recordedEvents();
  const policy = retryTemporaryErrors({ budget, maxAttempts: options.maxAttempts ?? 2, events });
  return { budget, seen, policy };
}

/** Goes to instance a, then b, … (as `attemptOn` does, into `tried`), answering from the script. */
function instances(...script: Fetched<object>[]) {
  const backend = scripted(...script);
  const seenTried: string[][] = [];
  const handler = async (call: DependencyCall) => {
    seenTried.push([...(call.tried ?? [])]);
    call.tried?.add(`instance-${call.tried.size}`);
    return backend(call);
  };
  return { handler, backend, seenTried };
}

describe('retryTemporaryErrors', () => {
  it('tries a temporary failure again, telling the attempt which instances were tried', async () => {
    const { policy, seen } = setup();
    const { handler, seenTried } = instances(answers.unavailable(), answers.ok());
    expect(await policy(handler)(likeCall())).toMatchObject({ ok: true });
    expect(seenTried).toEqual([[], ['instance-0']]);
    expect(seen).toEqual([{ type: 'retry', dependency: 'like', attempt: 2 }]);
  });

  it('gives up after maxAttempts, with the last failure', async () => {
    const { policy, seen } = setup({ maxAttempts: 3 });
    const last = answers.unavailable();
    const { handler, backend } = instances(answers.unavailable(), answers.unavailable(), last);
    expect(await policy(handler)(likeCall())).toBe(last);
    expect(backend.calls).toHaveLength(3);
    expect(seen.map((e) => e.type === 'retry' && e.attempt)).toEqual([2, 3]);
  });

  it.each([
    ['a final failure', answers.failed()],
    ['a 404', answers.notFound()],
    ['a timeout', answers.timedOut()],
  ])('does not retry %s', async (_, failure) => {
    const { policy, seen } = setup();
    const { handler, backend } = instances(failure);
    expect(await policy(handler)(likeCall())).toBe(failure);
    expect(backend.calls).toHaveLength(1);
    expect(seen).toEqual([]);
  });

  it('does not retry once the call’s deadline has passed', async () => {
    const { policy } = setup();
    const { handler, backend } = instances(answers.unavailable());
    await policy(handler)(likeCall({ signal: AbortSignal.abort() }));
    expect(backend.calls).toHaveLength(1);
  });

  it('does not retry when the retry budget is spent, and says so', async () => {
    const { policy, seen } = setup({ budget: { ratio: 0, minPerSecond: 0 } });
    const { handler, backend } = instances(answers.unavailable());
    await policy(handler)(likeCall());
    expect(backend.calls).toHaveLength(1);
    expect(seen).toEqual([{ type: 'retry-budget-exhausted', dependency: 'like' }]);
  });

  it('counts every call towards the budget, and takes a retry from it', async () => {
    const { policy, budget } = setup({ budget: { ratio: 0.5, minPerSecond: 0 } });
    const { handler } = instances(answers.ok());
    for (let i = 0; i < 4; i++) await policy(handler)(likeCall());
    expect(budget.remaining()).toBe(2);
    await policy(instances(answers.unavailable(), answers.ok()).handler)(likeCall());
    expect(budget.remaining()).toBe(1); // 5 calls × 0.5, floored, minus the retry
  });

  it('refuses fewer than one attempt', () => {
    expect(() => setup({ maxAttempts: 0 })).toThrow(/at least 1/);
  });
});
