import { describe, expect, it } from 'vitest';
import { LabError } from '../../lib/errors.ts';
import type { DependencyHandler, Fetched } from '../dependency-caller.ts';
import { fail } from '../result.ts';
import { answers, likeCall, recordedEvents } from './__fixtures__/calls.ts';
import { measureCalls } from './measure.ts';

/** A handler that takes `ms` on the injected clock before giving `answer`. */
function taking(ms: number, answer: Fetched<object>, clock: { now: number }): DependencyHandler {
  return async () => {
    clock.now += ms;
    return answer;
  };
}

describe('measureCalls', () => {
  it('reports how long the call took and how it ended, and passes the answer on unchanged', async () => {
    const clock = { now: 1_000 };
    const { events, seen } = recordedEvents();
    const answer = answers.ok();
    const handle = measureCalls(events, () => clock.now)(taking(250, answer, clock));
    expect(await handle(likeCall())).toBe(answer);
    expect(seen).toEqual([{ type: 'call-finished', dependency: 'like', outcome: 'ok', seconds: 0.25 }]);
  });

  it.each([
    ['not_found', answers.notFound()],
    ['timeout', answers.timedOut()],
    ['error', answers.failed()],
    ['error', answers.unavailable()],
  ] as const)('names a failure by its outcome: %s', async (outcome, answer) => {
    const { events, seen } = recordedEvents();
    await measureCalls(events)(async () => answer)(likeCall());
    expect(seen).toMatchObject([{ type: 'call-finished', outcome }]);
  });

  it('names a call the breaker dropped "dropped", though it is a 503 like an unavailable one', async () => {
    const { events, seen } = recordedEvents();
    const dropped = fail(new LabError({ status: 503, reason: 'CIRCUIT_OPEN', message: 'throttled' }));
    await measureCalls(events)(async () => dropped)(likeCall());
    expect(seen).toMatchObject([{ type: 'call-finished', outcome: 'dropped' }]);
  });
});
