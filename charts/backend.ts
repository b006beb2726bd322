import { Size } from 'cdk8s';
import { Deployment, EnvValue, Service, Volume } from 'cdk8s-plus-27';
import { Construct } from 'constructs';
import { COMPONENTS, FAULT_PROXY_POD_PORTS, LABELS, PART_OF, SERVICE_ENV } from '../services/names.ts';
import type { BackendSpec } from '../services/topology.ts';
import { shareProcessNamespace } from './cdk8s-plus-workarounds.ts';
import { faultProxyContainer } from './fault-proxy.ts';
import { faultSidecarContainer } from './fault-sidecar.ts';
import {
  commonServiceEnv,
  type LabPodSettings,
  podAnnotations,
  TRUST_MODE_LABEL,
  tmpVolume,
} from './lab-pod.ts';
import { serviceContainer } from './service-container.ts';

export interface BackendProps extends LabPodSettings {
  readonly namespace: string;
  /** The backend's entry in services/topology.ts: name, port, replicas, strong or weak. */
  readonly spec: BackendSpec;
  readonly image: string;
  /**
   * Recovery of panics in background work (`WORKER_RECOVERY`).
   * @default true
   */
  readonly workerRecovery?: boolean;
  /**
   * Pods behind the Service.
   * @default spec.replicas (2)
   */
  readonly replicas?: number;
}

/**
 * One backend of the topology: a Deployment whose pods run the service, the fault proxy and the
 * fault sidecar, and a ClusterIP Service the gateways call it by.
 *
 * The Service keeps the backend's port but sends it to the proxy's data port, and the proxy
 * relays to the service on 127.0.0.1: every call of a gateway goes through the proxy, as on the
 * local lab. The kubelet's probes and Prometheus reach the service's own port on the pod's
 * address, past the proxy, so its faults never touch them.
 *
 * The pod's containers share one PID namespace: a `kill` fault is the sidecar's SIGKILL of the
 * service, a crash the kubelet restarts in the same pod (with PID 1 the pause process, the
 * service is not its namespace's init, which SIGKILL from inside could not end).
 */
export class Backend extends Construct {
  readonly spec: BackendSpec;
  /** The service's port, in its container and on its Service. */
  readonly port: number;
  /** The fault proxy's ports in every pod: the Service's target (`data`) and its admin API. */
  readonly proxyPorts = FAULT_PROXY_POD_PORTS;
  readonly deployment: Deployment;
  readonly service: Service;

  constructor(scope: Construct, id: string, props: BackendProps) {
    super(scope, id);
    const { spec } = props;
    this.spec = spec;
    this.port = spec.port;
    const workerRecovery = props.workerRecovery ?? true;
    const replicas = props.replicas ?? spec.replicas;

    const labels = {
      [LABELS.name]: spec.name,
      [LABELS.instance]: spec.name,
      [LABELS.component]: COMPONENTS.backend,
      [LABELS.partOf]: PART_OF,
      [LABELS.dependency]: spec.dependency,
    };
    const faultState = Volume.fromEmptyDir(this, 'fault-state-volume', 'fault-state', {
      sizeLimit: Size.mebibytes(1),
    });

    this.deployment = new Deployment(this, 'deployment', {
      metadata: { name: spec.name, namespace: props.namespace, labels },
      podMetadata: {
        labels: { ...labels, [TRUST_MODE_LABEL]: props.trustMode },
        annotations: podAnnotations(spec.port, props.secret),
      },
      replicas,
      containers: [
        serviceContainer({
          name: spec.name,
          image: props.image,
          service: spec.name,
          port: spec.port,
          env: {
            // Its own server certificate (SAN: the service's name, which the gateways call it by).
            ...commonServiceEnv(props, spec.name),
            [SERVICE_ENV.workerRecovery]: EnvValue.fromValue(workerRecovery ? 'on' : 'off'),
          },
          tmpVolume: tmpVolume(this),
        }),
        faultProxyContainer({
          image: props.image,
          upstreamPort: spec.port,
          secret: props.secret,
          logLevel: props.logLevel,
          tmpVolume: Volume.fromEmptyDir(this, 'proxy-tmp-volume', 'proxy-tmp', {
            sizeLimit: Size.mebibytes(64),
          }),
        }),
        faultSidecarContainer({ image: props.image, stateVolume: faultState }),
      ],
    });
    shareProcessNamespace(this.deployment);

    this.service = new Service(this, 'service', {
      metadata: { name: spec.name, namespace: props.namespace, labels },
      selector: this.deployment,
      ports: [{ name: 'http', port: spec.port, targetPort: this.proxyPorts.data }],
    });
  }

  /** Base URL the gateways call, by the Service's cluster DNS name within the namespace. */
  get url(): string {
    return `http://${this.service.name}:${this.service.port}`;
  }
}
