import { Deployment, EnvValue, Service, ServiceType } from 'cdk8s-plus-27';
import { Construct } from 'constructs';
import {
  COMPONENTS,
  GATEWAY_SERVICE,
  LABELS,
  PART_OF,
  SERVICE_ENV,
  upstreamEnvName,
} from '../services/names.ts';
import { type Strategy, topology } from '../services/topology.ts';
import type { Backend } from './backend.ts';
import {
  commonServiceEnv,
  type LabPodSettings,
  podAnnotations,
  TRUST_MODE_LABEL,
  tmpVolume,
} from './lab-pod.ts';
import { serviceContainer } from './service-container.ts';

/**
 * NodePorts of the gateways, in the order of `topology.gateway.strategies`: naive 30080,
 * parallel 30081, resilient 30082. kind/cluster.yaml maps each to the host port the local lab
 * uses for the same gateway (18080–18082).
 */
export const GATEWAY_NODE_PORT_BASE = 30_080;

/** The name of a gateway's Deployment and Service: `gateway-naive`. */
export function gatewayName(strategy: Strategy): string {
  return `${GATEWAY_SERVICE}-${strategy}`;
}

export function gatewayNodePort(strategy: Strategy): number {
  return GATEWAY_NODE_PORT_BASE + topology.gateway.strategies.indexOf(strategy);
}

export interface GatewayProps extends LabPodSettings {
  readonly namespace: string;
  readonly strategy: Strategy;
  readonly image: string;
  /** The backends it aggregates; each is called through its Service. */
  readonly backends: readonly Backend[];
  /**
   * Port on every node (kind maps it to the host).
   * @default gatewayNodePort(strategy)
   */
  readonly nodePort?: number;
  /**
   * Pods behind the Service.
   * @default 1 (one gateway per strategy, as in the local lab)
   */
  readonly replicas?: number;
}

/** One gateway strategy: a Deployment and a NodePort Service reachable from the host. */
export class Gateway extends Construct {
  readonly strategy: Strategy;
  readonly deployment: Deployment;
  readonly service: Service;
  readonly nodePort: number;

  constructor(scope: Construct, id: string, props: GatewayProps) {
    super(scope, id);
    this.strategy = props.strategy;
    this.nodePort = props.nodePort ?? gatewayNodePort(props.strategy);
    const port = topology.gateway.port;
    const name = gatewayName(props.strategy);
    const labels = {
      [LABELS.name]: GATEWAY_SERVICE,
      [LABELS.instance]: name,
      [LABELS.component]: COMPONENTS.gateway,
      [LABELS.partOf]: PART_OF,
      [LABELS.strategy]: props.strategy,
    };
    // A Service URL per backend: kube-proxy spreads the gateway's connections over the
    // backend's ready pods, where the local lab lists every instance.
    const upstreams = Object.fromEntries(
      props.backends.map((backend) => [upstreamEnvName(backend.spec.name), EnvValue.fromValue(backend.url)]),
    );

    this.deployment = new Deployment(this, 'deployment', {
      metadata: { name, namespace: props.namespace, labels },
      podMetadata: {
        labels: { ...labels, [TRUST_MODE_LABEL]: props.trustMode },
        annotations: podAnnotations(port, props.secret),
      },
      replicas: props.replicas ?? 1,
      containers: [
        serviceContainer({
          name: GATEWAY_SERVICE,
          image: props.image,
          service: GATEWAY_SERVICE,
          port,
          env: {
            // The gateways' one client certificate, whose name the backends serve in full trust.
            ...commonServiceEnv(props, GATEWAY_SERVICE),
            [SERVICE_ENV.strategy]: EnvValue.fromValue(props.strategy),
            ...upstreams,
          },
          tmpVolume: tmpVolume(this),
        }),
      ],
    });

    this.service = new Service(this, 'service', {
      metadata: { name, namespace: props.namespace, labels },
      type: ServiceType.NODE_PORT,
      selector: this.deployment,
      ports: [{ name: 'http', port, targetPort: port, nodePort: this.nodePort }],
    });
  }
}
