/**
 * Prometheus scrape configurations for both targets, designed with the dashboards' queries:
 * every series ends up with the same `service`, `instance` and (gateways) `strategy` labels
 * locally and on Kubernetes, so one dashboard serves both.
 *
 * Every lab process already labels its own metrics with `service` and `instance`
 * (services/lib/service-app.ts); `honor_labels` keeps them instead of renaming them
 * `exported_*`. The scrape configuration adds what a process does not know about itself: a
 * gateway's `strategy` for the metrics that do not carry it, and a fault proxy's `backend`.
 * It also sets `service`/`instance` on the target, so that `up` has them too.
 */

import type { LabLayout } from '../lab/local/layout.ts';
import {
  FAULT_PROXY_PORT_NAMES,
  FAULT_PROXY_SERVICE,
  GATEWAY_SERVICE,
  LABELS,
  PLATFORM_PATHS,
  SCRAPE_ANNOTATIONS,
} from '../services/names.ts';

/** What the dashboards' rate windows and annotation steps assume (the datasource's `timeInterval`). */
export const SCRAPE_INTERVAL = '5s';

export interface StaticTarget {
  readonly targets: readonly string[];
  readonly labels: Readonly<Record<string, string>>;
}

export interface ScrapeConfig {
  readonly job_name: string;
  readonly honor_labels: boolean;
  readonly metrics_path?: string;
  readonly static_configs?: readonly StaticTarget[];
  readonly kubernetes_sd_configs?: readonly {
    readonly role: 'pod';
    readonly namespaces: { readonly names: readonly string[] };
  }[];
  readonly relabel_configs?: readonly Readonly<Record<string, unknown>>[];
}

export interface PrometheusConfig {
  readonly global: { readonly scrape_interval: string; readonly evaluation_interval: string };
  readonly scrape_configs: readonly ScrapeConfig[];
}

const GLOBAL = { scrape_interval: SCRAPE_INTERVAL, evaluation_interval: SCRAPE_INTERVAL } as const;

function hostPort(url: string): string {
  return new URL(url).host;
}

/**
 * The local lab at `layout`'s ports: every gateway, backend instance and fault proxy (its
 * admin port serves `/metrics`). The supervisor's control API has no metrics.
 */
export function localScrapeConfig(layout: LabLayout): PrometheusConfig {
  const gateways = Object.values(layout.gateways);
  const backends = layout.instances.filter((instance) => instance.service !== GATEWAY_SERVICE);
  return {
    global: GLOBAL,
    scrape_configs: [
      {
        job_name: 'chaos-lab-gateways',
        honor_labels: true,
        static_configs: gateways.map((gateway) => ({
          targets: [hostPort(gateway.url)],
          labels: { service: GATEWAY_SERVICE, instance: gateway.id, strategy: gateway.strategy ?? '' },
        })),
      },
      {
        job_name: 'chaos-lab-backends',
        honor_labels: true,
        static_configs: backends.map((backend) => ({
          targets: [hostPort(backend.url)],
          labels: { service: backend.service, instance: backend.id },
        })),
      },
      {
        job_name: 'chaos-lab-fault-proxies',
        honor_labels: true,
        static_configs: layout.proxies.map((proxy) => ({
          targets: [hostPort(proxy.adminUrl)],
          labels: { service: FAULT_PROXY_SERVICE, instance: proxy.id, backend: proxy.service },
        })),
      },
    ],
  };
}

/**
 * What a lab pod carries for the Kubernetes scrape configuration to find and label it; the
 * cdk8s charts set these on every gateway and backend pod template (charts/lab-pod.ts) and on
 * the fault proxy of every backend pod (charts/fault-proxy.ts), both by the names of
 * services/names.ts.
 */
const KUBERNETES_SCRAPE_CONTRACT = {
  /** Annotation `"true"` on pods to scrape. */
  scrapeAnnotation: SCRAPE_ANNOTATIONS.scrape,
  /** Annotation naming the container port that serves the metrics. */
  portAnnotation: SCRAPE_ANNOTATIONS.port,
  /** Annotation naming the metrics path. @default `/metrics` when absent */
  pathAnnotation: SCRAPE_ANNOTATIONS.path,
  /** Pod label naming the service (`account`, …, `gateway`): the `service` label of `up`. */
  serviceLabel: LABELS.name,
  /** Pod label on gateway pods naming their strategy: the `strategy` label of every series. */
  strategyLabel: LABELS.strategy,
  /**
   * Name of the container port of a backend pod's fault proxy that serves its `/metrics`: a pod
   * has one scrape annotation, which names the service's port, so the proxies are found by this.
   */
  proxyAdminPortName: FAULT_PROXY_PORT_NAMES.admin,
} as const;

/** How Prometheus names a pod's label or annotation in service discovery (`__meta_kubernetes_pod_…`). */
export function podMetaLabel(kind: 'label' | 'annotation', name: string): string {
  return `__meta_kubernetes_pod_${kind}_${name.replace(/[^a-zA-Z0-9_]/g, '_')}`;
}

/**
 * The cluster: every annotated pod of the lab's namespace, and the fault proxy in every backend
 * pod, labelled as the local lab is — a proxy's series by `service="fault-proxy"` (its own) and
 * `backend` (the pod's `name` label), its `instance` the pod's name as the proxy itself says.
 */
export function kubernetesScrapeConfig(namespace: string): PrometheusConfig {
  const c = KUBERNETES_SCRAPE_CONTRACT;
  // Functions, not shared objects: YAML would write a shared object once and alias it.
  const discovery = () => [{ role: 'pod', namespaces: { names: [namespace] } }] as const;
  // Pending pods have no address yet; finished ones (a k6 Job) have nothing to serve.
  const running = () => ({
    source_labels: ['__meta_kubernetes_pod_phase'],
    regex: 'Running',
    action: 'keep',
  });
  const podInstance = () => ({
    source_labels: ['__meta_kubernetes_pod_name'],
    target_label: 'instance',
    action: 'replace',
  });
  return {
    global: GLOBAL,
    scrape_configs: [
      {
        job_name: 'chaos-lab-pods',
        honor_labels: true,
        kubernetes_sd_configs: discovery(),
        relabel_configs: [
          { source_labels: [podMetaLabel('annotation', c.scrapeAnnotation)], regex: 'true', action: 'keep' },
          running(),
          // Service discovery yields one target per declared container port (sidecars included);
          // pointing each at the annotated port makes them identical, and Prometheus keeps one.
          {
            source_labels: ['__address__', podMetaLabel('annotation', c.portAnnotation)],
            regex: '([^:]+)(?::\\d+)?;(\\d+)',
            replacement: '$1:$2',
            target_label: '__address__',
            action: 'replace',
          },
          {
            source_labels: [podMetaLabel('annotation', c.pathAnnotation)],
            regex: '(.+)',
            target_label: '__metrics_path__',
            action: 'replace',
          },
          {
            source_labels: [podMetaLabel('label', c.serviceLabel)],
            target_label: 'service',
            action: 'replace',
          },
          podInstance(),
          {
            source_labels: [podMetaLabel('label', c.strategyLabel)],
            regex: '(.+)',
            target_label: 'strategy',
            action: 'replace',
          },
        ],
      },
      {
        job_name: 'chaos-lab-fault-proxies',
        honor_labels: true,
        metrics_path: PLATFORM_PATHS.metrics,
        kubernetes_sd_configs: discovery(),
        relabel_configs: [
          // The one target of the pod whose address is the proxy's admin port.
          {
            source_labels: ['__meta_kubernetes_pod_container_port_name'],
            regex: c.proxyAdminPortName,
            action: 'keep',
          },
          running(),
          { target_label: 'service', replacement: FAULT_PROXY_SERVICE, action: 'replace' },
          podInstance(),
          {
            source_labels: [podMetaLabel('label', c.serviceLabel)],
            target_label: 'backend',
            action: 'replace',
          },
        ],
      },
    ],
  };
}
