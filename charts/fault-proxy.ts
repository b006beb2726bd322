/**
 * The fault proxy of every backend pod: the local lab's proxy (services/fault-proxy/), the same
 * code from the same image, in front of the backend's own container. The backend's Service sends
 * the gateways' calls to its data port, and it relays them to the backend on 127.0.0.1, so
 * latency, loss and reset act on every call and on nothing else: the kubelet's probes and
 * Prometheus reach the backend's port directly. The Kubernetes target reaches its admin API
 * (`/__chaos`, the same token as the services') through a port-forward.
 */
import { Size } from 'cdk8s';
import { type ContainerProps, Cpu, EnvFieldPaths, EnvValue, type Volume } from 'cdk8s-plus-27';
import {
  FAULT_PROXY_CONTAINER,
  FAULT_PROXY_ENV,
  FAULT_PROXY_POD_PORTS,
  FAULT_PROXY_PORT_NAMES,
  SERVICE_ENV,
} from '../services/names.ts';
import { LAB_IMAGE_PULL_POLICY } from './cdk8s-plus-workarounds.ts';
import { ADMIN_TOKEN_KEY, type LabSecret } from './lab-secret.ts';
import { platformProbes, SERVICE_SECURITY_CONTEXT, WRITABLE_TMP } from './service-container.ts';

/**
 * The proxy's entry point in the image: compiled JavaScript, as the services' (the Dockerfile
 * puts the lab's build, lab/build/lab-build.ts, in its working directory).
 */
export const FAULT_PROXY_ENTRY = 'services/fault-proxy/main.js';

/**
 * A node process (express, pino, prom-client) idles at tens of MiB, more than the fault
 * sidecar's shell and less than a service, which also holds its data set; not measured. The
 * request is what the scheduler reserves, and it is set below that on purpose: there is one
 * proxy per backend pod, ten in all, and at 16 MiB they add 160 MiB, so the lab (about 1.4 GiB
 * requested, `doctor`'s resources check sums it) still fits a 2 GiB VM beside kube-system, as
 * SERVICE_RESOURCES explains. What the proxies use beyond it comes from the node's slack (and
 * puts their pods among the first the kubelet evicts under memory pressure). The limit leaves room for
 * what a latency fault holds back.
 * No CPU limit, as for the services: throttling the relay would add latency the lab would then
 * report as the fault's.
 */
export const FAULT_PROXY_RESOURCES = {
  cpu: { request: Cpu.millis(10) },
  memory: { request: Size.mebibytes(16), limit: Size.mebibytes(256) },
} as const;

export interface FaultProxyOptions {
  readonly image: string;
  /** The port of the backend's own container, which the proxy relays to on 127.0.0.1. */
  readonly upstreamPort: number;
  /** Holds the admin API's token (CHAOS_ADMIN_TOKEN), the same as the services'. */
  readonly secret: LabSecret;
  readonly logLevel: string;
  /** emptyDir mounted at {@link WRITABLE_TMP}: the proxy's own, not shared with the service's. */
  readonly tmpVolume: Volume;
}

export function faultProxyContainer(options: FaultProxyOptions): ContainerProps {
  const { data, admin } = FAULT_PROXY_POD_PORTS;
  return {
    name: FAULT_PROXY_CONTAINER,
    image: options.image,
    imagePullPolicy: LAB_IMAGE_PULL_POLICY,
    // The image's entrypoint runs services/main.js; the proxy is another entry point of it.
    command: ['node', FAULT_PROXY_ENTRY],
    // Declared through `ports`, not `portNumber`, as the services' are (see containerPorts).
    ports: [
      { number: data, name: FAULT_PROXY_PORT_NAMES.data },
      { number: admin, name: FAULT_PROXY_PORT_NAMES.admin },
    ],
    envVariables: {
      // The pod's address, not loopback: the Service's traffic arrives on it, and the kubelet's
      // probes and Prometheus reach the admin port there.
      [FAULT_PROXY_ENV.listenHost]: EnvValue.fromValue('0.0.0.0'),
      [FAULT_PROXY_ENV.listenPort]: EnvValue.fromValue(String(data)),
      [FAULT_PROXY_ENV.adminPort]: EnvValue.fromValue(String(admin)),
      [FAULT_PROXY_ENV.upstream]: EnvValue.fromValue(`127.0.0.1:${options.upstreamPort}`),
      // The pod's name, as the backend's own container has it: `kubectl get pods` names both.
      [SERVICE_ENV.instanceId]: EnvValue.fromFieldRef(EnvFieldPaths.POD_NAME),
      [SERVICE_ENV.adminToken]: options.secret.env(ADMIN_TOKEN_KEY),
      [SERVICE_ENV.logLevel]: EnvValue.fromValue(options.logLevel),
    },
    // On the admin port, which serves the same platform paths as every service: a fault on the
    // data port never fails a probe.
    ...platformProbes(admin),
    resources: FAULT_PROXY_RESOURCES,
    securityContext: SERVICE_SECURITY_CONTEXT,
    volumeMounts: [{ path: WRITABLE_TMP, volume: options.tmpVolume }],
  };
}
