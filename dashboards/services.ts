/**
 * The services view: RED (rate, errors, duration) per backend, what keeps a process alive or
 * kills it (restarts, recovered panics), what the trust check refuses, and the faults being
 * injected — by the fault agents inside the processes and by the fault proxies in front of them.
 *
 * Labels: `service` and `instance` are every process's own (services/lib/service-app.ts, kept
 * by `honor_labels` in the scrape configuration); `backend` is set by the scrape configuration
 * on each fault proxy, naming the backend it fronts, on both targets (dashboards/scrape-configs.ts).
 */

import type { Dashboard } from '@grafana/grafana-foundation-sdk/dashboard';
import { FAULT_PROXY_SERVICE, PLATFORM_PATHS } from '../services/names.ts';
import { BACKENDS } from '../services/topology.ts';
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

export const SERVICES_UID = 'chaos-lab-services';

const BY_SERVICE = 'service=~"$service"';
/** Probes, scrapes and the admin API are not the service's work: RED leaves them out. */
const NOT_INFRA = `route!~"${Object.values(PLATFORM_PATHS)
  .map((path) => `${path}(/.*)?`)
  .join('|')}"`;
const REQUESTS = `http_server_request_duration_seconds_count{${BY_SERVICE}, ${NOT_INFRA}}`;
const REQUEST_LATENCY = `http_server_request_duration_seconds_bucket{${BY_SERVICE}, ${NOT_INFRA}}`;
/** The fault proxies in front of the chosen backends (local processes, or sidecars in the backend pods). */
const PROXIES = `service="${FAULT_PROXY_SERVICE}", backend=~"$service"`;

function requestQuantile(q: number): string {
  return `histogram_quantile(${q}, sum by (service, le) (rate(${REQUEST_LATENCY}[${RATE}])))`;
}

const red = [
  timeSeries({
    title: 'Requests per second',
    description: 'Requests each backend served, from every gateway together (probes and scrapes left out).',
    queries: [{ expr: `sum by (service) (rate(${REQUESTS}[${RATE}]))`, legend: '{{service}}' }],
    unit: UNITS.requestsPerSecond,
    width: 8,
  }),
  timeSeries({
    title: 'Error rate (5xx)',
    description:
      'Share of requests answered 5xx: an injected http-error shows here at about its configured percentage.',
    queries: [
      {
        expr: shareOf(
          `sum by (service) (rate(http_server_request_duration_seconds_count{${BY_SERVICE}, ${NOT_INFRA}, status=~"5.."}[${RATE}]))`,
          `sum by (service) (rate(${REQUESTS}[${RATE}]))`,
        ),
        legend: '{{service}}',
      },
    ],
    unit: UNITS.share,
    min: 0,
    max: 1,
    width: 8,
  }),
  timeSeries({
    title: 'Errors by reason',
    description:
      'Requests that ended in the error middleware, by reason code (INJECTED_FAULT, VIDEO_NOT_FOUND, TRUST_MISSING, …).',
    queries: [
      {
        expr: `sum by (service, reason) (rate(http_server_errors_total{${BY_SERVICE}}[${RATE}]))`,
        legend: '{{service}} · {{reason}}',
      },
    ],
    unit: UNITS.requestsPerSecond,
    width: 8,
  }),
  timeSeries({
    title: 'Latency p50',
    description:
      'Median time to answer, per backend. An http-delay fault adds its delay here; a network fault does not (it acts outside the process).',
    queries: [{ expr: requestQuantile(0.5), legend: '{{service}}' }],
    unit: UNITS.seconds,
    width: 8,
  }),
  timeSeries({
    title: 'Latency p99',
    description: '99th percentile of the time to answer, per backend.',
    queries: [{ expr: requestQuantile(0.99), legend: '{{service}}' }],
    unit: UNITS.seconds,
    width: 8,
  }),
  timeSeries({
    title: 'Requests per instance',
    description:
      'How the gateways spread calls over the instances; a killed instance drops to zero until its restart.',
    queries: [{ expr: `sum by (instance) (rate(${REQUESTS}[${RATE}]))`, legend: '{{instance}}' }],
    unit: UNITS.requestsPerSecond,
    width: 8,
  }),
];

const health = [
  statPanel({
    title: 'Restarts in the time range',
    description:
      'Times an instance started again under the same name (the supervisor, or the kubelet, restarted it): changes of its process start time.',
    queries: [
      {
        expr: `sum by (service) (changes(process_start_time_seconds{${BY_SERVICE}}[$__range]))`,
        legend: '{{service}}',
      },
    ],
    unit: UNITS.count,
    width: 12,
  }),
  statPanel({
    title: 'Recovered panics in the time range',
    description:
      'Panics in background work that the go() wrapper recovered instead of letting the process die.',
    queries: [
      {
        expr: `sum by (service) (increase(worker_panics_recovered_total{${BY_SERVICE}}[$__range]))`,
        legend: '{{service}}',
      },
    ],
    unit: UNITS.count,
    width: 12,
  }),
  timeSeries({
    title: 'Instances up',
    description:
      'Instances Prometheus could scrape, per service: a crashed one is missing until it is restarted.',
    queries: [{ expr: `sum by (service) (up{${BY_SERVICE}})`, legend: '{{service}}' }],
    unit: UNITS.count,
    min: 0,
    width: 8,
  }),
  timeSeries({
    title: 'Recovered panics',
    description: 'Recovered panics per second, by background task.',
    queries: [
      {
        expr: `sum by (service, task) (rate(worker_panics_recovered_total{${BY_SERVICE}}[${RATE}]))`,
        legend: '{{service}} · {{task}}',
      },
    ],
    unit: UNITS.eventsPerSecond,
    width: 8,
  }),
  stateTimeline({
    title: 'Panic recovery',
    description:
      'Whether background work recovers from panics (on) or kills the process (off), per service; `fault recovery off` switches it for a lease.',
    queries: [
      {
        expr: `min by (service) (chaos_worker_recovery_enabled{${BY_SERVICE}})`,
        legend: '{{service}}',
      },
    ],
    states: { 0: { text: 'off', color: 'orange' }, 1: { text: 'on', color: 'green' } },
    width: 8,
  }),
  timeSeries({
    title: 'Refused calls (trust)',
    description:
      'Calls refused by half trust, by reason: missing or expired signature (401), forged (403). Zero when the gateways sign their calls.',
    queries: [
      {
        expr: `sum by (service, reason) (rate(trust_rejected_total{${BY_SERVICE}}[${RATE}]))`,
        legend: '{{service}} · {{reason}}',
      },
    ],
    unit: UNITS.requestsPerSecond,
    width: 24,
  }),
];

const faults = [
  timeSeries({
    title: 'Active faults',
    description:
      'Fault leases in force, by kind: in the fault agents (http-delay, http-error, worker-panic) and in the fault proxies (latency, loss, reset).',
    queries: [
      {
        expr: `sum by (service, kind) (chaos_faults_active{${BY_SERVICE}})`,
        legend: 'agent · {{service}} · {{kind}}',
      },
      {
        expr: `sum by (backend, kind) (chaos_faults_active{${PROXIES}})`,
        legend: 'proxy · {{backend}} · {{kind}}',
      },
    ],
    unit: UNITS.count,
    min: 0,
    width: 12,
  }),
  timeSeries({
    title: 'Faults injected',
    description:
      'Times a fault actually hit: a request or background task (agents), a chunk or connection (proxies). Zero while a fault is active means it is not biting.',
    queries: [
      {
        expr: `sum by (service, kind) (rate(chaos_injected_total{${BY_SERVICE}}[${RATE}]))`,
        legend: 'agent · {{service}} · {{kind}}',
      },
      {
        expr: `sum by (backend, kind) (rate(chaos_injected_total{${PROXIES}}[${RATE}]))`,
        legend: 'proxy · {{backend}} · {{kind}}',
      },
    ],
    unit: UNITS.eventsPerSecond,
    width: 12,
  }),
];

const proxies = [
  timeSeries({
    title: 'Delay added by the proxies (p99)',
    description:
      'Delay the proxies added, by fault kind: latency per chunk held, loss per retransmission timeout emulated. Compare with the configured fault.',
    queries: [
      {
        expr: `histogram_quantile(0.99, sum by (backend, kind, le) (rate(proxy_added_delay_seconds_bucket{${PROXIES}}[${RATE}])))`,
        legend: '{{backend}} · {{kind}}',
      },
    ],
    unit: UNITS.seconds,
    width: 8,
  }),
  timeSeries({
    title: 'Emulated losses',
    description: 'Lost segments and lost connection attempts (SYN) the loss fault emulated.',
    queries: [
      {
        expr: `sum by (backend, what) (rate(proxy_losses_total{${PROXIES}}[${RATE}]))`,
        legend: '{{backend}} · {{what}}',
      },
    ],
    unit: UNITS.eventsPerSecond,
    width: 8,
  }),
  timeSeries({
    title: 'Resets and upstream failures',
    description:
      'Connections reset by the reset fault, and connections the proxy could not open to its instance (refused while it restarts).',
    queries: [
      {
        expr: `sum by (backend) (rate(proxy_resets_total{${PROXIES}}[${RATE}]))`,
        legend: 'reset · {{backend}}',
      },
      {
        expr: `sum by (backend) (rate(proxy_upstream_failures_total{${PROXIES}}[${RATE}]))`,
        legend: 'upstream failed · {{backend}}',
      },
    ],
    unit: UNITS.eventsPerSecond,
    width: 8,
  }),
  timeSeries({
    title: 'New connections',
    description:
      'Connections per second the gateways opened through the proxies (pooled connections make this low).',
    queries: [
      {
        expr: `sum by (backend) (rate(proxy_connections_total{${PROXIES}}[${RATE}]))`,
        legend: '{{backend}}',
      },
    ],
    unit: UNITS.eventsPerSecond,
    width: 8,
  }),
  timeSeries({
    title: 'Open connections',
    description: 'Connections open through the proxies now.',
    queries: [{ expr: `sum by (backend) (proxy_connections_active{${PROXIES}})`, legend: '{{backend}}' }],
    unit: UNITS.count,
    min: 0,
    width: 8,
  }),
  timeSeries({
    title: 'Bytes relayed',
    description:
      'Bytes per second through the proxies: upstream is gateway to backend, downstream is backend to gateway.',
    queries: [
      {
        expr: `sum by (backend, direction) (rate(proxy_bytes_total{${PROXIES}}[${RATE}]))`,
        legend: '{{backend}} · {{direction}}',
      },
    ],
    unit: UNITS.bytesPerSecond,
    width: 8,
  }),
];

export function servicesDashboard(): Dashboard {
  return buildDashboard({
    uid: SERVICES_UID,
    title: 'chaos-lab · services',
    description:
      'The five backends: RED per service, restarts, recovered panics, refused calls and the faults injected into them; shaded regions are faults in force.',
    variables: [filterVariable('service', 'Service', BACKENDS)],
    annotations: experimentAnnotations(),
    sections: [
      { title: 'Rate, errors, duration', panels: red },
      { title: 'Restarts, panics, trust', panels: health },
      { title: 'Faults', panels: faults },
      {
        title: 'Fault proxies (local lab only; on Kubernetes, network faults are tc netem in the pod)',
        panels: proxies,
      },
    ],
  });
}
