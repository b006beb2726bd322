import { performance } from 'node:perf_hooks';
import { isTimeout, type LabError } from '../../lib/errors.ts';
import type { DependencyPolicy } from '../dependency-caller.ts';
import type { CallOutcome } from '../metrics.ts';
import type { PolicyEvents } from './events.ts';

/**
 * Reports how long each call took and how it ended (`call-finished`), retries included —
 * the time the page waited for the dependency, not the time of one attempt.
 */
export function measureCalls(
  events: PolicyEvents,
  now: () => number = () => performance.now(),
): DependencyPolicy {
  return (next) => async (call) => {
    const startedAt = now();
    const answer = await next(call);
    events.emit({
      type: 'call-finished',
      dependency: call.dependency,
      outcome: answer.ok ? 'ok' : outcomeOf(answer.error),
      seconds: (now() - startedAt) / 1000,
    });
    return answer;
  };
}

function outcomeOf(error: LabError): Exclude<CallOutcome, 'ok' | 'cached'> {
  if (error.reason === 'CIRCUIT_OPEN') return 'dropped';
  if (error.status === 404) return 'not_found';
  if (isTimeout(error)) return 'timeout';
  return 'error';
}
