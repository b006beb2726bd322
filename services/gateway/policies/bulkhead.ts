import type { Policy } from './chain.ts';
import type { PolicyEvents } from './events.ts';

export interface BulkheadOptions<C, R> {
  /** Calls allowed in flight at once; the next one is turned away, none waits in a queue. */
  readonly limit: number;
  readonly events: PolicyEvents;
  /** The answer for a call turned away. */
  readonly rejected: (call: C) => R;
}

/**
 * A concurrency limit: at most `limit` calls run at once, and one more is answered at once
 * with `rejected` rather than queued, so an overloaded gateway sheds instead of piling up
 * work its callers will have given up on.
 */
export function bulkhead<C, R>({ limit, events, rejected }: BulkheadOptions<C, R>): Policy<C, R> {
  if (!(Number.isInteger(limit) && limit >= 1)) {
    throw new RangeError(`bulkhead limit must be a whole number of calls, at least 1, got ${limit}`);
  }
  let inFlight = 0;
  return (next) => async (call) => {
    if (inFlight >= limit) {
      events.emit({ type: 'bulkhead-rejected', limit });
      return rejected(call);
    }
    inFlight += 1;
    try {
      return await next(call);
    } finally {
      inFlight -= 1;
    }
  };
}
