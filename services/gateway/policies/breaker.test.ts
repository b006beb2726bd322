import { describe, expect, it } from 'vitest';
import type { Fetched } from '../dependency-caller.ts';
import { SreBreaker } from '../sre-breaker.ts';
import { answers, likeCall, recordedEvents, scripted } from './__fixtures__/calls.ts';
import { adaptiveThrottling } from './breaker.ts';

/** A breaker that judges after 4 calls and, when it may drop, always does (the dice roll 0). */
function setup(...script: Fetched<object>[]) {
  const breaker = new SreBreaker({ minRequests: 4, clock: () => 0, random: () => 0 });
  const { events, seen } = recordedEvents();
  const backend = scripted(...script);
  return { breaker, seen, backend, handle: adaptiveThrottling(breaker, events)(backend) };
}

describe('adaptiveThrottling', () => {
  it('drops calls locally with 503 CIRCUIT_OPEN once the dependency keeps failing', async () => {
    const { handle, backend, breaker, seen } = setup(answers.failed());
    for (let i = 0; i < 4; i++) await handle(likeCall());
    expect(breaker.state()).toBe('throttling');
    const dropped = await handle(likeCall());
    expect(!dropped.ok && [dropped.error.status, dropped.error.reason]).toEqual([503, 'CIRCUIT_OPEN']);
    expect(!dropped.ok && dropped.error.metadata.dependency).toBe('like');
    expect(backend.calls).toHaveLength(4);
    expect(seen).toEqual([{ type: 'breaker-rejected', dependency: 'like' }]);
  });

  it.each([
    ['a temporary failure', answers.unavailable()],
    ['a timeout', answers.timedOut()],
  ])('counts %s as the backend not accepting the call', async (_, failure) => {
    const { handle, breaker } = setup(failure);
    for (let i = 0; i < 4; i++) await handle(likeCall());
    expect(breaker.dropProbability()).toBeGreaterThan(0);
  });

  it.each([
    ['an answer', answers.ok()],
    ['a 404', answers.notFound()],
  ])('counts %s as accepted: it never throttles', async (_, answer) => {
    const { handle, breaker, backend } = setup(answer);
    for (let i = 0; i < 20; i++) expect(await handle(likeCall())).toBe(answer);
    expect(breaker.dropProbability()).toBe(0);
    expect(backend.calls).toHaveLength(20);
  });
});
