import { isTemporary } from '../../lib/errors.ts';
import type { DependencyPolicy, Fetched } from '../dependency-caller.ts';
import type { RetryBudget } from '../retry-budget.ts';
import type { PolicyEvents } from './events.ts';

export interface RetryOptions {
  readonly budget: RetryBudget;
  /** Attempts per call, the first included. */
  readonly maxAttempts: number;
  readonly events: PolicyEvents;
}

/**
 * Tries a call again, on another instance, until an attempt succeeds, the error is not
 * temporary, the call's deadline has passed, or the retry budget is spent.
 */
export function retryTemporaryErrors({ budget, maxAttempts, events }: RetryOptions): DependencyPolicy {
  if (!(Number.isInteger(maxAttempts) && maxAttempts >= 1)) {
    throw new RangeError(`maxAttempts counts the first attempt too: at least 1, got ${maxAttempts}`);
  }
  return (next) => async (call) => {
    const tried = new Set<string>(call.tried);
    budget.recordRequest();
    let answer: Fetched<object> | undefined;
    for (let attempt = 1; attempt <= maxAttempts; attempt++) {
      if (answer && !answer.ok) {
        // Only an error that says so is worth another try, and only while time remains.
        if (!isTemporary(answer.error) || call.signal?.aborted) break;
        if (!budget.tryWithdraw()) {
          events.emit({ type: 'retry-budget-exhausted', dependency: call.dependency });
          break;
        }
        events.emit({ type: 'retry', dependency: call.dependency, attempt });
      }
      answer = await next({ ...call, tried });
      if (answer.ok) return answer;
    }
    return answer as Fetched<object>;
  };
}
