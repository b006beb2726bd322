import { errors, LabError } from '../../../lib/errors.ts';
import type { DependencyCall, DependencyHandler, Fetched } from '../../dependency-caller.ts';
import { fail } from '../../result.ts';
import { type PolicyEvent, PolicyEvents } from '../events.ts';

/** Stand-ins for what lies inside a policy: scripted answers and a bus that remembers. */

/** A call to `like` for video 7, plus whatever the test sets. */
export function likeCall(overrides: Partial<DependencyCall> = {}): DependencyCall {
  return { dependency: 'like', id: 7, requestId: 'r', ...overrides };
}

export interface ScriptedHandler extends DependencyHandler {
  /** Every call the handler got, as it got it. */
  readonly calls: DependencyCall[];
}

/** Answers each call with the next answer of the script; the last one repeats. */
export function scripted(...script: Fetched<object>[]): ScriptedHandler {
  const calls: DependencyCall[] = [];
  const handler = async (call: DependencyCall) => {
    calls.push(call);
    const answer = script[Math.min(calls.length, script.length) - 1];
    if (!answer) throw new Error('scripted() needs at least one answer');
    return answer;
  };
  return Object.assign(handler, { calls });
}

/** A bus, and every event published on it so far. */
export function recordedEvents(): { events: PolicyEvents; seen: PolicyEvent[] } {
  const events = new PolicyEvents();
  const seen: PolicyEvent[] = [];
  events.subscribe((event) => seen.push(event));
  return { events, seen };
}

const where = { dependency: 'like', upstream: 'http://like-1' };

/** Answers as the innermost handler gives them, each failure shaped as `callUpstream` shapes it. */
export const answers = {
  ok: (value: object = { aid: 7, likes: 1 }): Fetched<object> => ({ ok: true, value, stale: false }),
  /** A 503 or a refused connection: temporary, worth trying elsewhere. */
  unavailable: () => fail(errors.unavailable('DEPENDENCY_UNAVAILABLE', 'like is unreachable')),
  /** A 500 from the backend: final, and a sign the backend is failing. */
  failed: () =>
    fail(
      new LabError({
        status: 502,
        reason: 'DEPENDENCY_FAILED',
        message: 'like answered 500',
        metadata: { ...where, upstreamStatus: '500' },
      }),
    ),
  /** A 404: the backend answered, there is no such thing. */
  notFound: () =>
    fail(
      new LabError({
        status: 404,
        reason: 'NOT_FOUND',
        message: 'like has no /likes/7',
        metadata: { ...where, upstreamStatus: '404' },
      }),
    ),
  timedOut: () => fail(errors.timeout('DEPENDENCY_TIMEOUT', 'like did not answer in time')),
};
