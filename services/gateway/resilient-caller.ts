import { performance } from 'node:perf_hooks';
import { isTemporary, LabError } from '../lib/errors.ts';
import { BACKENDS, type BackendName, backend } from '../topology.ts';
import type { BackendBody } from './backend-api.ts';
import { DependencyCache } from './cache.ts';
import { rejectedByBackend } from './client.ts';
import { startDeadline } from './deadline.ts';
import {
  attempt,
  type CallContext,
  type DependencyCaller,
  type Fetched,
  observe,
  outcomeOf,
  type Signer,
  type Upstreams,
} from './dependency-caller.ts';
import type { GatewayMetrics } from './metrics.ts';
import { fail, type Result } from './result.ts';
import { RetryBudget, type RetryBudgetOptions } from './retry-budget.ts';
import { type BreakerState, SreBreaker, type SreBreakerOptions } from './sre-breaker.ts';

/**
 * The resilient strategy's way to reach a dependency, policies outermost first:
 * fresh cache hit → deadline carved from the page budget → adaptive-throttling breaker →
 * call, retried on another instance only for temporary errors, while time remains and the
 * retry budget allows → on failure, a stale cached answer if there is one.
 */
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

interface DependencyPolicies {
  readonly breaker: SreBreaker;
  readonly retryBudget: RetryBudget;
  readonly cache: DependencyCache<object>;
}

export class ResilientCaller implements DependencyCaller {
  readonly #upstreams: Upstreams;
  readonly #metrics: GatewayMetrics;
  readonly #sign: Signer | undefined;
  readonly #maxAttempts: number;
  readonly #policies: Readonly<Record<BackendName, DependencyPolicies>>;

  constructor(options: ResilientCallerOptions) {
    this.#upstreams = options.upstreams;
    this.#metrics = options.metrics;
    this.#sign = options.sign;
    this.#maxAttempts = options.maxAttempts ?? 2;
    const clock = options.clock ?? Date.now;
    const random = options.random ?? Math.random;
    this.#policies = Object.fromEntries(
      BACKENDS.map((dependency) => [
        dependency,
        {
          breaker: new SreBreaker({ ...options.breaker, clock, random }),
          retryBudget: new RetryBudget({ ...options.retryBudget, clock }),
          cache: new DependencyCache<object>({
            ttlMs: backend(dependency).cacheTtlMs,
            ...(options.maxStaleMs !== undefined ? { maxStaleMs: options.maxStaleMs } : {}),
            clock,
          }),
        },
      ]),
    ) as Record<BackendName, DependencyPolicies>;
    options.metrics.onCollect(() => this.#publishBreakers());
    // At zero from the start, so a dashboard sees every series before its first event.
    const { cacheHits, cacheStaleServes, retries, retryBudgetExhausted, breakerDrops } = options.metrics;
    for (const dependency of BACKENDS) {
      for (const counter of [cacheHits, cacheStaleServes, retries, retryBudgetExhausted, breakerDrops]) {
        counter.inc({ dependency }, 0);
      }
    }
  }

  async fetch<D extends BackendName>(
    dependency: D,
    id: number,
    ctx: CallContext,
  ): Promise<Fetched<BackendBody[D]>> {
    const { cache } = this.#policies[dependency];
    const key = String(id);
    const startedAt = performance.now();
    const before = cache.get(key);
    if (before.kind === 'fresh') {
      this.#metrics.cacheHits.inc({ dependency });
      observe(this.#metrics, dependency, 'cached', startedAt);
      return { ok: true, value: before.value as BackendBody[D], stale: false };
    }

    const result = await this.#call(dependency, id, ctx);
    this.#publishBreakers(dependency);
    if (result.ok) {
      cache.set(key, result.value);
      observe(this.#metrics, dependency, 'ok', startedAt);
      return { ok: true, value: result.value, stale: false };
    }
    observe(this.#metrics, dependency, outcomeOf(result.error), startedAt);
    if (result.error.status === 404) return result;
    // Looked up again: another page may have refreshed it while this call was failing.
    const after = cache.get(key);
    if (after.kind === 'miss') return result;
    if (after.kind === 'stale') this.#metrics.cacheStaleServes.inc({ dependency });
    return { ok: true, value: after.value as BackendBody[D], stale: after.kind === 'stale' };
  }

  /** The breaker's view of each dependency, for `/api/upstreams` and tests. */
  breakers(): Record<BackendName, { state: BreakerState; dropProbability: number }> {
    return Object.fromEntries(
      BACKENDS.map((d) => {
        const { breaker } = this.#policies[d];
        return [d, { state: breaker.state(), dropProbability: breaker.dropProbability() }];
      }),
    ) as Record<BackendName, { state: BreakerState; dropProbability: number }>;
  }

  async #call<D extends BackendName>(
    dependency: D,
    id: number,
    ctx: CallContext,
  ): Promise<Result<BackendBody[D]>> {
    const { breaker } = this.#policies[dependency];
    const deadlineMs = ctx.budget
      ? ctx.budget.callDeadlineMs(backend(dependency).deadlineMs)
      : backend(dependency).deadlineMs;
    if (deadlineMs <= 0) {
      return fail(
        new LabError({
          status: 504,
          reason: 'DEPENDENCY_TIMEOUT',
          message: `no time left in the page budget to call ${dependency}`,
          timeout: true,
          metadata: { dependency },
        }),
      );
    }

    // The breaker judges the dependency as a whole, retries included: one instance failing
    // while its sibling answers the retry is not a reason to throttle the dependency.
    if (!breaker.allow()) {
      this.#metrics.breakerDrops.inc({ dependency });
      return fail(
        new LabError({
          status: 503,
          reason: 'CIRCUIT_OPEN',
          message: `${dependency} is being throttled by the gateway's breaker (it has been failing)`,
          metadata: { dependency },
        }),
      );
    }
    const result = await this.#retried(dependency, id, ctx.requestId, deadlineMs);
    if (result.ok || !rejectedByBackend(result.error)) breaker.markSuccess();
    else breaker.markFailure();
    return result;
  }

  /** Attempts until one succeeds, the error is final, time is up, or the retry budget is spent. */
  async #retried<D extends BackendName>(
    dependency: D,
    id: number,
    requestId: string,
    deadlineMs: number,
  ): Promise<Result<BackendBody[D]>> {
    const { retryBudget } = this.#policies[dependency];
    const upstreams = this.#upstreams[dependency];
    const deadline = startDeadline(deadlineMs);
    const tried = new Set<string>();
    retryBudget.recordRequest();
    try {
      let result: Result<BackendBody[D]> | undefined;
      for (let attemptNo = 1; attemptNo <= this.#maxAttempts; attemptNo++) {
        if (result && !result.ok) {
          // Only an error that says so is worth another try, and only while time remains.
          if (!isTemporary(result.error) || deadline.signal.aborted) break;
          if (!retryBudget.tryWithdraw()) {
            this.#metrics.retryBudgetExhausted.inc({ dependency });
            break;
          }
          this.#metrics.retries.inc({ dependency });
        }
        const instance = upstreams.pick(tried);
        tried.add(instance.url);
        result = await attempt(instance, dependency, id, {
          requestId,
          signal: deadline.signal,
          deadlineMs,
          ...(this.#sign ? { sign: this.#sign } : {}),
        });
        if (result.ok) return result;
      }
      return result as Result<BackendBody[D]>;
    } finally {
      deadline.clear();
    }
  }

  #publishBreakers(only?: BackendName): void {
    for (const dependency of only ? [only] : BACKENDS) {
      const { breaker } = this.#policies[dependency];
      const p = breaker.dropProbability();
      this.#metrics.breakerDropProbability.set({ dependency }, p);
      this.#metrics.breakerState.set({ dependency }, p > 0 ? 1 : 0);
    }
  }
}
