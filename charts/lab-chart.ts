import path from 'node:path';
import { Chart, type ChartProps } from 'cdk8s';
import { Namespace } from 'cdk8s-plus-27';
import type { Construct } from 'constructs';
import { isTrustMode, TRUST_MODES, type TrustMode } from '../services/lib/trust.ts';
import { LAB_NAMESPACE, LABELS, PART_OF } from '../services/names.ts';
import { BACKENDS, topology } from '../services/topology.ts';
import { Backend } from './backend.ts';
import { Gateway } from './gateway.ts';
import { Grafana } from './grafana.ts';

import { LabSecret, type LabSecretValues } from './lab-secret.ts';
import { LabNetworkPolicies } from './network-policies.ts';
import { Prometheus } from './prometheus.ts';

export interface LabChartProps extends ChartProps {
  /**
   * The admin token, trust key and PKI put in the lab's Secret (see lab-secret.ts for where
   * `npm run synth` gets them). Never committed.
   */
  readonly secrets: LabSecretValues;
  /**
   * Namespace every object of the lab lives in.
   * @default 'chaos-lab'
   */
  readonly namespace?: string;
  /**
   * The one image every container runs (the Dockerfile at the repository's root), loaded into
   * kind with `kind load docker-image`.
   * @default 'chaos-lab:dev'
   */
  readonly image?: string;
  /**
   * Trust between gateways and backends (`TRUST_MODE`): `zero`, `half` (signed calls) or `full`
   * (mutual TLS). Every service process gets the trust key and its TLS material whatever the
   * mode, so that an experiment can switch it for a while.
   * @default 'half' (as `chaos-lab up`)
   */
  readonly trustMode?: TrustMode;
  /**
   * Recovery of panics in the backends' background work (`WORKER_RECOVERY`).
   * @default true
   */
  readonly workerRecovery?: boolean;
  /**
   * pino level of every service (`LOG_LEVEL`).
   * @default 'info'
   */
  readonly logLevel?: string;
  /**
   * NetworkPolicies: default-deny ingress, backends reachable only from the gateways, through
   * their fault proxies.
   * @default true
   */
  readonly networkPolicies?: boolean;
  /**
   * Prometheus and Grafana, with the scrape configuration, datasource and dashboards that
   * `npm run dashboards` writes under `dashboardsDir`.
   * @default true
   */
  readonly observability?: boolean;
  /**
   * Grafana, when `observability` is on. Off for a cluster that cannot get its image (the
   * project's own test cluster, where nothing can be pulled): Prometheus is deployed alone.
   * @default true
   */
  readonly grafana?: boolean;
  /**
   * Where those files are read from when the chart is built.
   * @default the repository's dashboards/ folder
   */
  readonly dashboardsDir?: string;
}

/** The image `up --target kind` builds and loads into kind. */
export const DEFAULT_LAB_IMAGE = 'chaos-lab:dev';

const DEFAULTS = {
  namespace: LAB_NAMESPACE,
  image: DEFAULT_LAB_IMAGE,
  trustMode: 'half',
  workerRecovery: true,
  logLevel: 'info',
  networkPolicies: true,
  observability: true,
  grafana: true,
  dashboardsDir: path.join(import.meta.dirname, '..', 'dashboards'),
} as const satisfies Partial<LabChartProps>;

/**
 * The lab on Kubernetes: the namespace, the Secret, the five backends (two pods each, with a
 * fault proxy in front of the service and a fault sidecar beside it), one gateway per strategy
 * reachable from the host, Prometheus and Grafana, and the NetworkPolicies.
 * Everything about the topology comes from services/topology.ts.
 */
export class LabChart extends Chart {
  readonly namespaceName: string;
  readonly secret: LabSecret;
  readonly backends: readonly Backend[];
  readonly gateways: readonly Gateway[];
  readonly networkPolicies?: LabNetworkPolicies;
  readonly prometheus?: Prometheus;
  readonly grafana?: Grafana;

  constructor(scope: Construct, id: string, props: LabChartProps) {
    // The chart-wide `namespace` prop would also stamp the cluster-scoped Namespace object
    // itself, which the API server rejects; namespaced objects set it explicitly.
    const { namespace: _ignored, secrets, ...chartProps } = props;
    super(scope, id, chartProps);
    const options = { ...DEFAULTS, ...definedOnly(props) };
    if (!isTrustMode(options.trustMode)) {
      throw new Error(
        `LabChart trustMode: ${JSON.stringify(options.trustMode)} is not a trust mode; use one of ${TRUST_MODES.join(', ')}`,
      );
    }
    this.namespaceName = options.namespace;
    const namespace = this.namespaceName;

    new Namespace(this, 'namespace', {
      metadata: { name: namespace, labels: { [LABELS.partOf]: PART_OF } },
    });
    this.secret = new LabSecret(this, 'secret', { namespace, values: secrets });

    const podSettings = { secret: this.secret, trustMode: options.trustMode, logLevel: options.logLevel };
    this.backends = BACKENDS.map(
      (name) =>
        new Backend(this, name, {
          ...podSettings,
          namespace,
          spec: topology.backends[name],
          image: options.image,
          workerRecovery: options.workerRecovery,
        }),
    );
    this.gateways = topology.gateway.strategies.map(
      (strategy) =>
        new Gateway(this, `gateway-${strategy}`, {
          ...podSettings,
          namespace,
          strategy,
          image: options.image,
          backends: this.backends,
        }),
    );
    if (options.observability) {
      this.prometheus = new Prometheus(this, 'prometheus', {
        namespace,
        configFile: path.join(options.dashboardsDir, 'prometheus', 'kubernetes.yml'),
      });
      if (options.grafana) {
        this.grafana = new Grafana(this, 'grafana', {
          namespace,
          prometheus: this.prometheus,
          secret: this.secret,
          dashboardsDir: options.dashboardsDir,
        });
      }
    }
    if (options.networkPolicies) {
      this.networkPolicies = new LabNetworkPolicies(this, 'network-policies', {
        namespace,
        backends: this.backends,
        gateways: this.gateways,
        ...(this.prometheus ? { prometheus: this.prometheus } : {}),
        ...(this.grafana ? { grafana: this.grafana } : {}),
      });
    }
  }
}

/** `{a: undefined}` must not override a default. */
function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
