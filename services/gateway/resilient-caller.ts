import { BACKENDS, type BackendName, backend } from '../topology.ts';
import type { BackendBody } from './backend-api.ts';
import { DependencyCache } from './cache.ts';
import {
  attemptOn,
  type CallContext,
  type DependencyCaller,
  type DependencyHandler,
  type DependencyPolicy,
  type Fetched,
  fetchThrough,
  type Signer,
  type Upstreams,
} from './dependency-caller.ts';
import { eventsCountedIn, type GatewayMetrics, startResilienceCountersAtZero } from './metrics.ts';
import { adaptiveThrottling } from './policies/breaker.ts';
import { serveFromCache } from './policies/cache.ts';
import { chain } from './policies/chain.ts';
import { deadlineFromBudget } from './policies/deadline.ts';
import type { PolicyEvents } from './policies/events.ts';
import { measureCalls } from './policies/measure.ts';
import { retryTemporaryErrors } from './policies/retry.ts';
import { RetryBudget, type RetryBudgetOptions } from './retry-budget.ts';
import { type BreakerState, SreBreaker, type SreBreakerOptions } from './sre-breaker.ts';

export interface ResilientCallerOptions {
  readonly upstreams: Upstreams;
  readonly metrics: GatewayMetrics;
  readonly sign?: Signer;
  /** @default Date.now */
  readonly clock?: () => number;
  /** @default Math.random */
  readonly random?: () => number;
  readonly breaker?: Omit<SreBreakerOptions, 'clock' | 'random'>;
  readonly retryBudget?: Omit<RetryBudgetOptions, 'clock'>;
  /** How old a cached answer may be and still be served when the dependency fails. @default 60_000 */
  readonly maxStaleMs?: number;
  /** Attempts per dependency call, the first included. @default 2 */
  readonly maxAttempts?: number;
}

/**
 * The resilient strategy's way to reach a dependency: each dependency has its own chain of
 * `resilientPolicies` (its own cache, breaker and retry budget), all reporting to one event
 * bus that the gateway's metrics count.
 */
export class ResilientCaller implements DependencyCaller {
  /** What the policies report; the metrics given to the constructor count it already. */
  readonly events: PolicyEvents;
  readonly #breakers: Readonly<Record<BackendName, SreBreaker>>;
  readonly #calls: Readonly<Record<BackendName, DependencyHandler>>;

  constructor(options: ResilientCallerOptions) {
    const clock = options.clock ?? Date.now;
    const random = options.random ?? Math.random;
    const maxAttempts = options.maxAttempts ?? 2;
    const events = eventsCountedIn(options.metrics);
    const attempt = attemptOn(options.upstreams, options.sign);
    this.events = events;
    this.#breakers = perBackend(() => new SreBreaker({ ...options.breaker, clock, random }));
    this.#calls = perBackend((dependency) =>
      resilientPolicies({
        cache: new DependencyCache<object>({
          ttlMs: backend(dependency).cacheTtlMs,
          ...(options.maxStaleMs !== undefined ? { maxStaleMs: options.maxStaleMs } : {}),
          clock,
        }),
        deadlineMs: backend(dependency).deadlineMs,
        breaker: this.#breakers[dependency],
        retryBudget: new RetryBudget({ ...options.retryBudget, clock }),
        maxAttempts,
        events,
      })(attempt),
    );
    startResilienceCountersAtZero(options.metrics);
    options.metrics.sampleBreakers(() => this.breakers());
  }

  fetch<D extends BackendName>(
    dependency: D,
    id: number,
    ctx: CallContext,
  ): Promise<Fetched<BackendBody[D]>> {
    return fetchThrough(this.#calls[dependency], dependency, id, ctx);
  }

  /** The breaker's view of each dependency, for `/api/upstreams` and tests. */
  breakers(): Record<BackendName, { state: BreakerState; dropProbability: number }> {
    return perBackend((dependency) => {
      const breaker = this.#breakers[dependency];
      return { state: breaker.state(), dropProbability: breaker.dropProbability() };
    });
  }
}

/** One dependency's cache, breaker and retry budget, and where they report. */
export interface ResilientParts {
  readonly cache: DependencyCache<object>;
  /** The dependency's own deadline, before the page budget shortens it. */
  readonly deadlineMs: number;
  readonly breaker: SreBreaker;
  readonly retryBudget: RetryBudget;
  /** Attempts per call, the first included. */
  readonly maxAttempts: number;
  readonly events: PolicyEvents;
}

/**
 * The resilient policies around one dependency's calls, outermost first: a fresh cache hit
 * saves the call → the rest is measured → a deadline carved from the page budget → the
 * adaptive-throttling breaker → the call, retried on another instance only for temporary
 * errors, while time remains and the retry budget allows. On failure, the cache serves a
 * stale answer if it has one.
 */
export function resilientPolicies(parts: ResilientParts): DependencyPolicy {
  const { events } = parts;
  return chain(
    serveFromCache(parts.cache, events),
    measureCalls(events),
    deadlineFromBudget(parts.deadlineMs),
    adaptiveThrottling(parts.breaker, events),
    retryTemporaryErrors({ budget: parts.retryBudget, maxAttempts: parts.maxAttempts, events }),
  );
}

function perBackend<T>(make: (dependency: BackendName) => T): Record<BackendName, T> {
  return Object.fromEntries(BACKENDS.map((dependency) => [dependency, make(dependency)])) as Record<
    BackendName,
    T
  >;
}
