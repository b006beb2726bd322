/**
 * `chaos-lab doctor --target kind`: what the lab needs from this machine and its cluster, checked
 * before anything is injected, each failure with what to do. The chaos tools the lab learns from
 * fail late and cryptically here ("Specified qdisc not found" in the middle of an experiment); the
 * doctor fails early and says why.
 *
 * 1. docker runs (not installed and daemon stopped are different fixes);
 * 2. kind is the release the pinned node image was made for (>= 0.31; >= 0.24 is also the first
 *    whose kindnet enforces NetworkPolicy);
 * 3. the kind cluster `chaos-lab` exists (`up` creates it; the doctor only reports);
 * 4. the kube context exists and its API server answers;
 * 5. the lab's resource requests fit the Ready nodes' allocatable CPU and memory (a colima VM of
 *    2 GiB is small for it): otherwise its pods would sit Pending;
 * 6. tc netem works in a pod: root with NET_ADMIN, and the node kernel has sch_netem — a real probe
 *    in a short-lived pod of the lab's image, which needs that image in the cluster. Only faults
 *    that ask for `injector: netem` need it (latency, loss and reset go through the fault proxy
 *    sidecar), so without it the check warns, and such a fault is refused before a run starts;
 * 7. NetworkPolicy is enforced: the same probe pod, which no policy lets in anywhere, tries a
 *    backend; reaching it means the trust experiments' isolation is not real.
 *
 * With `--context` (a cluster that is not kind) 1–3 are not checked: nothing there needs docker or kind.
 *
 * Checks are data (CheckResult), rendered by one function; `--json` prints them as they are.
 */
import { randomBytes } from 'node:crypto';
import { FAULT_DEVICE } from '../../charts/fault-sidecar.ts';
import { LABELS, PART_OF } from '../../charts/lab-pod.ts';
import { topology } from '../../services/topology.ts';
import { type Cluster, KubeError, type KubeObject, type NodeInfo, quantity } from './cluster.ts';
import { type CommandResult, type CommandRunner, commandLine } from './commands.ts';
import { DEFAULT_KIND_CLUSTER, type KindConfig } from './kind-config.ts';

export type CheckStatus = 'ok' | 'fail' | 'warn' | 'skipped';

export interface CheckResult {
  /** Short and stable: `docker`, `kind`, `cluster`, `context`, `resources`, `netem`, `network-policy`, `image`. */
  readonly name: string;
  readonly status: CheckStatus;
  readonly detail: string;
  /** What to do about a failure or a warning. */
  readonly fix?: string;
}

/**
 * The node image kind/cluster.yaml pins, and the kind release it was published with. kind supports
 * a node image only with the release it was built for (best effort with others): the "Images
 * pre-built for this release" of kind v0.31.0's release notes list this digest; v0.30.0's list
 * v1.33.4 instead. A test reads kind/cluster.yaml, so that the two are changed together. (kind
 * v0.24.0, the first whose kindnet enforces NetworkPolicy, is older still.)
 */
export const PINNED_NODE_IMAGE =
  'kindest/node:v1.33.7@sha256:d26ef333bdb2cbe9862a0f7c3803ecc7b4303d8cea8e814b481b09949d353040';
export const MIN_KIND_VERSION = [0, 31, 0] as const;
const MIN_KIND = `v${MIN_KIND_VERSION.join('.')}`;
const KIND_UPGRADE = `install kind ${MIN_KIND} or newer, the release the node image kind/cluster.yaml pins (kindest/node:v1.33.7) was made for: \`go install sigs.k8s.io/kind@${MIN_KIND}\`, \`brew upgrade kind\`, or the release binary from https://kind.sigs.k8s.io/docs/user/quick-start/#installation`;
/** The probe pod waits this long at most for its container to run. */
const PROBE_START_TIMEOUT_MS = 90_000;
/** What the probes themselves take at most, beyond the start: two execs of 15 s each, and the rest. */
const PROBE_WORK_MS = 120_000;
/** How long the probe pod lives unless told (see probeLifetimeMs). */
export const DEFAULT_PROBE_LIFETIME_MS = PROBE_START_TIMEOUT_MS + PROBE_WORK_MS;
const PROBE_POLL_MS = 250;
/** Label every probe pod carries, so that one left by a killed doctor is easy to find. */
export const PROBE_LABEL = 'chaos-lab.dev/doctor-probe';
const PROBE_CONTAINER = 'probe';

const MARKS: Readonly<Record<CheckStatus, string>> = { ok: '✓', fail: '✗', warn: '!', skipped: '-' };

/** One line per check, and an indented `fix:` under each failure or warning. */
export function renderChecks(
  results: readonly CheckResult[],
  width = Math.max(0, ...results.map((r) => r.name.length)),
): string[] {
  return results.flatMap((r) => [
    `${MARKS[r.status]} ${r.name.padEnd(width)}  ${r.detail}`,
    ...(r.fix && (r.status === 'fail' || r.status === 'warn')
      ? [`  ${' '.repeat(width)}  fix: ${r.fix}`]
      : []),
  ]);
}

export function failed(results: readonly CheckResult[]): boolean {
  return results.some((r) => r.status === 'fail');
}

/** The last lines of a command's output, for a failure's detail. */
function lastWords(result: CommandResult): string {
  return result.tail.slice(-3).join(' / ') || `exit code ${result.exitCode}`;
}

// ---------------------------------------------------------------------------------------------
// 1–3: docker and kind, by their own command lines.

export async function checkDocker(run: CommandRunner, signal?: AbortSignal): Promise<CheckResult> {
  const args = ['info', '--format', '{{.ServerVersion}}'];
  const result = await run('docker', args, { ...(signal ? { signal } : {}) });
  if (result.notFound) {
    return {
      name: 'docker',
      status: 'fail',
      detail: 'docker is not installed (no `docker` on PATH)',
      fix: 'install Docker Desktop (macOS, Windows), colima (`brew install colima docker`), or Docker Engine (Linux): https://docs.docker.com/engine/install/',
    };
  }
  const output = `${result.stderr}\n${result.stdout}`;
  if (result.exitCode !== 0) {
    if (/permission denied/i.test(output)) {
      return {
        name: 'docker',
        status: 'fail',
        detail: `docker cannot reach its daemon: permission denied (${lastWords(result)})`,
        fix: 'add yourself to the docker group (`sudo usermod -aG docker $USER`, then log in again)',
      };
    }
    return {
      name: 'docker',
      status: 'fail',
      detail: /Cannot connect to the Docker daemon|Is the docker daemon running|error during connect/i.test(
        output,
      )
        ? 'docker is installed but its daemon is not running'
        : `\`${commandLine('docker', args)}\` failed: ${lastWords(result)}`,
      fix: 'start Docker Desktop, or `colima start`, or `sudo systemctl start docker` (Linux)',
    };
  }
  const version = result.stdout.trim().split('\n')[0] || 'unknown';
  return { name: 'docker', status: 'ok', detail: `the daemon runs (server ${version})` };
}

/** `kind v0.31.0 go1.24.6 linux/amd64` → [0, 31, 0]. */
export function parseKindVersion(text: string): [number, number, number] | undefined {
  const match = /\bkind v?(\d+)\.(\d+)\.(\d+)/.exec(text);
  return match ? [Number(match[1]), Number(match[2]), Number(match[3])] : undefined;
}

function atLeast(version: readonly number[], minimum: readonly number[]): boolean {
  for (let i = 0; i < minimum.length; i++) {
    const a = version[i] ?? 0;
    const b = minimum[i] ?? 0;
    if (a !== b) return a > b;
  }
  return true;
}

export async function checkKind(run: CommandRunner, signal?: AbortSignal): Promise<CheckResult> {
  const result = await run('kind', ['version'], { ...(signal ? { signal } : {}) });
  if (result.notFound) {
    return {
      name: 'kind',
      status: 'fail',
      detail: 'kind is not installed (no `kind` on PATH)',
      fix: `install kind ${MIN_KIND}: \`go install sigs.k8s.io/kind@${MIN_KIND}\`, \`brew install kind\`, or the release binary from https://kind.sigs.k8s.io/docs/user/quick-start/#installation`,
    };
  }
  const version = parseKindVersion(result.stdout);
  if (result.exitCode !== 0 || !version) {
    return {
      name: 'kind',
      status: 'fail',
      detail: `\`kind version\` did not say a version: ${lastWords(result)}`,
      fix: KIND_UPGRADE,
    };
  }
  const shown = `kind v${version.join('.')}`;
  if (!atLeast(version, MIN_KIND_VERSION)) {
    return {
      name: 'kind',
      status: 'fail',
      detail: `${shown} is too old for the node image kind/cluster.yaml pins (kindest/node:v1.33.7, published with kind ${MIN_KIND})`,
      fix: KIND_UPGRADE,
    };
  }
  return { name: 'kind', status: 'ok', detail: shown };
}

/** Whether `kind get clusters` lists the lab's cluster (`name`, of the kind configuration), or why kind could not say. */
export async function kindClusterExists(
  run: CommandRunner,
  signal?: AbortSignal,
  name = DEFAULT_KIND_CLUSTER,
): Promise<{ exists: boolean } | { error: string }> {
  const result = await run('kind', ['get', 'clusters'], { ...(signal ? { signal } : {}) });
  if (result.notFound) return { error: 'kind is not installed (no `kind` on PATH)' };
  if (result.exitCode !== 0) return { error: lastWords(result) };
  // "No kind clusters found." goes to stderr with exit 0; the names go to stdout, one a line.
  const names = result.stdout.split('\n').map((l) => l.trim());
  return { exists: names.includes(name) };
}

export async function checkKindCluster(
  run: CommandRunner,
  signal?: AbortSignal,
  config?: Pick<KindConfig, 'name' | 'file'>,
): Promise<CheckResult> {
  const name = config?.name ?? DEFAULT_KIND_CLUSTER;
  const found = await kindClusterExists(run, signal, name);
  if ('error' in found) {
    return {
      name: 'cluster',
      status: 'fail',
      detail: `\`kind get clusters\` failed: ${found.error}`,
      fix: 'kind needs a running Docker (see the docker check)',
    };
  }
  return found.exists
    ? { name: 'cluster', status: 'ok', detail: `kind cluster ${name} exists` }
    : {
        name: 'cluster',
        status: 'fail',
        detail: `no kind cluster named ${name}`,
        fix: `\`npx chaos-lab up --target kind\` creates it (or \`kind create cluster --config ${config?.file ?? 'kind/cluster.yaml'}\`)`,
      };
}

// ---------------------------------------------------------------------------------------------
// 4: the context and its API server.

/** Connects and asks GET /version; the Cluster comes back only when it answered. */
export async function checkContext(
  connect: (context: string) => Cluster,
  context: string,
  signal?: AbortSignal,
  /** The kind cluster's name, whose context is `kind-<name>`: the fixes then speak of kind. */
  kindCluster = DEFAULT_KIND_CLUSTER,
): Promise<{ result: CheckResult; cluster?: Cluster }> {
  const onKind = context === `kind-${kindCluster}`;
  let cluster: Cluster;
  try {
    cluster = connect(context);
  } catch (err) {
    return {
      result: {
        name: 'context',
        status: 'fail',
        detail: (err as Error).message,
        fix: onKind
          ? `\`kind export kubeconfig --name ${kindCluster}\` writes the context again; \`npx chaos-lab up --target kind\` creates the cluster`
          : 'pass --context with a context of your kubeconfig (`kubectl config get-contexts`)',
      },
    };
  }
  try {
    const version = await cluster.version(signal);
    return {
      result: {
        name: 'context',
        status: 'ok',
        detail: `${context}: API server ${cluster.server} answers (Kubernetes ${version})`,
      },
      cluster,
    };
  } catch (err) {
    await cluster.close();
    return {
      result: {
        name: 'context',
        status: 'fail',
        detail: `${context}: ${(err as Error).message}`,
        fix: onKind
          ? `is the kind node running? \`docker ps --filter name=${kindCluster}-control-plane\`; \`docker start ${kindCluster}-control-plane\` restarts it`
          : 'check the cluster is running and reachable: `kubectl --context <name> get --raw /version`',
      },
    };
  }
}

// ---------------------------------------------------------------------------------------------
// 5: resources.

export interface Requests {
  readonly cpuMillis: number;
  readonly memoryBytes: number;
}

/** The pod spec and how many pods run it, of an object that makes pods. */
function podsOf(object: KubeObject): { spec: PodSpecLike; count: number } | undefined {
  const spec = object.spec as
    | { replicas?: number; parallelism?: number; template?: { spec?: PodSpecLike } }
    | undefined;
  switch (object.kind) {
    case 'Pod':
      return { spec: (object.spec ?? {}) as PodSpecLike, count: 1 };
    case 'Deployment':
    case 'StatefulSet':
    case 'ReplicaSet':
      return spec?.template?.spec ? { spec: spec.template.spec, count: spec.replicas ?? 1 } : undefined;
    case 'Job':
      return spec?.template?.spec ? { spec: spec.template.spec, count: spec.parallelism ?? 1 } : undefined;
    default:
      return undefined;
  }
}

interface PodSpecLike {
  readonly containers?: readonly ContainerLike[];
  readonly initContainers?: readonly ContainerLike[];
}
interface ContainerLike {
  readonly resources?: {
    readonly requests?: { readonly cpu?: string | number; readonly memory?: string | number };
  };
}

function containerRequests(c: ContainerLike): Requests {
  return {
    cpuMillis: quantity(c.resources?.requests?.cpu ?? 0) * 1000,
    memoryBytes: quantity(c.resources?.requests?.memory ?? 0),
  };
}

/**
 * What the objects' pods ask the scheduler for, as it counts it: per pod, the sum of its
 * containers or its largest init container, whichever is more; times the pods that run it.
 */
export function requestsOf(objects: readonly KubeObject[]): Requests {
  let cpuMillis = 0;
  let memoryBytes = 0;
  for (const object of objects) {
    const pods = podsOf(object);
    if (!pods) continue;
    const main = (pods.spec.containers ?? []).map(containerRequests);
    const init = (pods.spec.initContainers ?? []).map(containerRequests);
    const pod = (pick: (r: Requests) => number) =>
      Math.max(
        main.reduce((n, r) => n + pick(r), 0),
        ...init.map(pick),
      );
    cpuMillis += pods.count * pod((r) => r.cpuMillis);
    memoryBytes += pods.count * pod((r) => r.memoryBytes);
  }
  return { cpuMillis: Math.round(cpuMillis), memoryBytes: Math.round(memoryBytes) };
}

const GIB = 2 ** 30;
const gib = (bytes: number) => `${(bytes / GIB).toFixed(1)} GiB`;
const cpus = (millis: number) => `${Number((millis / 1000).toFixed(2))} CPU`;
/** Above this share of the nodes' allocatable, kube-system's own pods (about 1 CPU and 300 MiB on kind) may not fit beside the lab. */
const TIGHT_SHARE = 0.8;

/**
 * Whether the lab's requests fit the Ready nodes' allocatable CPU and memory: the scheduler leaves
 * pods Pending ("Insufficient memory") when they do not, and `up` would only time out. On kind the
 * node is a container of the VM Docker runs in, so the fix is a bigger VM.
 */
export async function checkResources(
  cluster: Cluster,
  objects: readonly KubeObject[],
  options: { readonly onKind: boolean; readonly signal?: AbortSignal },
): Promise<CheckResult> {
  const requested = requestsOf(objects);
  const nodes = await cluster.listNodes(options.signal);
  const ready = nodes.filter((n) => n.ready);
  const asked = `the lab requests ${cpus(requested.cpuMillis)} and ${gib(requested.memoryBytes)} of memory`;
  if (ready.length === 0) {
    return {
      name: 'resources',
      status: 'fail',
      detail: `${asked}, and no node is Ready (${nodes.map((n) => n.name).join(', ') || 'no node at all'})`,
      fix: '`kubectl get nodes` and `kubectl describe node <name>` say why',
    };
  }
  const allocatable: Requests = {
    cpuMillis: ready.reduce((n, node) => n + node.allocatable.cpuMillis, 0),
    memoryBytes: ready.reduce((n, node) => n + node.allocatable.memoryBytes, 0),
  };
  const where = `${ready.length === 1 ? 'the Ready node' : `the ${ready.length} Ready nodes`} (${ready
    .map((n: NodeInfo) => n.name)
    .join(', ')})`;
  const offered = `${where} allocate${ready.length === 1 ? 's' : ''} ${cpus(allocatable.cpuMillis)} and ${gib(allocatable.memoryBytes)}`;
  const fix = options.onKind
    ? 'give the VM that runs Docker more memory and CPUs (4 GiB and 2 CPUs are enough for the lab): colima: `colima stop && colima start --memory 4 --cpu 2`; Docker Desktop: Settings → Resources → Memory; Linux without a VM: free memory on this machine. The kind node sees the new size once it restarts.'
    : 'add a node to the cluster, or use nodes with more allocatable memory and CPU (`kubectl describe node <name>` shows Allocatable)';
  const short = [
    ...(requested.memoryBytes > allocatable.memoryBytes ? ['memory'] : []),
    ...(requested.cpuMillis > allocatable.cpuMillis ? ['CPU'] : []),
  ];
  if (short.length > 0) {
    return {
      name: 'resources',
      status: 'fail',
      detail: `${asked}, but ${offered}: not enough ${short.join(' or ')}, so some of its pods would stay Pending`,
      fix,
    };
  }
  const tight =
    requested.memoryBytes > TIGHT_SHARE * allocatable.memoryBytes ||
    requested.cpuMillis > TIGHT_SHARE * allocatable.cpuMillis;
  if (tight) {
    return {
      name: 'resources',
      status: 'warn',
      detail: `${asked}, and ${offered}: little is left for kube-system's own pods beside it`,
      fix,
    };
  }
  return { name: 'resources', status: 'ok', detail: `${asked}; ${offered}` };
}

// ---------------------------------------------------------------------------------------------
// 6–7: the probes, in one short-lived pod of the lab's image.

/** A probe that could not run: the reason is the check's detail. */
export class ProbeError extends Error {
  constructor(
    message: string,
    readonly fix: string,
  ) {
    super(message);
    this.name = 'ProbeError';
  }
}

/**
 * How long the probe pod of `up` must be able to live: its start, the rollouts it waits for between
 * the two probes (`waitMs`, up's --timeout), and the probes themselves.
 */
export function probeLifetimeMs(waitMs: number): number {
  return PROBE_START_TIMEOUT_MS + waitMs + PROBE_WORK_MS;
}

/**
 * The probe pod: the lab's image as root with NET_ADMIN, which is what the fault sidecar needs
 * (NET_ADMIN, not CAP_NET_ADMIN: containerd adds the prefix itself). It sleeps for as long as it
 * is needed, so that the probes can exec in it, and is deleted when they are done; a fixed sleep
 * could end before a slow rollout lets the NetworkPolicy probe run. activeDeadlineSeconds
 * (`lifetimeMs`) stops it even if the doctor is killed before it deletes the pod.
 * Its labels match no NetworkPolicy rule: it is let in nowhere, and reaches a backend only when
 * policies are not enforced.
 */
export function probePodManifest(
  namespace: string,
  name: string,
  image: string,
  lifetimeMs = DEFAULT_PROBE_LIFETIME_MS,
): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace,
      labels: { [LABELS.name]: 'chaos-lab-doctor', [LABELS.partOf]: PART_OF, [PROBE_LABEL]: name },
    },
    spec: {
      restartPolicy: 'Never',
      activeDeadlineSeconds: Math.ceil(lifetimeMs / 1000),
      terminationGracePeriodSeconds: 0,
      automountServiceAccountToken: false,
      containers: [
        {
          name: PROBE_CONTAINER,
          image,
          imagePullPolicy: 'IfNotPresent',
          command: ['sleep', 'infinity'],
          resources: { requests: { cpu: '10m', memory: '32Mi' }, limits: { memory: '128Mi' } },
          securityContext: {
            runAsUser: 0,
            runAsGroup: 0,
            runAsNonRoot: false,
            allowPrivilegeEscalation: false,
            readOnlyRootFilesystem: true,
            capabilities: { add: ['NET_ADMIN'], drop: ['ALL'] },
          },
        },
      ],
    },
  };
}

const IMAGE_PROBLEM = /ErrImageNeverPull|ErrImagePull|ImagePullBackOff|InvalidImageName/;

/** Waits until the probe pod's container runs; a pod that cannot start is a ProbeError that says why. */
async function waitRunning(
  cluster: Cluster,
  namespace: string,
  name: string,
  image: string,
  signal?: AbortSignal,
): Promise<void> {
  const deadline = Date.now() + PROBE_START_TIMEOUT_MS;
  let last = 'not created yet';
  for (;;) {
    signal?.throwIfAborted();
    const [pod] = await cluster.listPods(namespace, `${PROBE_LABEL}=${name}`, signal);
    if (pod) {
      if (pod.phase === 'Running') return;
      const problems = pod.containerProblems.join('; ');
      if (IMAGE_PROBLEM.test(problems)) {
        throw new ProbeError(
          `the probe pod cannot get the image ${image} (${problems})`,
          image.includes('/')
            ? `make ${image} pullable by the cluster (CHAOS_LAB_IMAGE names it)`
            : '`npx chaos-lab up --target kind` builds the image and loads it into the cluster',
        );
      }
      if (pod.phase === 'Failed' || pod.phase === 'Succeeded') {
        throw new ProbeError(
          `the probe pod ended (${pod.phase}${problems ? `: ${problems}` : ''})`,
          '`kubectl -n chaos-lab describe pod -l app.kubernetes.io/name=chaos-lab-doctor` says why',
        );
      }
      last = `${pod.phase}${problems ? ` (${problems})` : ''}`;
    }
    if (Date.now() >= deadline) {
      throw new ProbeError(
        `the probe pod ${name} did not run within ${PROBE_START_TIMEOUT_MS / 1000} s (last: ${last})`,
        `\`kubectl -n ${namespace} describe pod ${name}\` says why (a node out of resources? an image that cannot be found?)`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, PROBE_POLL_MS));
  }
}

export interface ProbeOptions {
  readonly namespace: string;
  readonly image: string;
  readonly signal?: AbortSignal;
  /** A name for the pod; @default `chaos-lab-doctor-<random>` */
  readonly podName?: string;
  /**
   * How long the probe pod may be needed (its activeDeadlineSeconds): longer when the caller
   * waits between the probes (probeLifetimeMs). @default DEFAULT_PROBE_LIFETIME_MS
   */
  readonly lifetimeMs?: number;
}

/**
 * Runs `fn` with a probe pod running; the pod is deleted afterwards whatever happened, so a probe
 * that fails (or a Ctrl-C) leaves nothing behind.
 */
export async function withProbePod<T>(
  cluster: Cluster,
  options: ProbeOptions,
  fn: (pod: string) => Promise<T>,
): Promise<T> {
  const { namespace, image, signal } = options;
  const name = options.podName ?? `chaos-lab-doctor-${randomBytes(3).toString('hex')}`;
  try {
    try {
      await applyProbePod(cluster, probePodManifest(namespace, name, image, options.lifetimeMs), signal);
    } catch (err) {
      if (err instanceof KubeError && (err.status === 403 || /PodSecurity|forbidden/i.test(err.message))) {
        throw new ProbeError(
          `the probe pod (root with NET_ADMIN) was refused: ${err.message}`,
          `the fault sidecar needs the same; allow it in namespace ${namespace} (PodSecurity level privileged: \`kubectl label ns ${namespace} pod-security.kubernetes.io/enforce=privileged\`, or your admission policy)`,
        );
      }
      throw err;
    }
    await waitRunning(cluster, namespace, name, image, signal);
    return await fn(name);
  } finally {
    await cluster.deletePod(namespace, name, { gracePeriodSeconds: 0 }).catch(() => {
      // Never created, or already gone: nothing is left either way.
    });
  }
}

/** How long a just-created namespace may lack its default ServiceAccount. */
const SERVICE_ACCOUNT_WAIT_MS = 15_000;

/**
 * Creates the probe pod. Right after `up` creates the namespace, its `default` ServiceAccount may
 * not exist yet, and the API server refuses pods until it does ("error looking up service account
 * chaos-lab/default"); Deployments retry by themselves, a bare pod must be retried here.
 */
async function applyProbePod(cluster: Cluster, pod: KubeObject, signal?: AbortSignal): Promise<void> {
  const deadline = Date.now() + SERVICE_ACCOUNT_WAIT_MS;
  for (;;) {
    try {
      await cluster.apply([pod], { ...(signal ? { signal } : {}) });
      return;
    } catch (err) {
      const noAccountYet = err instanceof KubeError && /service ?account/i.test(err.message);
      if (!noAccountYet || Date.now() >= deadline) throw err;
    }
    await new Promise((resolve) => setTimeout(resolve, PROBE_POLL_MS));
  }
}

const NO_NETEM = /Specified qdisc kind is unknown|Specified qdisc not found|Unknown qdisc/i;
const NETEM_FIX =
  'the node kernel has no sch_netem (WSL2, some VMs): `sudo modprobe sch_netem` on the host (Linux; kind nodes share its kernel), or use Docker Desktop, whose VM kernel has it; until then faults that ask for `injector: netem` are refused (latency, loss and reset need no netem: the fault proxy sidecar applies them)';

/** `tc qdisc add … netem` and its removal, in the probe pod, as the fault sidecar does it. */
export async function probeNetem(cluster: Cluster, namespace: string, pod: string): Promise<CheckResult> {
  const add = ['tc', 'qdisc', 'add', 'dev', FAULT_DEVICE, 'root', 'netem', 'delay', '1ms'];
  const result = await cluster.exec(namespace, pod, PROBE_CONTAINER, add, { timeoutMs: 15_000 });
  const said = (result.stderr || result.stdout).trim().split('\n').slice(-2).join(' / ');
  if (result.exitCode !== 0) {
    if (NO_NETEM.test(said)) {
      return { name: 'netem', status: 'warn', detail: `tc netem in a pod: ${said}`, fix: NETEM_FIX };
    }
    if (/Operation not permitted|permission denied/i.test(said)) {
      return {
        name: 'netem',
        status: 'warn',
        detail: `tc netem in a pod: ${said}: NET_ADMIN was not granted to a root container`,
        fix: 'a PodSecurity admission or policy (Kyverno, Gatekeeper) may strip capabilities: allow NET_ADMIN for the fault-sidecar container in namespace chaos-lab; until then faults that ask for `injector: netem` are refused',
      };
    }
    return {
      name: 'netem',
      status: 'warn',
      detail: `\`${add.join(' ')}\` in a pod exited ${result.exitCode}: ${said || 'no output'}`,
      fix: 'faults that ask for `injector: netem` need tc netem in the pods, and are refused until it works; see the output above',
    };
  }
  const del = ['tc', 'qdisc', 'del', 'dev', FAULT_DEVICE, 'root'];
  const removed = await cluster.exec(namespace, pod, PROBE_CONTAINER, del, { timeoutMs: 15_000 });
  if (removed.exitCode !== 0) {
    return {
      name: 'netem',
      status: 'warn',
      detail: `netem could be added but \`${del.join(' ')}\` exited ${removed.exitCode}: ${removed.stderr.trim()}`,
      fix: 'the fault sidecar removes its faults the same way: check its logs if a fault seems to stay',
    };
  }
  return {
    name: 'netem',
    status: 'ok',
    detail: 'tc netem works in a pod (root with NET_ADMIN; the node kernel has sch_netem)',
  };
}

/** A one-line node script: exit 0 when the URL answers within 2 s, 1 otherwise. */
function fetchScript(url: string): string[] {
  return [
    'node',
    '-e',
    `fetch(${JSON.stringify(url)},{signal:AbortSignal.timeout(2000)}).then(()=>process.exit(0),()=>process.exit(1))`,
  ];
}

/**
 * Whether NetworkPolicies are enforced: the probe pod (let in by no rule) tries the first backend;
 * a gateway pod, which the policies let through, tries it too, so that "blocked" is not confused
 * with "the backend is down".
 */
export async function probeNetworkPolicy(
  cluster: Cluster,
  namespace: string,
  pod: string,
): Promise<CheckResult> {
  const backend = Object.values(topology.backends)[0];
  if (!backend) throw new Error('services/topology.ts lists no backend');
  const url = `http://${backend.name}:${backend.port}/healthz`;
  const fromProbe = await cluster.exec(namespace, pod, PROBE_CONTAINER, fetchScript(url), {
    timeoutMs: 15_000,
  });
  if (fromProbe.exitCode === 0) {
    return {
      name: 'network-policy',
      status: 'warn',
      detail: `a pod that is not a gateway reached ${url}: NetworkPolicies are NOT enforced, so the trust experiments' isolation is not real`,
      fix: 'kind >= 0.24 with its default CNI (kindnet) enforces them; on other clusters use a CNI that does (Calico, Cilium)',
    };
  }
  if (fromProbe.exitCode !== 1) {
    return {
      name: 'network-policy',
      status: 'warn',
      detail: `could not tell: the probe's fetch exited ${fromProbe.exitCode} (${fromProbe.stderr.trim() || 'no output'})`,
      fix: 'check by hand: a pod without the gateway labels must not reach a backend',
    };
  }
  const [gateway] = (await cluster.listPods(namespace, `${LABELS.component}=gateway`)).filter((p) => p.ready);
  if (!gateway) {
    return {
      name: 'network-policy',
      status: 'warn',
      detail: `could not tell: ${url} did not answer the probe, and no gateway is ready to show that it answers at all`,
      fix: `wait for the lab to be ready (\`kubectl -n ${namespace} get pods\`) and run the doctor again`,
    };
  }
  const fromGateway = await cluster.exec(namespace, gateway.name, 'gateway', fetchScript(url), {
    timeoutMs: 15_000,
  });
  if (fromGateway.exitCode !== 0) {
    return {
      name: 'network-policy',
      status: 'warn',
      detail: `could not tell: ${url} did not answer the gateway ${gateway.name} either`,
      fix: `is ${backend.name} running? \`kubectl -n ${namespace} get pods\``,
    };
  }
  return {
    name: 'network-policy',
    status: 'ok',
    detail: `enforced: a pod that is not a gateway cannot reach ${backend.name}:${backend.port}, ${gateway.name} can`,
  };
}

export interface RunProbesOptions extends ProbeOptions {
  /** Probe 7 (NetworkPolicy) too. */
  readonly networkPolicy: boolean;
  /**
   * Runs between the two probes, with the probe pod alive: `up` waits for the rollouts there, since
   * "a backend cannot be reached" means something only once the backend is up.
   */
  readonly beforeNetworkPolicy?: () => Promise<void>;
  /** Each result as soon as it is known. */
  readonly onResult?: (result: CheckResult) => void;
}

/**
 * Probes 6 and 7 in one pod. A pod that could not run fails the netem check, saying why, and
 * leaves the NetworkPolicy check undone (`beforeNetworkPolicy` is then not called).
 */
export async function runProbes(cluster: Cluster, options: RunProbesOptions): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  const record = (result: CheckResult) => {
    results.push(result);
    options.onResult?.(result);
  };
  try {
    await withProbePod(cluster, options, async (pod) => {
      record(await probeNetem(cluster, options.namespace, pod));
      if (!options.networkPolicy) return;
      await options.beforeNetworkPolicy?.();
      record(await probeNetworkPolicy(cluster, options.namespace, pod));
    });
  } catch (err) {
    if (!(err instanceof ProbeError)) throw err;
    record({ name: 'netem', status: 'fail', detail: err.message, fix: err.fix });
    if (options.networkPolicy) {
      record({ name: 'network-policy', status: 'skipped', detail: 'not checked: the probe pod did not run' });
    }
  }
  return results;
}

// ---------------------------------------------------------------------------------------------
// The doctor on its own.

export interface DoctorOptions {
  /** Another cluster than kind's: no docker/kind checks, and the image must come from a registry. */
  readonly context?: string;
  /** The kind configuration (CHAOS_LAB_KIND_CONFIG or kind/cluster.yaml): the cluster's name and context. @default chaos-lab */
  readonly kindConfig?: KindConfig;
  readonly namespace: string;
  /** The lab's image (chaos-lab:dev, or CHAOS_LAB_IMAGE). */
  readonly image: string;
  /** CHAOS_LAB_IMAGE was set. */
  readonly imageFromRegistry: boolean;
  /** The lab's objects as `up` applies them (kind-lab.ts's labManifests): what the resources check sums. */
  readonly manifests: readonly KubeObject[];
  readonly run: CommandRunner;
  readonly connect: (context: string) => Cluster;
  readonly signal?: AbortSignal;
}

/** Checks 1–4; the Cluster comes back when the API server answered (the caller closes it). */
export async function machineChecks(
  options: DoctorOptions,
): Promise<{ results: CheckResult[]; cluster?: Cluster }> {
  const { run, signal } = options;
  const results: CheckResult[] = [];
  if (options.context === undefined) {
    const docker = await checkDocker(run, signal);
    const kind = await checkKind(run, signal);
    results.push(docker, kind);
    const cluster =
      docker.status === 'ok' && kind.status !== 'fail'
        ? await checkKindCluster(run, signal, options.kindConfig)
        : undefined;
    results.push(
      cluster ?? { name: 'cluster', status: 'skipped', detail: 'not checked: needs docker and kind' },
    );
    if (cluster?.status !== 'ok') {
      results.push({
        name: 'context',
        status: 'skipped',
        detail: `not checked: no kind cluster ${options.kindConfig?.name ?? DEFAULT_KIND_CLUSTER}`,
      });
      return { results };
    }
  } else {
    results.push(
      options.imageFromRegistry
        ? { name: 'image', status: 'ok', detail: `${options.image} (CHAOS_LAB_IMAGE), pulled by the cluster` }
        : {
            name: 'image',
            status: 'fail',
            detail: `--context ${options.context} is not the kind cluster: the image cannot be \`kind load\`ed into it`,
            fix: 'push the image to a registry the cluster pulls from and name it: `docker build -t <registry>/chaos-lab:<tag> . && docker push <registry>/chaos-lab:<tag>`, then CHAOS_LAB_IMAGE=<registry>/chaos-lab:<tag>',
          },
    );
  }
  const kindCluster = options.kindConfig?.name ?? DEFAULT_KIND_CLUSTER;
  const context = options.context ?? `kind-${kindCluster}`;
  const { result, cluster } = await checkContext(options.connect, context, signal, kindCluster);
  results.push(result);
  return { results, ...(cluster ? { cluster } : {}) };
}

/**
 * The doctor alone: checks 1–5, then the probes when the lab is deployed (its image is then in the
 * cluster and its namespace exists); otherwise they are reported as not yet checked.
 */
export async function runDoctor(options: DoctorOptions): Promise<CheckResult[]> {
  const { results, cluster } = await machineChecks(options);
  if (!cluster) {
    const reached = results.some((r) => r.name === 'context' && r.status !== 'skipped');
    const why = reached ? 'the API server did not answer' : 'no cluster yet';
    return [
      ...results,
      { name: 'resources', status: 'skipped', detail: `not checked: ${why}` },
      ...notYet(why),
    ];
  }
  try {
    results.push(
      await checkResources(cluster, options.manifests, {
        onKind: options.context === undefined,
        ...(options.signal ? { signal: options.signal } : {}),
      }),
    );
    const labPods = await cluster.listPods(options.namespace, `${LABELS.partOf}=${PART_OF}`, options.signal);
    if (!labPods.some((p) => p.phase === 'Running' && !p.labels[PROBE_LABEL])) {
      return [
        ...results,
        ...notYet(
          `the lab is not deployed in namespace ${options.namespace}; \`up --target kind\` runs them`,
        ),
      ];
    }
    return [
      ...results,
      ...(await runProbes(cluster, {
        namespace: options.namespace,
        image: options.image,
        networkPolicy: true,
        ...(options.signal ? { signal: options.signal } : {}),
      })),
    ];
  } finally {
    await cluster.close();
  }
}

function notYet(why: string): CheckResult[] {
  return [
    { name: 'netem', status: 'skipped', detail: `not yet checked: ${why}` },
    { name: 'network-policy', status: 'skipped', detail: `not yet checked: ${why}` },
  ];
}
