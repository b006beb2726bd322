/**
 * Resilience as middleware, the Kratos way (`middleware.Chain`): a handler answers a call, a
 * policy wraps a handler in one behaviour (a cache, a deadline, a breaker…) and returns
 * another handler. Each policy knows only the handler it wraps, so each can be read and
 * tested on its own, and the order they apply in is written down once, where they are chained.
 */
export type Handler<C, R> = (call: C) => Promise<R>;

export type Policy<C, R> = (next: Handler<C, R>) => Handler<C, R>;

/** One policy out of many, outermost first: `chain(a, b)(h)` is `a(b(h))`. */
export function chain<C, R>(...policies: readonly Policy<C, R>[]): Policy<C, R> {
  return (handler) => policies.reduceRight<Handler<C, R>>((next, policy) => policy(next), handler);
}
