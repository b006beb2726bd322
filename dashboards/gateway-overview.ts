/**
 * The gateway overview: the three strategies side by side under the same load and the same
 * fault — what the user gets (rate, success, degradation, latency), what each dependency costs,
 * and what the resilient gateway's mechanisms are doing about it (breaker, cache, retries,
 * shedding).
 *
 * Labels: `strategy` comes from the scrape configuration (every gateway target carries it);
 * `dependency` and `outcome` from the gateway's own metrics (services/gateway/metrics.ts).
 */

import type { Dashboard } from '@grafana/grafana-foundation-sdk/dashboard';
import { GATEWAY_SERVICE } from '../services/names.ts';
import { BACKENDS, STRATEGIES } from '../services/topology.ts';
import { experimentAnnotations } from './experiment-annotations.ts';
import {
  buildDashboard,
  filterVariable,
  RATE,
  shareOf,
  stateTimeline,
  statPanel,
  timeSeries,
  UNITS,
} from './panels.ts';

export const GATEWAY_OVERVIEW_UID = 'chaos-lab-gateways';

/** The video page's route as the service app labels it (services/gateway/app.ts). */
const PAGE_ROUTE = '/api/video/:aid';

const BY_STRATEGY = 'strategy=~"$strategy"';
const BY_DEPENDENCY = 'dependency=~"$dependency"';
const PAGES = `gateway_requests_total{${BY_STRATEGY}}`;
const PAGE_LATENCY = `http_server_request_duration_seconds_bucket{service="${GATEWAY_SERVICE}", route="${PAGE_ROUTE}", ${BY_STRATEGY}}`;
const CALL_LATENCY = `gateway_dependency_duration_seconds_bucket{${BY_STRATEGY}, ${BY_DEPENDENCY}}`;

function pageRate(extraMatchers = ''): string {
  const selector = extraMatchers ? `gateway_requests_total{${BY_STRATEGY}, ${extraMatchers}}` : PAGES;
  return `sum by (strategy) (rate(${selector}[${RATE}]))`;
}

function shareOfPages(matchers: string): string {
  return shareOf(pageRate(matchers), pageRate());
}

function pageQuantile(q: number): string {
  return `histogram_quantile(${q}, sum by (strategy, le) (rate(${PAGE_LATENCY}[${RATE}])))`;
}

/** `rate` of a resilient-gateway counter by strategy and dependency. */
function perDependency(metric: string): string {
  return `sum by (strategy, dependency) (rate(${metric}{${BY_STRATEGY}, ${BY_DEPENDENCY}}[${RATE}]))`;
}

const pages = [
  timeSeries({
    title: 'Pages per second',
    description:
      'Video pages answered by each gateway, whatever the answer. All three get the same open-model load, so a gap means requests are still in flight or were refused.',
    queries: [{ expr: pageRate(), legend: '{{strategy}}' }],
    unit: UNITS.requestsPerSecond,
    width: 8,
  }),
  timeSeries({
    title: 'Success rate',
    description:
      'Share of pages answered 2xx, complete or degraded (the lab\'s "success"). Naive and parallel fall with any failing dependency; resilient should hold while only weak dependencies fail.',
    queries: [{ expr: shareOfPages('status=~"2.."'), legend: '{{strategy}}' }],
    unit: UNITS.share,
    min: 0,
    max: 1,
    width: 8,
  }),
  timeSeries({
    title: 'Degraded rate',
    description:
      'Share of all pages served without at least one weak dependency (vip, like, coin), marked in `degraded`. Only the resilient gateway degrades; the others fail instead.',
    queries: [{ expr: shareOfPages('degraded="true"'), legend: '{{strategy}}' }],
    unit: UNITS.share,
    min: 0,
    max: 1,
    width: 8,
  }),
  timeSeries({
    title: 'Page latency p50',
    description:
      "Median time to answer a video page, per strategy (from the service app's request histogram).",
    queries: [{ expr: pageQuantile(0.5), legend: '{{strategy}}' }],
    unit: UNITS.seconds,
    width: 8,
  }),
  timeSeries({
    title: 'Page latency p95',
    description: '95th percentile of the video page latency, per strategy.',
    queries: [{ expr: pageQuantile(0.95), legend: '{{strategy}}' }],
    unit: UNITS.seconds,
    width: 8,
  }),
  timeSeries({
    title: 'Page latency p99',
    description:
      'The tail: a slow weak dependency shows here first for naive and parallel; the resilient gateway stays under its per-dependency deadlines.',
    queries: [{ expr: pageQuantile(0.99), legend: '{{strategy}}' }],
    unit: UNITS.seconds,
    width: 8,
  }),
  timeSeries({
    title: 'Errors by status',
    description:
      'Pages answered with anything but 2xx, by strategy and HTTP status (404 for unknown videos is expected).',
    queries: [
      {
        expr: `sum by (strategy, status) (rate(gateway_requests_total{${BY_STRATEGY}, status!~"2.."}[${RATE}]))`,
        legend: '{{strategy}} · {{status}}',
      },
    ],
    unit: UNITS.requestsPerSecond,
    width: 12,
  }),
  timeSeries({
    title: 'Pages in flight',
    description:
      'Pages being assembled right now. A gateway without deadlines piles them up behind a slow dependency; the resilient one sheds beyond its limit (GATEWAY_MAX_CONCURRENCY).',
    queries: [{ expr: `sum by (strategy) (gateway_inflight{${BY_STRATEGY}})`, legend: '{{strategy}}' }],
    unit: UNITS.count,
    min: 0,
    width: 12,
  }),
];

const dependencies = [
  timeSeries({
    title: 'Dependency latency p99',
    description:
      'Time one dependency took for one page, retries included, per strategy and dependency. Resilient calls to weak dependencies are cut at their deadline.',
    queries: [
      {
        expr: `histogram_quantile(0.99, sum by (strategy, dependency, le) (rate(${CALL_LATENCY}[${RATE}])))`,
        legend: '{{strategy}} · {{dependency}}',
      },
    ],
    unit: UNITS.seconds,
    width: 12,
  }),
  timeSeries({
    title: 'Dependency latency p50',
    description: 'Median time of one dependency call per strategy and dependency.',
    queries: [
      {
        expr: `histogram_quantile(0.5, sum by (strategy, dependency, le) (rate(${CALL_LATENCY}[${RATE}])))`,
        legend: '{{strategy}} · {{dependency}}',
      },
    ],
    unit: UNITS.seconds,
    width: 12,
  }),
  timeSeries({
    title: 'Dependency calls by outcome',
    description:
      'Calls per second by outcome: ok, not_found, error, timeout, dropped (by the breaker), cached (a fresh cache hit that saved the call).',
    queries: [
      {
        expr: `sum by (strategy, dependency, outcome) (rate(gateway_dependency_duration_seconds_count{${BY_STRATEGY}, ${BY_DEPENDENCY}}[${RATE}]))`,
        legend: '{{strategy}} · {{dependency}} · {{outcome}}',
      },
    ],
    unit: UNITS.requestsPerSecond,
    width: 12,
  }),
  timeSeries({
    title: 'Degraded pages by dependency',
    description: 'Pages served without a weak dependency, by the dependency that was left out.',
    queries: [{ expr: perDependency('gateway_degraded_total'), legend: '{{strategy}} · {{dependency}}' }],
    unit: UNITS.requestsPerSecond,
    width: 12,
  }),
];

const resilience = [
  timeSeries({
    title: 'Breaker drops',
    description:
      'Calls the adaptive-throttling breaker refused locally, per dependency: the gateway stops hammering a failing dependency.',
    queries: [
      { expr: perDependency('gateway_breaker_drops_total'), legend: '{{strategy}} · {{dependency}}' },
    ],
    unit: UNITS.requestsPerSecond,
    width: 8,
  }),
  timeSeries({
    title: 'Breaker drop probability',
    description:
      'Share of calls the breaker drops now: max(0, (requests − K·accepts) / (requests + 1)) over its rolling window. It falls back gradually after a fault ends.',
    queries: [
      {
        expr: `max by (strategy, dependency) (gateway_breaker_drop_probability{${BY_STRATEGY}, ${BY_DEPENDENCY}})`,
        legend: '{{strategy}} · {{dependency}}',
      },
    ],
    unit: UNITS.share,
    min: 0,
    max: 1,
    width: 8,
  }),
  stateTimeline({
    title: 'Breaker state',
    description: 'Per dependency: closed (every call goes through) or throttling (some are dropped).',
    queries: [
      {
        expr: `max by (strategy, dependency) (gateway_breaker_state{${BY_STRATEGY}, ${BY_DEPENDENCY}})`,
        legend: '{{strategy}} · {{dependency}}',
      },
    ],
    states: { 0: { text: 'closed', color: 'green' }, 1: { text: 'throttling', color: 'red' } },
    width: 8,
  }),
  timeSeries({
    title: 'Cache hits and stale serves',
    description:
      "Fresh cache hits that saved a call, and stale answers served because the dependency failed (named in the page's `stale`).",
    queries: [
      { expr: perDependency('gateway_cache_hits_total'), legend: 'hit · {{strategy}} · {{dependency}}' },
      {
        expr: perDependency('gateway_cache_stale_serves_total'),
        legend: 'stale · {{strategy}} · {{dependency}}',
      },
    ],
    unit: UNITS.requestsPerSecond,
    width: 8,
  }),
  timeSeries({
    title: 'Retries and retry budget exhausted',
    description:
      'Retries of temporary failures on another instance, and retries refused because the budget (about 10% extra calls) was spent.',
    queries: [
      { expr: perDependency('gateway_retries_total'), legend: 'retry · {{strategy}} · {{dependency}}' },
      {
        expr: perDependency('gateway_retry_budget_exhausted_total'),
        legend: 'budget spent · {{strategy}} · {{dependency}}',
      },
    ],
    unit: UNITS.requestsPerSecond,
    width: 8,
  }),
  timeSeries({
    title: 'Shed pages',
    description: 'Pages refused with 503 OVERLOADED because too many were in flight (resilient only).',
    queries: [
      {
        expr: `sum by (strategy) (rate(gateway_shed_total{${BY_STRATEGY}}[${RATE}]))`,
        legend: '{{strategy}}',
      },
    ],
    unit: UNITS.requestsPerSecond,
    width: 8,
  }),
  statPanel({
    title: 'Ready backend instances seen by each gateway',
    description:
      'Instances each gateway routes to now, per dependency (probed on /readyz). A killed instance drops out here until it is back.',
    queries: [
      {
        expr: `sum by (strategy, dependency) (gateway_upstream_ready{${BY_STRATEGY}, ${BY_DEPENDENCY}})`,
        legend: '{{strategy}} · {{dependency}}',
      },
    ],
    unit: UNITS.count,
    width: 24,
  }),
];

export function gatewayOverview(): Dashboard {
  return buildDashboard({
    uid: GATEWAY_OVERVIEW_UID,
    title: 'chaos-lab · gateway overview',
    description:
      'The naive, parallel and resilient gateways under the same load and the same faults; shaded regions are faults in force.',
    variables: [
      filterVariable('strategy', 'Strategy', STRATEGIES),
      filterVariable('dependency', 'Dependency', BACKENDS),
    ],
    annotations: experimentAnnotations(),
    sections: [
      { title: 'The video page', panels: pages },
      { title: 'Dependencies', panels: dependencies },
      { title: 'Resilience mechanisms (resilient gateway)', panels: resilience },
    ],
  });
}
