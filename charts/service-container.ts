/**
 * The main container of every lab pod: one image, `node --import tsx services/main.ts
 * <service>`, configured by its environment (services/main.ts), non-root on a read-only root
 * filesystem.
 */
import { Duration, Size } from 'cdk8s';
import { type ContainerProps, Cpu, EnvValue, Probe, type Volume } from 'cdk8s-plus-27';
import { containerPorts, kubernetesCapability, LAB_IMAGE_PULL_POLICY } from './cdk8s-plus-workarounds.ts';

/** The numeric user the image's services run as (the Dockerfile creates it). */
export const SERVICE_USER = 10_001;

/**
 * Where the main container may write. tsx keeps its compile cache in `$TMPDIR/tsx-<uid>`
 * (os.tmpdir()): on an emptyDir it survives a container restart, so a crashed backend comes
 * back without compiling again. Nothing else of the services writes to disk (logs go to
 * stdout).
 */
export const WRITABLE_TMP = '/tmp';

export interface ServiceContainerOptions {
  /** Container name: the service (`account`) or `gateway`. */
  readonly name: string;
  readonly image: string;
  /** First argument of services/main.ts. */
  readonly service: string;
  readonly port: number;
  readonly env: Readonly<Record<string, EnvValue>>;
  /** emptyDir mounted at {@link WRITABLE_TMP}. */
  readonly tmpVolume: Volume;
}

/**
 * Requests sized for a laptop kind cluster: 13 pods of about 80–100 MiB resident each when
 * idle (measured with `ps` on the services run by node 20). cdk8s-plus-27 would otherwise ask
 * 1 CPU and 512 MiB per container — 13 CPUs for the lab, which no laptop node can schedule.
 * No CPU limit: CFS throttling would add latency the lab would then report as the fault's.
 */
export const SERVICE_RESOURCES = {
  cpu: { request: Cpu.millis(50) },
  memory: { request: Size.mebibytes(128), limit: Size.mebibytes(384) },
} as const;

export function serviceContainer(options: ServiceContainerOptions): ContainerProps {
  const { port } = options;
  return {
    name: options.name,
    image: options.image,
    imagePullPolicy: LAB_IMAGE_PULL_POLICY,
    args: [options.service],
    ...containerPorts(port),
    envVariables: { ...options.env, PORT: EnvValue.fromValue(String(port)) },
    readiness: Probe.fromHttpGet('/readyz', {
      port,
      periodSeconds: Duration.seconds(2),
      failureThreshold: 2,
      timeoutSeconds: Duration.seconds(1),
    }),
    liveness: Probe.fromHttpGet('/healthz', {
      port,
      // No startup probe (see containerPorts): the first liveness check waits out a cold start
      // of node + tsx on a busy laptop.
      initialDelaySeconds: Duration.seconds(10),
      periodSeconds: Duration.seconds(5),
      failureThreshold: 3,
      timeoutSeconds: Duration.seconds(2),
    }),
    resources: SERVICE_RESOURCES,
    // cdk8s-plus-27's defaults (runAsNonRoot, read-only root filesystem, no privilege
    // escalation) are what the lab wants; the user is set so that runAsNonRoot can be checked
    // by the kubelet without trusting the image.
    securityContext: {
      user: SERVICE_USER,
      group: SERVICE_USER,
      ensureNonRoot: true,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      // A node process on a port above 1024 needs no capability at all.
      capabilities: { drop: [kubernetesCapability('ALL')] },
    },
    volumeMounts: [{ path: WRITABLE_TMP, volume: options.tmpVolume }],
  };
}
