import { performance } from 'node:perf_hooks';
import { isTimeout, LabError } from '../lib/errors.ts';
import type { BackendName } from '../topology.ts';
import { BACKEND_API, type BackendBody } from './backend-api.ts';
import { callUpstream, type UpstreamCall } from './client.ts';
import type { PageBudget } from './deadline.ts';
import type { CallOutcome, GatewayMetrics } from './metrics.ts';
import { fail, ok, type Result } from './result.ts';
import type { UpstreamInstance, UpstreamSet } from './upstream.ts';

/** What one dependency gave the page: its answer (maybe served stale from the cache) or an error. */
export type Fetched<T> =
  | { readonly ok: true; readonly value: T; readonly stale: boolean }
  | { readonly ok: false; readonly error: LabError };

export interface CallContext {
  readonly requestId: string;
  /** The page's budget; absent for strategies without deadlines. */
  readonly budget?: PageBudget;
}

/** How a strategy reaches its dependencies: plainly, or through the resilience policies. */
export interface DependencyCaller {
  fetch<D extends BackendName>(dependency: D, id: number, ctx: CallContext): Promise<Fetched<BackendBody[D]>>;
}

export type Upstreams = Readonly<Record<BackendName, UpstreamSet>>;
export type Signer = NonNullable<UpstreamCall['sign']>;

export interface AttemptOptions {
  readonly requestId: string;
  readonly signal?: AbortSignal;
  readonly deadlineMs?: number;
  readonly sign?: Signer;
}

/** One call to one instance, its body checked against what the page needs. */
export async function attempt<D extends BackendName>(
  instance: UpstreamInstance,
  dependency: D,
  id: number,
  options: AttemptOptions,
): Promise<Result<BackendBody[D]>> {
  const api = BACKEND_API[dependency];
  const path = api.path(id);
  const result = await callUpstream(instance, {
    dependency,
    path,
    requestId: options.requestId,
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.deadlineMs !== undefined ? { deadlineMs: options.deadlineMs } : {}),
    ...(options.sign ? { sign: options.sign } : {}),
  });
  if (!result.ok) return result;
  const parsed = api.schema.safeParse(result.value);
  if (parsed.success) return ok(parsed.data as BackendBody[D]);
  const issue = parsed.error.issues[0];
  return fail(
    new LabError({
      status: 502,
      reason: 'DEPENDENCY_FAILED',
      message: `${dependency} answered ${path} with an unexpected body at ${instance.url}: ${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'}`,
      metadata: { dependency, upstream: instance.url, upstreamStatus: '200' },
    }),
  );
}

export function outcomeOf(error: LabError): CallOutcome {
  if (error.reason === 'CIRCUIT_OPEN') return 'dropped';
  if (error.status === 404) return 'not_found';
  if (isTimeout(error)) return 'timeout';
  return 'error';
}

export function observe(
  metrics: GatewayMetrics,
  dependency: BackendName,
  outcome: CallOutcome,
  startedAt: number,
) {
  metrics.dependencyDuration.observe({ dependency, outcome }, (performance.now() - startedAt) / 1000);
}

/**
 * The naive and parallel strategies' way: one call to the next instance, no deadline, no
 * retry, no cache — whatever the backend does, the page gets.
 */
export class PlainCaller implements DependencyCaller {
  readonly #upstreams: Upstreams;
  readonly #metrics: GatewayMetrics;
  readonly #sign: Signer | undefined;

  constructor(options: { upstreams: Upstreams; metrics: GatewayMetrics; sign?: Signer }) {
    this.#upstreams = options.upstreams;
    this.#metrics = options.metrics;
    this.#sign = options.sign;
  }

  async fetch<D extends BackendName>(
    dependency: D,
    id: number,
    ctx: CallContext,
  ): Promise<Fetched<BackendBody[D]>> {
    const startedAt = performance.now();
    const instance = this.#upstreams[dependency].pick();
    const result = await attempt(instance, dependency, id, {
      requestId: ctx.requestId,
      ...(this.#sign ? { sign: this.#sign } : {}),
    });
    observe(this.#metrics, dependency, result.ok ? 'ok' : outcomeOf(result.error), startedAt);
    return result.ok ? { ok: true, value: result.value, stale: false } : result;
  }
}
