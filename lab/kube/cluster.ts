/**
 * What the lab needs from a Kubernetes cluster, and nothing more: server-side apply, rollouts,
 * pods, exec and port-forward, and the Lease a run holds the lab with. `client.ts` implements it with @kubernetes/client-node 1.4; the
 * doctor, `up/down --target kind` and the runner's Kubernetes target use only this interface, and
 * their tests run it against the fake API server in test/fake-kube/, which speaks the real wire
 * format (apply patches, watch streams, exec and port-forward over WebSocket).
 */

/** A manifest as cdk8s synthesizes it. */
export interface KubeObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: {
    readonly name: string;
    readonly namespace?: string;
    readonly labels?: Readonly<Record<string, string>>;
    readonly annotations?: Readonly<Record<string, string>>;
  };
  readonly [field: string]: unknown;
}

/** The field manager every apply of the lab uses. */
export const FIELD_MANAGER = 'chaos-lab';

export interface ExecResult {
  readonly stdout: string;
  readonly stderr: string;
  /** From the exec status frame: 0 on Success, the ExitCode cause on NonZeroExitCode. */
  readonly exitCode: number;
}

export interface PodCondition {
  readonly type: string;
  readonly status: string;
  readonly reason?: string;
  readonly message?: string;
}

export interface PodInfo {
  readonly name: string;
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
  /** Pending, Running, Succeeded, Failed, Unknown. */
  readonly phase: string;
  /** The Ready condition is True. */
  readonly ready: boolean;
  /** metadata.deletionTimestamp is set. */
  readonly terminating: boolean;
  /** restartCount per container name. */
  readonly restarts: Readonly<Record<string, number>>;
  /**
   * How many times each container's process has ended: its restarts, plus the end whose restart the
   * kubelet still holds back. A container that keeps crashing waits in CrashLoopBackOff for 10 s,
   * 20 s, 40 s… (the back-off outlives the run that caused it), and its restartCount does not count
   * the crash until the wait is over — a phase shorter than the wait would see no crash at all.
   */
  readonly exits: Readonly<Record<string, number>>;
  /** The image of each container, by name. */
  readonly images: Readonly<Record<string, string>>;
  readonly conditions: readonly PodCondition[];
  /** Why a container is waiting or was last terminated, e.g. `app: CrashLoopBackOff`, when any. */
  readonly containerProblems: readonly string[];
}

export interface NodeInfo {
  readonly name: string;
  /** The Ready condition is True. */
  readonly ready: boolean;
  /** status.allocatable: what the scheduler may give pods on it. */
  readonly allocatable: { readonly cpuMillis: number; readonly memoryBytes: number };
  /** status.addresses: `InternalIP`, `ExternalIP`, `Hostname`, … */
  readonly addresses: readonly { readonly type: string; readonly address: string }[];
}

export interface RolloutState {
  /** Deployment name. */
  readonly name: string;
  readonly desired: number;
  /** Updated replicas that are available. */
  readonly ready: number;
  readonly done: boolean;
}

export interface DeploymentInfo {
  readonly name: string;
  /** metadata.deletionTimestamp is set. */
  readonly terminating: boolean;
}

/**
 * A coordination.k8s.io/v1 Lease, as far as the lab uses one: the run lock (run-lease.ts). Times are
 * ISO strings; the client writes them as the MicroTimes the API server wants.
 */
export interface LeaseRecord {
  readonly name: string;
  readonly holderIdentity?: string;
  readonly leaseDurationSeconds?: number;
  readonly acquireTime?: string;
  readonly renewTime?: string;
  readonly leaseTransitions?: number;
  readonly labels?: Readonly<Record<string, string>>;
  readonly annotations?: Readonly<Record<string, string>>;
  /**
   * The version the API server gave it. A replace that carries it fails with a 409 Conflict
   * KubeError when the Lease has changed since (optimistic concurrency).
   */
  readonly resourceVersion?: string;
}

export interface PortForward {
  /** `http://127.0.0.1:<local port>`: every connection to it is forwarded to the pod's port. */
  readonly url: string;
  close(): Promise<void>;
}

export interface Cluster {
  /** kubeconfig context in use. */
  readonly context: string;
  /** API server URL of that context. */
  readonly server: string;
  /** GET /version: `v1.33.7`. Throws a KubeError that says the cluster cannot be reached. */
  version(signal?: AbortSignal): Promise<string>;
  /**
   * Server-side apply of each object, in order, with field manager `chaos-lab`. A 409 conflict
   * throws an ApplyConflictError naming the object, the fields and their other managers; `force`
   * takes them over.
   */
  apply(
    objects: readonly KubeObject[],
    options?: {
      readonly force?: boolean;
      readonly signal?: AbortSignal;
      readonly progress?: (line: string) => void;
    },
  ): Promise<void>;
  /** Deletes the objects in reverse order; one that is already gone is not an error. */
  delete(
    objects: readonly KubeObject[],
    options?: { readonly signal?: AbortSignal; readonly progress?: (line: string) => void },
  ): Promise<void>;
  /**
   * Watches the Deployments until every one has all its updated replicas available. On timeout,
   * throws a RolloutTimeoutError naming each unready Deployment, a pod of it and that pod's failing
   * condition or container problem.
   */
  waitForRollouts(
    namespace: string,
    deployments: readonly string[],
    options: {
      readonly timeoutMs: number;
      readonly signal?: AbortSignal;
      readonly progress?: (states: readonly RolloutState[]) => void;
    },
  ): Promise<void>;
  listPods(namespace: string, labelSelector?: string, signal?: AbortSignal): Promise<PodInfo[]>;
  /** Every node of the cluster, in name order. */
  listNodes(signal?: AbortSignal): Promise<NodeInfo[]>;
  /** Deletes one pod (grace period as given, default the pod's own). */
  deletePod(
    namespace: string,
    pod: string,
    options?: { readonly gracePeriodSeconds?: number },
  ): Promise<void>;
  /** Runs a command in a container; resolves with its exit code (non-zero is not a throw). */
  exec(
    namespace: string,
    pod: string,
    container: string,
    command: readonly string[],
    options?: { readonly timeoutMs?: number; readonly signal?: AbortSignal },
  ): Promise<ExecResult>;
  /**
   * The decoded `data` of a Secret (the runner's Kubernetes target reads the admin token from the
   * lab's Secret, the truth the pods started with). Optional so that a client without it still
   * satisfies the interface; the target then falls back to the values `npm run synth` kept.
   */
  readSecret?(namespace: string, name: string, signal?: AbortSignal): Promise<Record<string, string>>;
  /**
   * A namespace's `status.phase`: `Active`, `Terminating` (deleted; the namespace controller is
   * still removing what it holds), or undefined once it is gone. `down` waits for undefined; `up`
   * cannot create anything in a Terminating one.
   */
  namespacePhase(name: string, signal?: AbortSignal): Promise<'Active' | 'Terminating' | undefined>;
  /** The namespace's Deployments, in name order. */
  listDeployments(namespace: string, signal?: AbortSignal): Promise<DeploymentInfo[]>;
  /**
   * Creates a Lease. One of that name already there: a KubeError with status 409 (AlreadyExists);
   * no such namespace: 404; a Terminating one: 403.
   */
  createLease(namespace: string, lease: LeaseRecord, signal?: AbortSignal): Promise<LeaseRecord>;
  /** The Lease, or undefined when there is none. */
  readLease(namespace: string, name: string, signal?: AbortSignal): Promise<LeaseRecord | undefined>;
  /** Replaces the Lease; 409 (Conflict) when it carries a resourceVersion the Lease has moved on from, 404 when it is gone. */
  replaceLease(namespace: string, lease: LeaseRecord, signal?: AbortSignal): Promise<LeaseRecord>;
  /**
   * Deletes the Lease if it is still at `resourceVersion` (any version when undefined): 409 (Conflict)
   * when it has changed since. Resolves false when it was gone already.
   */
  deleteLease(
    namespace: string,
    name: string,
    resourceVersion: string | undefined,
    signal?: AbortSignal,
  ): Promise<boolean>;
  /** Forwards a local loopback port to the pod's port until closed. */
  portForward(namespace: string, pod: string, port: number): Promise<PortForward>;
  /** Stops watches and closes forwards this client opened. */
  close(): Promise<void>;
}

/** Any failure talking to the cluster, with a message that says what was asked and what came back. */
export class KubeError extends Error {
  constructor(
    message: string,
    /** HTTP status, when the API server answered. */
    readonly status?: number,
    /** The Status reason (`NotFound`, `Conflict`, …), when given. */
    readonly reason?: string,
  ) {
    super(message);
    this.name = 'KubeError';
  }
}

export interface FieldConflict {
  /** e.g. `.spec.replicas`. */
  readonly field: string;
  /** The other manager, e.g. `kubectl-scale`. */
  readonly manager: string;
}

export class ApplyConflictError extends KubeError {
  constructor(
    /** `Deployment chaos-lab/account`. */
    readonly object: string,
    readonly conflicts: readonly FieldConflict[],
  ) {
    super(
      `apply of ${object} conflicts with other field managers: ${conflicts
        .map((c) => `${c.field} (owned by ${c.manager})`)
        .join(', ')}; another tool changed these fields. Re-run with --force-conflicts to take them over.`,
      409,
      'Conflict',
    );
    this.name = 'ApplyConflictError';
  }
}

export interface UnreadyDeployment {
  readonly name: string;
  readonly ready: number;
  readonly desired: number;
  /** A pod of it that is not ready, and why (`account-5d…: Ready=False ContainersNotReady; app: CrashLoopBackOff`). */
  readonly pod?: string;
  readonly why?: string;
}

export class RolloutTimeoutError extends KubeError {
  constructor(
    readonly timeoutMs: number,
    readonly unready: readonly UnreadyDeployment[],
  ) {
    super(
      `not ready after ${Math.round(timeoutMs / 1000)} s: ${unready
        .map(
          (u) =>
            `${u.name} ${u.ready}/${u.desired}${u.pod ? ` (pod ${u.pod}: ${u.why ?? 'not ready'})` : ''}`,
        )
        .join('; ')}`,
    );
    this.name = 'RolloutTimeoutError';
  }
}

const QUANTITY = /^([+-]?(?:\d+(?:\.\d*)?|\.\d+))(?:[eE]([+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E))?$/;
const SUFFIXES: Readonly<Record<string, number>> = {
  n: 1e-9,
  u: 1e-6,
  m: 1e-3,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

/**
 * A Kubernetes resource quantity (`50m`, `1.5`, `128Mi`, `8025424Ki`, `1e3`) in its base unit:
 * cores for CPU, bytes for memory. Throws on anything else, naming it.
 */
export function quantity(value: string | number): number {
  if (typeof value === 'number') return value;
  const match = QUANTITY.exec(value.trim());
  if (!match) throw new Error(`"${value}" is not a Kubernetes quantity (like 250m, 2, 128Mi or 1Gi)`);
  const number = Number(match[1]);
  if (match[2] !== undefined) return number * 10 ** Number(match[2]);
  return number * (match[3] ? (SUFFIXES[match[3]] ?? 1) : 1);
}

/** `Ready=False ContainersNotReady; app: CrashLoopBackOff`: why a pod is not ready, in one line. */
export function podProblem(pod: PodInfo): string {
  const failing =
    pod.conditions.find((c) => c.type === 'Ready' && c.status !== 'True') ??
    pod.conditions.find((c) => c.status !== 'True');
  const parts = [
    failing
      ? `${failing.type}=${failing.status}${failing.reason ? ` ${failing.reason}` : ''}`
      : `phase ${pod.phase}`,
    ...pod.containerProblems,
  ];
  return parts.join('; ');
}
