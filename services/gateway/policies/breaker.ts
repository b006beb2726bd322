import { LabError } from '../../lib/errors.ts';
import { rejectedByBackend } from '../client.ts';
import type { DependencyPolicy } from '../dependency-caller.ts';
import { fail } from '../result.ts';
import type { SreBreaker } from '../sre-breaker.ts';
import type { PolicyEvents } from './events.ts';

/**
 * The adaptive-throttling breaker around a call: it drops a share of calls locally while the
 * dependency is failing (503 CIRCUIT_OPEN), and tells the breaker how each call it let through
 * ended. Placed outside the retries, it judges the dependency as a whole: one instance failing
 * while its sibling answers the retry is not a reason to throttle the dependency.
 */
export function adaptiveThrottling(breaker: SreBreaker, events: PolicyEvents): DependencyPolicy {
  return (next) => async (call) => {
    if (!breaker.allow()) {
      events.emit({ type: 'breaker-rejected', dependency: call.dependency });
      return fail(
        new LabError({
          status: 503,
          reason: 'CIRCUIT_OPEN',
          message: `${call.dependency} is being throttled by the gateway's breaker (it has been failing)`,
          metadata: { dependency: call.dependency },
        }),
      );
    }
    const answer = await next(call);
    if (answer.ok || !rejectedByBackend(answer.error)) breaker.markSuccess();
    else breaker.markFailure();
    return answer;
  };
}
