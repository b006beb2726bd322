/**
 * The main container of every lab pod: one image, `node services/main.js <service>` (compiled
 * JavaScript: the Dockerfile builds it), configured by its environment (services/main.ts),
 * non-root on a read-only root filesystem.
 */
import { Duration, Size } from 'cdk8s';
import {
  type ContainerProps,
  type ContainerSecurityContextProps,
  Cpu,
  EnvValue,
  Probe,
  type Volume,
} from 'cdk8s-plus-27';
import { PLATFORM_PATHS, SERVICE_ENV } from '../services/names.ts';
import { containerPorts, kubernetesCapability, LAB_IMAGE_PULL_POLICY } from './cdk8s-plus-workarounds.ts';

/** The numeric user the image's services run as (the Dockerfile creates it). */
export const SERVICE_USER = 10_001;

/**
 * Where the main container may write: os.tmpdir(), an emptyDir of its own. The services write
 * nothing to disk (logs go to stdout, the image runs compiled JavaScript, no compiler cache);
 * it is there for what Node itself may write (a diagnostic report, a heap snapshot).
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
 * idle (measured with `ps` on the services run by node 20). A request is what the scheduler
 * reserves, not a cap: it is set at the low end of that, so that the whole lab (about 1.4 GiB
 * requested with the backends' sidecars, `doctor`'s resources check sums it) fits a 2 GiB VM
 * (colima's default) beside kube-system; the limit leaves room for a busy process. cdk8s-plus-27 would otherwise ask
 * 1 CPU and 512 MiB per container — 13 CPUs for the lab, which no laptop node can schedule.
 * No CPU limit: CFS throttling would add latency the lab would then report as the fault's.
 */
export const SERVICE_RESOURCES = {
  cpu: { request: Cpu.millis(50) },
  memory: { request: Size.mebibytes(80), limit: Size.mebibytes(384) },
} as const;

/**
 * Every node process of the lab's image (a service, a fault proxy). cdk8s-plus-27's defaults
 * (runAsNonRoot, read-only root filesystem, no privilege escalation) are what the lab wants; the
 * user is set so that runAsNonRoot can be checked by the kubelet without trusting the image.
 */
export const SERVICE_SECURITY_CONTEXT: ContainerSecurityContextProps = {
  user: SERVICE_USER,
  group: SERVICE_USER,
  ensureNonRoot: true,
  readOnlyRootFilesystem: true,
  allowPrivilegeEscalation: false,
  // A node process on a port above 1024 needs no capability at all.
  capabilities: { drop: [kubernetesCapability('ALL')] },
};

/** Startup probes (every 2 s) that may fail before the kubelet gives up on a start: 3 minutes. */
export const STARTUP_FAILURES = 90;

/**
 * The kubelet's probes of a lab process on its platform paths (services/lib/service-app.ts
 * serves them on every process, the fault proxy's admin port included), on `port` of the pod's
 * own address.
 */
export function platformProbes(port: number): Pick<ContainerProps, 'readiness' | 'startup' | 'liveness'> {
  return {
    readiness: Probe.fromHttpGet(PLATFORM_PATHS.ready, {
      port,
      periodSeconds: Duration.seconds(2),
      failureThreshold: 2,
      timeoutSeconds: Duration.seconds(1),
    }),
    // A cold start on a busy node can take far longer than any liveness budget: on the project's
    // real test cluster (2 cores, 13 pods starting at once) the gateways, when the image still
    // ran TypeScript through tsx, took over 25 s, and a liveness probe with a 10 s initial delay
    // killed them mid-start, again and again. The startup probe gives a start up to 3 minutes;
    // liveness begins only after it.
    // (HTTP, not cdk8s-plus-27's default TCP one: see containerPorts.)
    startup: Probe.fromHttpGet(PLATFORM_PATHS.health, {
      port,
      periodSeconds: Duration.seconds(2),
      failureThreshold: STARTUP_FAILURES,
      timeoutSeconds: Duration.seconds(2),
    }),
    liveness: Probe.fromHttpGet(PLATFORM_PATHS.health, {
      port,
      periodSeconds: Duration.seconds(5),
      failureThreshold: 3,
      timeoutSeconds: Duration.seconds(2),
    }),
  };
}

export function serviceContainer(options: ServiceContainerOptions): ContainerProps {
  const { port } = options;
  return {
    name: options.name,
    image: options.image,
    imagePullPolicy: LAB_IMAGE_PULL_POLICY,
    args: [options.service],
    ...containerPorts(port),
    envVariables: { ...options.env, [SERVICE_ENV.port]: EnvValue.fromValue(String(port)) },
    ...platformProbes(port),
    resources: SERVICE_RESOURCES,
    securityContext: SERVICE_SECURITY_CONTEXT,
    volumeMounts: [{ path: WRITABLE_TMP, volume: options.tmpVolume }],
  };
}
