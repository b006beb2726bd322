/**
 * Experiment annotations: shaded regions on every panel of both dashboards while a fault is in
 * force, read from Prometheus, so they show whoever injected the fault (`chaos-lab run`, `fault
 * add` by hand, a k6 run alongside) and need nothing written to Grafana.
 *
 * Grafana turns each series of an annotation query into regions where its value is above zero,
 * merging points no more than a step apart; hence every query below yields a count, never 0/1
 * flags compared with `==`.
 */

import { AnnotationQueryBuilder } from '@grafana/grafana-foundation-sdk/dashboard';
import { FAULT_PROXY_SERVICE } from '../services/names.ts';
import { DATASOURCE } from './panels.ts';

/**
 * Finer than any phase of an experiment (10 s and up), coarse enough for Prometheus's
 * 11,000-points-per-series limit over a day. Equal to the scrape interval: a finer step would
 * only repeat samples.
 */
const STEP = '5s';

interface AnnotationSpec {
  readonly name: string;
  readonly expr: string;
  readonly title: string;
  readonly text: string;
  /** Labels whose values become the annotation's tags (filterable in Grafana). */
  readonly tagKeys: readonly string[];
  readonly color: string;
}

function annotation(spec: AnnotationSpec): AnnotationQueryBuilder {
  return new AnnotationQueryBuilder()
    .name(spec.name)
    .datasource(DATASOURCE)
    .enable(true)
    .iconColor(spec.color)
    .expr(spec.expr)
    .step(STEP)
    .titleFormat(spec.title)
    .textFormat(spec.text)
    .tagKeys(spec.tagKeys.join(','));
}

export const EXPERIMENT_ANNOTATIONS: readonly AnnotationSpec[] = [
  {
    name: 'Faults in services',
    // The fault agent inside every process: http-delay, http-error, worker-panic.
    expr: `sum by (service, kind) (chaos_faults_active{service!="${FAULT_PROXY_SERVICE}"}) > 0`,
    title: '{{kind}} on {{service}}',
    text: 'fault agent: {{kind}} in force on {{service}}',
    tagKeys: ['service', 'kind'],
    color: 'red',
  },
  {
    name: 'Network faults',
    // The fault proxies in front of every backend instance (a process of the local lab, a
    // sidecar of the backend pod on Kubernetes): latency, loss, reset.
    expr: `sum by (backend, kind) (chaos_faults_active{service="${FAULT_PROXY_SERVICE}"}) > 0`,
    title: '{{kind}} in front of {{backend}}',
    text: 'fault proxy: {{kind}} in force in front of {{backend}}',
    tagKeys: ['backend', 'kind'],
    color: 'purple',
  },
  {
    name: 'Panic recovery off',
    // 1 while background work runs unprotected (a settings override, or the process's default).
    expr: '(1 - min by (service) (chaos_worker_recovery_enabled)) > 0',
    title: 'recovery off on {{service}}',
    text: 'a panic in background work kills {{service}} instead of being recovered',
    tagKeys: ['service'],
    color: 'orange',
  },
  {
    name: 'Restarts',
    // A new start time is a new process under the same instance name: the supervisor (or the
    // kubelet) restarted it. The region covers the minute after the restart.
    expr: `sum by (service, instance) (changes(process_start_time_seconds{service!="${FAULT_PROXY_SERVICE}"}[1m])) > 0`,
    title: '{{instance}} restarted',
    text: '{{instance}} ({{service}}) started again within the minute before',
    tagKeys: ['service', 'instance'],
    color: 'yellow',
  },
];

export function experimentAnnotations(): AnnotationQueryBuilder[] {
  return EXPERIMENT_ANNOTATIONS.map(annotation);
}
