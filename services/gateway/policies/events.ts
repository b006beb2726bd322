import type { BackendName } from '../../topology.ts';
import type { CallOutcome } from '../metrics.ts';

/**
 * What the policies report as they work. They publish; whoever cares subscribes (the gateway's
 * metrics count them), so no policy knows how it is measured.
 */
export type PolicyEvent =
  /** A call reached past the cache and came back, retries included. */
  | {
      readonly type: 'call-finished';
      readonly dependency: BackendName;
      readonly outcome: Exclude<CallOutcome, 'cached'>;
      readonly seconds: number;
    }
  /** A fresh cached answer saved the call; `seconds` is how long answering from the cache took. */
  | { readonly type: 'cache-hit'; readonly dependency: BackendName; readonly seconds: number }
  /** The call failed and an older cached answer was served instead. */
  | { readonly type: 'cache-stale-served'; readonly dependency: BackendName; readonly ageMs: number }
  /** The adaptive-throttling breaker dropped the call locally. */
  | { readonly type: 'breaker-rejected'; readonly dependency: BackendName }
  /** A temporary failure is being tried again; `attempt` counts the first one as 1. */
  | { readonly type: 'retry'; readonly dependency: BackendName; readonly attempt: number }
  /** A retry was refused because the retry budget was spent. */
  | { readonly type: 'retry-budget-exhausted'; readonly dependency: BackendName }
  /** The bulkhead turned a call away: `limit` calls were in flight already. */
  | { readonly type: 'bulkhead-rejected'; readonly limit: number }
  /** A call was turned away because the event loop has been late too long; `delayMs` is how late it last ran. */
  | { readonly type: 'loop-delay-rejected'; readonly delayMs: number };

export type PolicyEventType = PolicyEvent['type'];
export type PolicyListener = (event: PolicyEvent) => void;

/** A typed listener list: listeners run synchronously, in the order they subscribed. */
export class PolicyEvents {
  readonly #listeners: PolicyListener[] = [];

  /** Returns a function that unsubscribes `listener`. */
  subscribe(listener: PolicyListener): () => void {
    this.#listeners.push(listener);
    return () => {
      const index = this.#listeners.indexOf(listener);
      if (index >= 0) this.#listeners.splice(index, 1);
    };
  }

  emit(event: PolicyEvent): void {
    for (const listener of [...this.#listeners]) listener(event);
  }
}
