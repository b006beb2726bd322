import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { BACKENDS, type BackendName, WEAK_BACKENDS } from '../topology.ts';
import { type PolicyEvent, PolicyEvents, type PolicyEventType } from './policies/events.ts';

/**
 * The gateway's metrics. Their names and labels are a contract with the dashboards and the
 * experiment runner: rename nothing here without changing them too.
 */
export const CALL_OUTCOMES = ['ok', 'not_found', 'error', 'timeout', 'dropped', 'cached'] as const;
export type CallOutcome = (typeof CALL_OUTCOMES)[number];

/**
 * Why the resilient gateway refused a page: too many in flight (the bulkhead), or its own event
 * loop running late (requests queueing in front of the process).
 */
export const SHED_CAUSES = ['concurrency', 'loop_delay'] as const;

export interface GatewayMetrics {
  readonly requests: Counter<'strategy' | 'status' | 'degraded'>;
  readonly dependencyDuration: Histogram<'dependency' | 'outcome'>;
  readonly degraded: Counter<'dependency'>;
  readonly breakerDrops: Counter<'dependency'>;
  readonly breakerDropProbability: Gauge<'dependency'>;
  readonly breakerState: Gauge<'dependency'>;
  readonly cacheHits: Counter<'dependency'>;
  readonly cacheStaleServes: Counter<'dependency'>;
  readonly retries: Counter<'dependency'>;
  readonly retryBudgetExhausted: Counter<'dependency'>;
  readonly shed: Counter<'cause'>;
  readonly inflight: Gauge;
  readonly upstreamReady: Gauge<'dependency' | 'upstream'>;
  /**
   * Reads each breaker's drop probability whenever the breaker gauges are read: the state
   * decays with time alone (the window rolls), not only when calls happen.
   */
  sampleBreakers(read: () => Readonly<Record<BackendName, { readonly dropProbability: number }>>): void;
}

export function createGatewayMetrics(registry: Registry): GatewayMetrics {
  const registers = [registry];
  const samplers: (() => void)[] = [];
  const collect = () => {
    for (const sample of samplers) sample();
  };
  const degraded = new Counter({
    name: 'gateway_degraded_total',
    help: 'Pages served without a weak dependency, by dependency',
    labelNames: ['dependency'] as const,
    registers,
  });
  // At zero from the start, so a dashboard sees the series before the first degraded page.
  for (const dependency of WEAK_BACKENDS) degraded.inc({ dependency }, 0);
  const shed = new Counter({
    name: 'gateway_shed_total',
    help: 'Pages refused with 503 OVERLOADED, by cause: concurrency (too many in flight) or loop_delay (the event loop running late)',
    labelNames: ['cause'] as const,
    registers,
  });
  for (const cause of SHED_CAUSES) shed.inc({ cause }, 0);
  const metrics: GatewayMetrics = {
    sampleBreakers: (read) => {
      samplers.push(() => {
        for (const [dependency, { dropProbability }] of Object.entries(read())) {
          metrics.breakerDropProbability.set({ dependency }, dropProbability);
          metrics.breakerState.set({ dependency }, dropProbability > 0 ? 1 : 0);
        }
      });
    },
    requests: new Counter({
      name: 'gateway_requests_total',
      help: 'Video pages answered, by strategy, HTTP status and whether the page was degraded',
      labelNames: ['strategy', 'status', 'degraded'] as const,
      registers,
    }),
    dependencyDuration: new Histogram({
      name: 'gateway_dependency_duration_seconds',
      help: 'Time one dependency took for one page (retries included), by outcome',
      labelNames: ['dependency', 'outcome'] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    }),
    degraded,
    breakerDrops: new Counter({
      name: 'gateway_breaker_drops_total',
      help: 'Calls the adaptive-throttling breaker dropped locally, by dependency',
      labelNames: ['dependency'] as const,
      registers,
    }),
    breakerDropProbability: new Gauge({
      name: 'gateway_breaker_drop_probability',
      help: 'Share of calls the breaker currently drops, by dependency',
      labelNames: ['dependency'] as const,
      registers,
      collect,
    }),
    breakerState: new Gauge({
      name: 'gateway_breaker_state',
      help: 'Breaker state by dependency: 0 closed, 1 throttling',
      labelNames: ['dependency'] as const,
      registers,
      collect,
    }),
    cacheHits: new Counter({
      name: 'gateway_cache_hits_total',
      help: 'Fresh cache hits that saved a call, by dependency',
      labelNames: ['dependency'] as const,
      registers,
    }),
    cacheStaleServes: new Counter({
      name: 'gateway_cache_stale_serves_total',
      help: 'Stale answers served because the dependency failed, by dependency',
      labelNames: ['dependency'] as const,
      registers,
    }),
    retries: new Counter({
      name: 'gateway_retries_total',
      help: 'Retries of temporary failures, by dependency',
      labelNames: ['dependency'] as const,
      registers,
    }),
    retryBudgetExhausted: new Counter({
      name: 'gateway_retry_budget_exhausted_total',
      help: 'Retries refused because the retry budget was spent, by dependency',
      labelNames: ['dependency'] as const,
      registers,
    }),
    shed,
    inflight: new Gauge({
      name: 'gateway_inflight',
      help: 'Video pages being assembled right now',
      registers,
    }),
    upstreamReady: new Gauge({
      name: 'gateway_upstream_ready',
      help: 'Whether the gateway routes to a backend instance: 1 ready, 0 not',
      labelNames: ['dependency', 'upstream'] as const,
      registers,
    }),
  };
  return metrics;
}

type Counts = { readonly [T in PolicyEventType]: (event: Extract<PolicyEvent, { type: T }>) => void };

/** A new event bus whose events `metrics` count: the policies publish, the metrics subscribe. */
export function eventsCountedIn(metrics: GatewayMetrics): PolicyEvents {
  // A record rather than a switch: an event kind without a line here does not compile.
  const counts: Counts = {
    'call-finished': ({ dependency, outcome, seconds }) =>
      metrics.dependencyDuration.observe({ dependency, outcome }, seconds),
    'cache-hit': ({ dependency, seconds }) => {
      metrics.cacheHits.inc({ dependency });
      metrics.dependencyDuration.observe({ dependency, outcome: 'cached' }, seconds);
    },
    'cache-stale-served': ({ dependency }) => metrics.cacheStaleServes.inc({ dependency }),
    'breaker-rejected': ({ dependency }) => metrics.breakerDrops.inc({ dependency }),
    retry: ({ dependency }) => metrics.retries.inc({ dependency }),
    'retry-budget-exhausted': ({ dependency }) => metrics.retryBudgetExhausted.inc({ dependency }),
    'bulkhead-rejected': () => metrics.shed.inc({ cause: 'concurrency' }),
    'loop-delay-rejected': () => metrics.shed.inc({ cause: 'loop_delay' }),
  };
  const events = new PolicyEvents();
  events.subscribe((event) => (counts[event.type] as (e: PolicyEvent) => void)(event));
  return events;
}

/**
 * The resilient caller's counters at zero from the start, so a dashboard sees every series
 * before its first event. (The other strategies have no such series.)
 */
export function startResilienceCountersAtZero(metrics: GatewayMetrics): void {
  const { cacheHits, cacheStaleServes, retries, retryBudgetExhausted, breakerDrops } = metrics;
  for (const dependency of BACKENDS) {
    for (const counter of [cacheHits, cacheStaleServes, retries, retryBudgetExhausted, breakerDrops]) {
      counter.inc({ dependency }, 0);
    }
  }
}
