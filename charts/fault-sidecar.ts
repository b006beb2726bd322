/**
 * The fault sidecar of every backend pod: the same image, running
 * services/fault-sidecar/fault-sidecar.sh as its main process (the netem lease keeper). It
 * shares the pod's network namespace, so `tc qdisc … dev eth0` here shapes the backend's
 * traffic, and its PID namespace (the backend's Deployment shares it), so `kill-main` here
 * crashes the backend's process; the runner execs `fault-sidecar apply|renew|clear|status|kill-main`
 * in it.
 */
import { Size } from 'cdk8s';
import { Capability, type ContainerProps, Cpu, EnvFieldPaths, EnvValue, type Volume } from 'cdk8s-plus-27';
import { FAULT_SIDECAR_CONTAINER } from '../services/names.ts';
import { kubernetesCapability, LAB_IMAGE_PULL_POLICY } from './cdk8s-plus-workarounds.ts';

// Where lab/kube/kube-target.ts still imports it from; the name lives in services/names.ts.
export { FAULT_SIDECAR_CONTAINER } from '../services/names.ts';

/** Where the lease lives: an emptyDir, so a restarted keeper still honours it. */
export const FAULT_STATE_DIR = '/run/fault-sidecar';

/** The pod's interface that netem is applied to. */
export const FAULT_DEVICE = 'eth0';

export interface FaultSidecarOptions {
  readonly image: string;
  /** emptyDir mounted at {@link FAULT_STATE_DIR}. */
  readonly stateVolume: Volume;
}

export function faultSidecarContainer(options: FaultSidecarOptions): ContainerProps {
  return {
    name: FAULT_SIDECAR_CONTAINER,
    image: options.image,
    imagePullPolicy: LAB_IMAGE_PULL_POLICY,
    command: ['fault-sidecar'],
    args: ['run'],
    envVariables: {
      FAULT_DEV: EnvValue.fromValue(FAULT_DEVICE),
      FAULT_STATE_DIR: EnvValue.fromValue(FAULT_STATE_DIR),
      FAULT_POLL_SECONDS: EnvValue.fromValue('1'),
      // The node's address: the kubelet's probes come from there, and netem must not delay their
      // answers (fault-sidecar.sh sorts them into a class netem never sees).
      HOST_IP: EnvValue.fromFieldRef(EnvFieldPaths.NODE_IP),
    },
    // A shell that sleeps, and tc now and then: cdk8s-plus-27's default 1 CPU / 512 MiB would
    // be reserved for nothing.
    resources: {
      cpu: { request: Cpu.millis(5) },
      memory: { request: Size.mebibytes(8), limit: Size.mebibytes(64) },
    },
    securityContext: {
      // tc changes the pod's qdisc through netlink, which needs root with CAP_NET_ADMIN in the
      // pod's network namespace; `kill-main` signals the service, which runs as another user
      // (SERVICE_USER), which needs CAP_KILL. Every other capability is dropped.
      user: 0,
      group: 0,
      ensureNonRoot: false,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: {
        add: [kubernetesCapability(Capability.NET_ADMIN), kubernetesCapability(Capability.KILL)],
        drop: [kubernetesCapability('ALL')],
      },
    },
    volumeMounts: [{ path: FAULT_STATE_DIR, volume: options.stateVolume }],
  };
}
