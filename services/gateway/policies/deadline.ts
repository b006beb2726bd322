import { LabError } from '../../lib/errors.ts';
import { startDeadline } from '../deadline.ts';
import type { DependencyPolicy } from '../dependency-caller.ts';
import { fail } from '../result.ts';

/**
 * A deadline for the call, carved from the page's budget: never longer than the dependency's
 * own deadline, never longer than what the page has left. With nothing left the call is not
 * made at all. Inner policies get the deadline as `deadlineMs` and as an aborting `signal`.
 */
export function deadlineFromBudget(dependencyDeadlineMs: number): DependencyPolicy {
  return (next) => async (call) => {
    const deadlineMs = call.budget ? call.budget.callDeadlineMs(dependencyDeadlineMs) : dependencyDeadlineMs;
    if (deadlineMs <= 0) {
      return fail(
        new LabError({
          status: 504,
          reason: 'DEPENDENCY_TIMEOUT',
          message: `no time left in the page budget to call ${call.dependency}`,
          timeout: true,
          metadata: { dependency: call.dependency },
        }),
      );
    }
    const deadline = startDeadline(deadlineMs);
    try {
      return await next({ ...call, deadlineMs, signal: deadline.signal });
    } finally {
      deadline.clear();
    }
  };
}
