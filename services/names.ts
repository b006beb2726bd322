/**
 * The names every layer has to spell alike: the labels on the lab's Kubernetes objects, the
 * environment each lab process reads, container names, the platform's paths and ports, and each
 * gateway's colour. The services read their configuration by these names, the charts and the
 * local lab set it, the Kubernetes target and the dashboards select and query by them, the
 * report and the dashboards paint with them. services/topology.ts is the lab's shape (which
 * services, how they depend on each other, their ports); this is the vocabulary around it.
 *
 * It lives under services/ because the container image copies only services/, and it imports
 * nothing but the topology, so any layer may read it.
 */

import type { BackendName, Strategy } from './topology.ts';

/** The `part-of` label of every object of the lab: how the Kubernetes target finds all of them. */
export const PART_OF = 'chaos-lab';

/** The namespace the lab is deployed in unless told otherwise (the chart, `up --target kind`, the scrape configuration). */
export const LAB_NAMESPACE = 'chaos-lab';

/** Label keys the lab sets on its Kubernetes objects; the Kubernetes target and Prometheus select pods by them. */
export const LABELS = {
  name: 'app.kubernetes.io/name',
  instance: 'app.kubernetes.io/instance',
  component: 'app.kubernetes.io/component',
  partOf: 'app.kubernetes.io/part-of',
  dependency: 'chaos-lab.dev/dependency',
  strategy: 'chaos-lab.dev/strategy',
} as const;

/** Values of the `component` label. */
export const COMPONENTS = {
  backend: 'backend',
  gateway: 'gateway',
  observability: 'observability',
  load: 'load',
} as const;

/**
 * The gateway's service name: the first argument of services/main.ts, its `service` metric
 * label, its pods' `name` label and its container's name (a backend's are its topology name).
 */
export const GATEWAY_SERVICE = 'gateway';

/** The fault proxy's service name, in its metrics' `service` label and the local lab's status. */
export const FAULT_PROXY_SERVICE = 'fault-proxy';

/** The container of every backend pod that the Kubernetes target execs `fault-sidecar …` in. */
export const FAULT_SIDECAR_CONTAINER = 'fault-sidecar';

/**
 * The container of every backend pod that runs the fault proxy (services/fault-proxy/main.ts,
 * from the lab's one image) in front of the backend's own container (charts/fault-proxy.ts).
 */
export const FAULT_PROXY_CONTAINER = 'fault-proxy';

/**
 * The fault proxy's ports inside a backend pod. A pod has a network namespace of its own, so
 * they are the same in every pod, and clear of every port of the topology. The backend's Service
 * keeps the backend's port (the gateways call `http://<backend>:<port>`) and sends it to `data`,
 * so every call goes through the proxy; the proxy calls the backend's container on 127.0.0.1.
 * `admin` serves the proxy's `/__chaos` API (the Kubernetes target port-forwards to it),
 * `/healthz`, `/readyz` (the kubelet's probes) and `/metrics` (Prometheus).
 */
export const FAULT_PROXY_POD_PORTS = { data: 15_001, admin: 15_000 } as const;

/**
 * The names of those container ports. Prometheus' Kubernetes discovery finds the proxies by
 * `admin`'s (dashboards/scrape-configs.ts); a port name is at most 15 characters.
 */
export const FAULT_PROXY_PORT_NAMES = { data: 'proxy', admin: 'proxy-admin' } as const;

/**
 * The environment every service process reads (services/main.ts), set by the charts
 * (charts/lab-pod.ts and the gateway and backend charts) and by the local lab
 * (lab/local/instances.ts).
 */
export const SERVICE_ENV = {
  /** The service, when services/main.ts is given no argument. */
  service: 'SERVICE',
  instanceId: 'INSTANCE_ID',
  port: 'PORT',
  host: 'HOST',
  logLevel: 'LOG_LEVEL',
  /** Bearer token of the `/__chaos` admin API; also the key of the lab's Secret that holds it. */
  adminToken: 'CHAOS_ADMIN_TOKEN',
  trustMode: 'TRUST_MODE',
  /** HMAC key of service-to-service calls; also the key of the lab's Secret that holds it. */
  trustKey: 'TRUST_KEY',
  /** PEM of the lab's CA, which every service trusts in full trust (mutual TLS). */
  tlsCa: 'TLS_CA',
  /** PEM of this service's certificate, signed by the lab's CA: a backend's server certificate, the gateways' client one. */
  tlsCert: 'TLS_CERT',
  /** PEM of the private key of TLS_CERT. */
  tlsKey: 'TLS_KEY',
  /** Backends: panic recovery in background work, `on` or `off`. */
  workerRecovery: 'WORKER_RECOVERY',
  /** Gateways: naive, parallel or resilient. */
  strategy: 'STRATEGY',
  /** Gateways: the page budget when the caller sends no `x-request-timeout`. */
  gatewayBudgetMs: 'GATEWAY_BUDGET_MS',
  /** Resilient gateway: pages in flight before shedding. */
  gatewayMaxConcurrency: 'GATEWAY_MAX_CONCURRENCY',
  /** Gateways: connections accepted per turn of the event loop (descriptors of the listening socket). */
  gatewayAcceptors: 'GATEWAY_ACCEPTORS',
  /** Resilient gateway: how late its event loop may run, sample after sample, before shedding; 0 turns it off. */
  gatewayLoopDelayTargetMs: 'GATEWAY_LOOP_DELAY_TARGET_MS',
  /** Resilient gateway: how long the loop must stay that late before shedding. */
  gatewayLoopDelayIntervalMs: 'GATEWAY_LOOP_DELAY_INTERVAL_MS',
  /** Resilient gateway: pages in flight below which a late loop sheds nothing. */
  gatewayLoopDelayMinInFlight: 'GATEWAY_LOOP_DELAY_MIN_INFLIGHT',
  /** Resilient gateway: after a page shed for a late loop, how long pages are still shed while as many are in flight. */
  gatewayLoopDelayHoldMs: 'GATEWAY_LOOP_DELAY_HOLD_MS',
  /** Gateways: how often each ready upstream instance's `/readyz` is probed (one not ready: every 250 ms at most). */
  upstreamProbeMs: 'UPSTREAM_PROBE_MS',
} as const;

/** Gateways: the comma-separated base URLs of a backend's instances, `UPSTREAM_COIN`. */
export function upstreamEnvName(backend: BackendName): string {
  return `UPSTREAM_${backend.toUpperCase()}`;
}

/**
 * The environment of a fault proxy (services/fault-proxy/config.ts), set by charts/fault-proxy.ts,
 * and of the local lab's host of every proxy (services/fault-proxy/host.ts); they also read
 * SERVICE_ENV's `adminToken` and `logLevel`, and a lone proxy its `instanceId`.
 */
export const FAULT_PROXY_ENV = {
  listenHost: 'LISTEN_HOST',
  listenPort: 'LISTEN_PORT',
  /** host:port of the instance it fronts. */
  upstream: 'UPSTREAM',
  adminPort: 'ADMIN_PORT',
  /**
   * The local lab's one process of every proxy (services/fault-proxy/host-main.ts) reads this in
   * place of the four above: a JSON array of `{id, listenHost?, listenPort, adminPort, upstream}`.
   */
  proxies: 'FAULT_PROXIES',
} as const;

/** Paths every lab process serves for the platform: probes, scraping, the fault agent. */
export const PLATFORM_PATHS = {
  health: '/healthz',
  ready: '/readyz',
  metrics: '/metrics',
  admin: '/__chaos',
} as const;

/**
 * The histogram every lab process times its HTTP requests in (by method, route and status), as
 * the service app registers it and the lab's readers scrape it (`_bucket`, `_count`).
 */
export const REQUEST_DURATION_METRIC = 'http_server_request_duration_seconds';

/** Pod annotations Prometheus' Kubernetes discovery reads (dashboards/scrape-configs.ts). */
export const SCRAPE_ANNOTATIONS = {
  /** `"true"` on pods to scrape. */
  scrape: 'prometheus.io/scrape',
  /** The container port that serves the metrics. */
  port: 'prometheus.io/port',
  /** The metrics path. @default `/metrics` when absent */
  path: 'prometheus.io/path',
} as const;

/** Prometheus in the cluster: its Service, which Grafana's datasource calls. */
export const PROMETHEUS = { service: 'prometheus', port: 9_090 } as const;

/**
 * Okabe–Ito colours, told apart with every common colour-vision deficiency; fixed per strategy
 * so the same gateway has the same colour in every chart of the report, the live page and the
 * Grafana dashboards.
 */
export const GATEWAY_COLORS = {
  naive: '#D55E00',
  parallel: '#0072B2',
  resilient: '#009E73',
} as const satisfies Readonly<Record<Strategy, string>>;
