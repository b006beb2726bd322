/**
 * The Kubernetes target: experiments on the lab `chaos-lab up --target kind` deployed, through the
 * Kubernetes API only (lab/kube/cluster.ts). It never deploys nor tears down the lab.
 *
 * - latency and loss: `tc netem` in the backend pod's network namespace, by exec of the fault
 *   sidecar (services/fault-sidecar/fault-sidecar.sh). The lease lives in the pod: the sidecar
 *   removes the qdisc when it runs out, so a killed runner leaves nothing once it has.
 * - http-error, worker-panic and the workerRecovery settings: the fault agent of each pod, over a
 *   port-forward of the pod's service port (the NetworkPolicies keep everything but the gateways
 *   off the backends, and the API server's pods/proxy drops the Authorization header the agent
 *   needs). One forward per pod for the whole run.
 * - kill: a crash, as SIGKILL is in the local lab: the fault sidecar kills the service's process
 *   (`fault-sidecar kill-main`; the backend pods share one PID namespace), with no SIGTERM and no
 *   draining, and the kubelet restarts the container in the same pod. Deleting the pod would be a
 *   graceful replacement whatever its grace period: the kubelet still sends SIGTERM first.
 *
 * Instances: experiments name them as the local lab does (`coin-1`, `coin-2`). Here `coin-N` is
 * the N-th running pod of coin in name order at the moment of the injection; the results name
 * the pods themselves.
 *
 * Calibration: http-error from the agents' own figures, as in the local lab; latency from what
 * the gateways without deadlines saw of the dependency during the fault, against the phase before
 * it (netem keeps no per-packet figures); loss is not measured.
 *
 * Restarts: the main container's restartCount, summed over every pod seen during the run (a pod
 * that is gone keeps the count last seen, so the sum never goes back). A kill counts at once: the
 * pod's count is taken as at least one more than when it was killed, so the phase that killed
 * shows the restart even when the kubelet reports it a moment after the phase's counters are read
 * (then the count catches up, and nothing is counted twice).
 *
 * Settling: before each variant and each phase, settle() waits until every backend pod is Ready
 * (a pod whose process panicked with recovery off is in CrashLoopBackOff for 10 s, 20 s, 40 s …),
 * so that a phase does not measure the previous one's crashes; how long it waited goes to the
 * run's progress and result.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { FAULT_SIDECAR_CONTAINER } from '../../charts/fault-sidecar.ts';
import { LABELS, PART_OF } from '../../charts/lab-pod.ts';
import { ADMIN_TOKEN_KEY, LAB_SECRET_NAME } from '../../charts/lab-secret.ts';
import {
  BACKENDS,
  type BackendName,
  isBackendName,
  STRATEGIES,
  type Strategy,
  topology,
} from '../../services/topology.ts';
import {
  AdminError,
  type Target as AdminTarget,
  AgentClient,
  isUnreachable,
  onEvery,
} from '../admin-client.ts';
import { formatDuration } from '../duration.ts';
import { parsePromText, type Sample, sumOf } from '../prom-text.ts';
import { type Fault, instanceIds } from '../runner/experiment.ts';
import {
  combined,
  leaseBody,
  leftoversOfAgent,
  observedErrors,
  RestartSafeCounter,
  readingOf,
  refusals,
} from '../runner/local-target.ts';
import type {
  AppliedFault,
  Injector,
  LeftoverFault,
  ServiceCounters,
  Target,
  TargetInfo,
} from '../runner/target.ts';
import {
  type Cluster,
  type ExecResult,
  KubeError,
  type PodInfo,
  type PortForward,
  podProblem,
  RolloutTimeoutError,
} from './cluster.ts';
import { GATEWAY_HOST_ENV, gatewayUrls, nodePortHost, nodePortUrls } from './gateway-urls.ts';
import { DEFAULT_KIND_CONFIG, type KindConfig, readKindConfig } from './kind-config.ts';

export { gatewayUrls } from './gateway-urls.ts';

export const DEFAULT_NAMESPACE = 'chaos-lab';
const UP_HINT = 'npx chaos-lab up --target kind';

export interface KubeTargetOptions {
  /** The lab home: where `npm run synth` keeps kind-secrets.json, read when the cluster cannot give the Secret. */
  readonly home: string;
  /**
   * kubeconfig context. Another context than the kind configuration's is a cluster that is not
   * kind: its gateways are reached on a node's InternalIP (see gateway-urls.ts).
   * @default `kind-<name>` of the kind configuration (kindConfig): kind-chaos-lab for kind/cluster.yaml
   */
  readonly context?: string;
  /**
   * A connected cluster to use instead of connecting to `context` (tests). It belongs to the
   * caller: release() closes only the forwards this target opened.
   * @default connectCluster(context)
   */
  readonly cluster?: Cluster;
  /** @default 'chaos-lab' */
  readonly namespace?: string;
  /** Gateway URLs, instead of the host ports kind/cluster.yaml maps (tests). @default from kindConfig, or the nodes */
  readonly gatewayUrls?: Readonly<Record<Strategy, string>>;
  /** On a cluster that is not kind: the host of the gateways' NodePorts (env CHAOS_LAB_GATEWAY_HOST). @default a Ready node's InternalIP */
  readonly gatewayHost?: string;
  /** The kind configuration the cluster was created with (the CLI: env CHAOS_LAB_KIND_CONFIG). @default the repository's kind/cluster.yaml */
  readonly kindConfig?: string;
  /** How long prepare() waits for the lab's Deployments to be ready. @default 60 s */
  readonly readyTimeoutMs?: number;
  /** How long settle() waits, before a variant or a phase, for every backend pod to be Ready. @default 3 min */
  readonly settleTimeoutMs?: number;
}

/** `fault-sidecar status`, as one JSON line. */
export interface SidecarStatus {
  readonly dev: string;
  readonly lease: {
    readonly expiresAt: number;
    readonly remainingSeconds: number;
    readonly netem: string;
  } | null;
  readonly netemQdisc: boolean;
  readonly qdisc: string;
}

/** A sidecar command that failed, in a pod; `gone` when the pod no longer exists. */
export class SidecarError extends Error {
  constructor(
    readonly pod: string,
    message: string,
    readonly exitCode?: number,
    readonly gone = false,
  ) {
    super(message);
    this.name = 'SidecarError';
  }
}

/** The netem parameters of a fault, as the sidecar passes them to `tc qdisc replace … netem`. */
export function netemArgs(fault: Fault): string[] | undefined {
  switch (fault.kind) {
    case 'latency':
      // Without a distribution table netem's jitter is uniform within ±jitter, as the local proxy's.
      return fault.jitterMs > 0
        ? ['delay', `${fault.delayMs}ms`, `${fault.jitterMs}ms`]
        : ['delay', `${fault.delayMs}ms`];
    case 'loss':
      return ['loss', `${fault.percent}%`];
    default:
      return undefined;
  }
}

/** The sidecar's `--for`: whole seconds, rounded up so that the lease is never shorter than asked. */
export function leaseArg(leaseMs: number): string {
  return `${Math.max(1, Math.ceil(leaseMs / 1000))}s`;
}

export function injectorOfKube(kind: Fault['kind']): Injector {
  switch (kind) {
    case 'latency':
    case 'loss':
      return 'tc-netem';
    case 'http-error':
    case 'worker-panic':
      return 'fault-agent';
    case 'kill':
      return 'fault-sidecar';
  }
}

/**
 * The backend pods that keep the lab from being settled, each with why (`like-7d…: Ready=False
 * ContainersNotReady; like: CrashLoopBackOff`), and a service that has no pod at all. A pod being
 * deleted or that has ended (evicted) is not waited for: its Deployment runs another.
 */
export function unsettled(pods: readonly PodInfo[]): string[] {
  const live = pods.filter((p) => !p.terminating && p.phase !== 'Failed' && p.phase !== 'Succeeded');
  return BACKENDS.flatMap((service) => {
    const mine = live.filter((p) => p.labels[LABELS.name] === service);
    if (mine.length === 0) return [`${service}: no pod`];
    return mine
      .filter((p) => !p.ready)
      .sort((a, b) => a.name.localeCompare(b.name))
      .map((p) => `${p.name}: ${podProblem(p)}`);
  });
}

/** Running pods of a backend, not being deleted, in name order. */
export function podsOfService(pods: readonly PodInfo[], service: BackendName): PodInfo[] {
  return pods
    .filter((p) => p.labels[LABELS.name] === service && p.phase === 'Running' && !p.terminating)
    .sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * The pods a fault is for: every running pod of its service when it names every instance;
 * otherwise `coin-N` is the N-th pod in name order (a pod's own name is taken as it is).
 */
export function podsForFault(fault: Fault, pods: readonly PodInfo[]): string[] {
  const ofService = podsOfService(pods, fault.service).map((p) => p.name);
  const every = instanceIds(fault.service);
  if (ofService.length === 0) {
    throw new Error(`${fault.service} has no running pod: see kubectl -n <namespace> get pods`);
  }
  if (every.length === fault.instances.length && every.every((id) => fault.instances.includes(id))) {
    return ofService;
  }
  return fault.instances.map((instance) => {
    if (ofService.includes(instance)) return instance;
    const n = Number(/^(.+)-(\d+)$/.exec(instance)?.[2] ?? Number.NaN);
    const pod = ofService[n - 1];
    if (!pod || !instance.startsWith(`${fault.service}-`)) {
      throw new Error(
        `no pod for instance ${instance}: ${fault.service} has ${ofService.length} running pod${ofService.length === 1 ? '' : 's'} (${ofService.join(', ')}); ${fault.service}-N is the N-th in name order`,
      );
    }
    return pod;
  });
}

/** The time gateways spent calling one dependency, as sums so that windows can be subtracted. */
export interface DependencyTally {
  readonly sumMs: number;
  readonly count: number;
}

/**
 * The gateways without deadlines (naive, parallel) wait for every answer, so the time they
 * spent on a dependency is the latency it had, network included: what calibration wants.
 * The resilient gateway's calls are cut at its deadlines and would hide the added latency.
 */
export const CALIBRATING_GATEWAYS: readonly Strategy[] = ['naive', 'parallel'];

export function dependencyTallies(samples: readonly Sample[]): Record<BackendName, DependencyTally> {
  return Object.fromEntries(
    BACKENDS.map((service) => {
      const mine = (l: Readonly<Record<string, string>>) => l.dependency === service;
      return [
        service,
        {
          sumMs: sumOf(samples, 'gateway_dependency_duration_seconds_sum', mine) * 1000,
          count: sumOf(samples, 'gateway_dependency_duration_seconds_count', mine),
        },
      ];
    }),
  ) as Record<BackendName, DependencyTally>;
}

/**
 * Calibration of latency from the gateways' side: the mean time a call to the dependency took
 * during the fault, less its mean over the baseline window before it.
 */
export function observedAddedLatency(
  fault: { readonly base: DependencyTally; readonly now: DependencyTally },
  baseline: { readonly from: DependencyTally; readonly to: DependencyTally },
): Record<string, number> {
  const count = fault.now.count - fault.base.count;
  const baselineCount = baseline.to.count - baseline.from.count;
  if (count <= 0 || baselineCount <= 0) return { samples: Math.max(0, count) };
  const during = (fault.now.sumMs - fault.base.sumMs) / count;
  const before = (baseline.to.sumMs - baseline.from.sumMs) / baselineCount;
  return { addedLatencyMs: Math.round((during - before) * 100) / 100, samples: count };
}

/** What to make of a failing `tc` the sidecar reports: the one failure users cannot guess. */
function netemHint(stderr: string): string {
  return /qdisc kind is unknown|qdisc not found/i.test(stderr)
    ? ": the kernel of the cluster's node has no sch_netem (kind nodes share the host's kernel), so latency and loss cannot be injected; on Linux run `sudo modprobe sch_netem` on the host; WSL2 and some VMs lack the module altogether (http-error and kill experiments still work there)"
    : '';
}

function oneLine(text: string): string {
  return text.trim().split('\n').filter(Boolean).join(' / ');
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Timeout of one sidecar command: it runs tc once, or waits up to 10 s for the state lock. */
const SIDECAR_TIMEOUT_MS = 20_000;
/** How often settle() looks at the pods, and how often it repeats a progress line that did not change. */
const SETTLE_POLL_MS = 500;
const SETTLE_REPEAT_MS = 15_000;

class KubeTarget implements Target {
  readonly name = 'kind';
  readonly #options: KubeTargetOptions;
  readonly #namespace: string;
  #cluster: Cluster | undefined;
  #ownCluster = false;
  #token: string | undefined;
  /** Backend pods as last listed. */
  #pods: PodInfo[] = [];
  readonly #forwards = new Map<string, Promise<PortForward>>();
  /** Per pod: the netem faults this target keeps there, by lease id (the sidecar holds one qdisc). */
  readonly #netem = new Map<string, Map<string, readonly string[]>>();
  /**
   * Per pod seen during the run: its service, its main container's highest restartCount seen, and
   * what the count is at least since this target killed it (see "Restarts" above).
   */
  readonly #restarts = new Map<string, { service: BackendName; seen: number; killed: number }>();
  readonly #panics = new Map<string, { service: BackendName; counter: RestartSafeCounter }>();
  /** Per applied http-error (`id@pod`): the agent's reading at injection. */
  readonly #errorBase = new Map<string, ReturnType<typeof readingOf>>();
  #settingsId: string | undefined;
  /** The kind configuration, read once: it gives the default context and the gateways' host ports. */
  #kindConfig: KindConfig | undefined;
  #gateways: Readonly<Record<Strategy, string>> | undefined;
  /** The gateways' dependency tallies at the last two counters() calls: the window before a fault. */
  #tallies: (Record<BackendName, DependencyTally> | undefined)[] = [];
  /**
   * Per service: the faults of this target on it now, and how many tallies had been taken when the
   * last one ended (a kill ends at once): a window with a fault is no baseline.
   */
  readonly #faultsOn = new Map<BackendName, { active: number; endedAt: number }>();
  #talliesTaken = 0;
  /** Per latency fault id: the gateways' tally at injection and the baseline window before it. */
  readonly #latencyBase = new Map<
    string,
    { service: BackendName; base: DependencyTally; baseline: { from: DependencyTally; to: DependencyTally } }
  >();
  /** The lease of the last injection or renewal: what a pod's remaining netem faults keep when one is removed. */
  #leaseMs = 10_000;

  constructor(options: KubeTargetOptions) {
    this.#options = options;
    this.#namespace = options.namespace ?? DEFAULT_NAMESPACE;
  }

  unsupported(_kind: Fault['kind']): string | undefined {
    // Whether the node's kernel has sch_netem is the doctor's to check; a first netem apply that
    // fails on it says so (netemHint).
    return undefined;
  }

  // -------------------------------------------------------------------------------------------------------
  // Prepare

  async prepare(progress: (line: string) => void, signal: AbortSignal): Promise<TargetInfo> {
    const cluster = await this.#connect();
    const ns = this.#namespace;
    const where = `namespace ${ns} of context ${cluster.context}`;
    try {
      await cluster.version(signal);
    } catch (err) {
      throw new Error(
        `cannot reach the cluster of context ${cluster.context} (${cluster.server}): ${(err as Error).message}; ${this.#onKind() ? 'is the kind cluster running? (kind get clusters)' : 'is the cluster running, and reachable from here?'}`,
      );
    }
    const labPods = await cluster.listPods(ns, `${LABELS.partOf}=${PART_OF}`, signal);
    if (labPods.length === 0) {
      throw new Error(`the lab is not deployed in ${where}: deploy it first with ${UP_HINT}`);
    }
    const deployments = [...BACKENDS, ...STRATEGIES.map((s) => `gateway-${s}`)];
    const readyTimeoutMs = this.#options.readyTimeoutMs ?? 60_000;
    let lastLine = '';
    try {
      await cluster.waitForRollouts(ns, deployments, {
        timeoutMs: readyTimeoutMs,
        signal,
        progress: (states) => {
          const waiting = states.filter((s) => !s.done).map((s) => `${s.name} ${s.ready}/${s.desired}`);
          const line = waiting.length > 0 ? `waiting for ${waiting.join(', ')}` : '';
          if (line && line !== lastLine) progress(`lab in ${where}: ${line}`);
          lastLine = line;
        },
      });
    } catch (err) {
      if (err instanceof RolloutTimeoutError) {
        throw new Error(
          `the lab in ${where} is not ready after ${formatDuration(readyTimeoutMs)}: ${err.message}; see kubectl -n ${ns} get pods, or redeploy with ${UP_HINT}`,
        );
      }
      throw err;
    }
    const pods = await this.#listBackendPods(signal);
    const missing = BACKENDS.filter((b) => podsOfService(pods, b).length === 0);
    if (missing.length > 0) {
      throw new Error(`no running pod of ${missing.join(', ')} in ${where}: see kubectl -n ${ns} get pods`);
    }
    this.#token = await this.#adminToken(cluster, signal);
    const gateways = this.#options.gatewayUrls ?? (await this.#gatewayUrls(cluster, signal));
    await waitForGateways(gateways, signal, this.#unreachableWhy());
    progress(
      `using the lab in ${where} (${cluster.server}): ${pods.length} backend pods, gateways at ${STRATEGIES.map((s) => gateways[s]).join(', ')}; it stays up after the run`,
    );
    this.#gateways = gateways;
    return { name: 'kind', gateways };
  }

  async settle(progress: (line: string) => void, signal: AbortSignal): Promise<{ waitedMs: number }> {
    const began = Date.now();
    const timeoutMs = this.#options.settleTimeoutMs ?? 180_000;
    const where = `namespace ${this.#namespace}`;
    let shown = '';
    let shownAt = 0;
    for (let look = 0; ; look++) {
      signal.throwIfAborted();
      const waiting = unsettled(await this.#listBackendPods(signal));
      const waited = Date.now() - began;
      if (waiting.length === 0) {
        if (look > 0)
          progress(`every backend pod in ${where} is Ready again, after ${formatDuration(waited)}`);
        return { waitedMs: look === 0 ? 0 : waited };
      }
      const line = waiting.join('; ');
      if (waited >= timeoutMs) {
        throw new Error(
          `the lab in ${where} did not settle: after ${formatDuration(timeoutMs)}, ${waiting.length} backend pod${waiting.length === 1 ? ' is' : 's are'} still not Ready (${line}); a pod in CrashLoopBackOff restarts a process that keeps dying: \`kubectl -n ${this.#namespace} logs <pod> -c <service> --previous\` shows its last words`,
        );
      }
      if (line !== shown || Date.now() - shownAt >= SETTLE_REPEAT_MS) {
        progress(
          `waiting for backend pods to be Ready in ${where} (${formatDuration(waited)} so far): ${line}`,
        );
        shown = line;
        shownAt = Date.now();
      }
      // An abort ends the pause at once; the loop's first line then throws the signal's reason.
      await delay(SETTLE_POLL_MS, undefined, { signal }).catch(() => undefined);
    }
  }

  async #connect(): Promise<Cluster> {
    if (this.#cluster) return this.#cluster;
    if (this.#options.cluster) {
      this.#cluster = this.#options.cluster;
      return this.#cluster;
    }
    // Its errors say what to do already (no kubeconfig, no such context: create the cluster).
    const { connectCluster } = await import('./client.ts');
    // Without --context: the context kind wrote for the cluster of the kind configuration.
    this.#cluster = connectCluster({ context: this.#options.context ?? this.#kind().context });
    this.#ownCluster = true;
    return this.#cluster;
  }

  /**
   * Whether the cluster is the kind configuration's: no --context, or that configuration's own. A
   * configuration that cannot be read is no kind cluster's when a context is given.
   */
  #onKind(): boolean {
    if (this.#options.context === undefined) return true;
    try {
      return this.#options.context === this.#kind().context;
    } catch {
      return false;
    }
  }

  async #gatewayUrls(cluster: Cluster, signal: AbortSignal): Promise<Record<Strategy, string>> {
    if (this.#onKind()) return gatewayUrls(this.#kind());
    const host = nodePortHost(await cluster.listNodes(signal), this.#options.gatewayHost, cluster.context);
    return nodePortUrls(host).gateways;
  }

  /** Why the gateways may not answer where they are looked for: what to check. */
  #unreachableWhy(): string {
    if (!this.#onKind()) {
      return this.#options.gatewayHost?.trim()
        ? `${GATEWAY_HOST_ENV} (${this.#options.gatewayHost.trim()}) must reach the cluster's NodePorts from this machine`
        : `the node's InternalIP must be reachable from this machine; where it is not, set ${GATEWAY_HOST_ENV} to a host that reaches the cluster's NodePorts (an SSH tunnel, an external address opened for them)`;
    }
    const kindConfig = this.#options.kindConfig ?? DEFAULT_KIND_CONFIG;
    return kindConfig === DEFAULT_KIND_CONFIG
      ? 'the cluster must be created with kind/cluster.yaml, whose extraPortMappings give the gateways their host ports (kind create cluster --config kind/cluster.yaml), and those ports must be free (a cluster created with another kind configuration: set CHAOS_LAB_KIND_CONFIG to that file)'
      : `the host ports are those of ${kindConfig}'s extraPortMappings (CHAOS_LAB_KIND_CONFIG): the cluster must be created with that file, and those ports must be free`;
  }

  #kind(): KindConfig {
    this.#kindConfig ??= readKindConfig(this.#options.kindConfig ?? DEFAULT_KIND_CONFIG);
    return this.#kindConfig;
  }

  /**
   * The admin token from the lab's Secret, which the pods read when they started; else the
   * values `npm run synth` kept in the home, for a client that cannot read Secrets.
   */
  async #adminToken(cluster: Cluster, signal: AbortSignal): Promise<string> {
    const where = `Secret ${this.#namespace}/${LAB_SECRET_NAME}`;
    if (cluster.readSecret) {
      let data: Record<string, string>;
      try {
        data = await cluster.readSecret(this.#namespace, LAB_SECRET_NAME, signal);
      } catch (err) {
        throw new Error(`cannot read the ${where}: ${(err as Error).message}; redeploy with ${UP_HINT}`);
      }
      const token = data[ADMIN_TOKEN_KEY];
      if (!token) throw new Error(`the ${where} has no ${ADMIN_TOKEN_KEY}; redeploy with ${UP_HINT}`);
      return token;
    }
    const file = path.join(this.#options.home, 'kind-secrets.json');
    try {
      const token = (JSON.parse(readFileSync(file, 'utf8')) as { adminToken?: unknown }).adminToken;
      if (typeof token === 'string' && token !== '') return token;
      throw new Error('no adminToken in it');
    } catch (err) {
      throw new Error(
        `cannot read the admin token: this client cannot read the ${where}, and ${file} gives none (${(err as Error).message}); redeploy with ${UP_HINT}`,
      );
    }
  }

  // -------------------------------------------------------------------------------------------------------
  // Pods, forwards, sidecar

  #clusterNow(): Cluster {
    if (!this.#cluster) throw new Error('the kind target is not prepared: call prepare() first');
    return this.#cluster;
  }

  async #listBackendPods(signal?: AbortSignal): Promise<PodInfo[]> {
    const pods = await this.#clusterNow().listPods(
      this.#namespace,
      `${LABELS.partOf}=${PART_OF},${LABELS.component}=backend`,
      signal,
    );
    this.#pods = pods.filter((p) => isBackendName(p.labels[LABELS.name] ?? ''));
    return this.#pods;
  }

  async #runningBackendPods(): Promise<PodInfo[]> {
    const pods = await this.#listBackendPods();
    return BACKENDS.flatMap((b) => podsOfService(pods, b));
  }

  #serviceOf(pod: string): BackendName {
    const service = this.#pods.find((p) => p.name === pod)?.labels[LABELS.name];
    if (!service || !isBackendName(service)) throw new Error(`pod ${pod} is not a backend pod of the lab`);
    return service;
  }

  /** The pod's fault agent, through this run's forward to its service port (opened on first use). */
  async #agent(pod: string): Promise<AdminTarget> {
    let forward = this.#forwards.get(pod);
    if (!forward) {
      const port = topology.backends[this.#serviceOf(pod)].port;
      forward = this.#clusterNow().portForward(this.#namespace, pod, port);
      this.#forwards.set(pod, forward);
      // A failed forward is tried again at the next call.
      forward.catch(() => this.#forwards.delete(pod));
    }
    try {
      return { id: pod, url: (await forward).url };
    } catch (err) {
      throw new AdminError(pod, `${pod}: no port-forward: ${(err as Error).message}`);
    }
  }

  async #closeForward(pod: string): Promise<void> {
    const forward = this.#forwards.get(pod);
    this.#forwards.delete(pod);
    await forward?.then((f) => f.close()).catch(() => {});
  }

  async #sidecar(pod: string, args: readonly string[]): Promise<ExecResult> {
    const command = `fault-sidecar ${args.join(' ')}`;
    let result: ExecResult;
    try {
      result = await this.#clusterNow().exec(
        this.#namespace,
        pod,
        FAULT_SIDECAR_CONTAINER,
        ['fault-sidecar', ...args],
        {
          timeoutMs: SIDECAR_TIMEOUT_MS,
        },
      );
    } catch (err) {
      const gone = err instanceof KubeError && err.status === 404;
      throw new SidecarError(
        pod,
        `pod ${pod}: ${command} could not run: ${(err as Error).message}`,
        undefined,
        gone,
      );
    }
    if (result.exitCode !== 0) {
      throw new SidecarError(
        pod,
        `pod ${pod}: ${command} exited ${result.exitCode}: ${oneLine(result.stderr) || '(no output)'}${netemHint(result.stderr)}`,
        result.exitCode,
      );
    }
    return result;
  }

  /** Puts the pod's netem faults (all of them: one qdisc holds them) on a lease, or clears it when none is left. */
  async #setNetem(
    pod: string,
    faults: ReadonlyMap<string, readonly string[]>,
    leaseMs: number,
  ): Promise<void> {
    const args = [...faults.values()].flat();
    if (args.length === 0) await this.#sidecar(pod, ['clear']);
    else await this.#sidecar(pod, ['apply', '--for', leaseArg(leaseMs), ...args]);
    if (faults.size === 0) this.#netem.delete(pod);
    else this.#netem.set(pod, new Map(faults));
  }

  // -------------------------------------------------------------------------------------------------------
  // Settings

  async applySettings(settings: { readonly workerRecovery?: boolean }, leaseMs: number, id: string) {
    const { workerRecovery } = settings;
    if (workerRecovery === undefined) return;
    this.#settingsId = id;
    const agents = new AgentClient(this.#tokenNow());
    const pods = await this.#runningBackendPods();
    const { failed } = await onEvery(
      pods.map((p) => ({ id: p.name, url: '' })),
      async (p) => agents.setRecovery(await this.#agent(p.id), workerRecovery, leaseMs),
    );
    // A pod restarting its container gets the override at the next renewal.
    refusals(`settings ${id} (workerRecovery ${workerRecovery ? 'on' : 'off'})`, failed);
  }

  async clearSettings(): Promise<void> {
    const agents = new AgentClient(this.#tokenNow());
    const pods = await this.#runningBackendPods();
    const { failed } = await onEvery(
      pods.map((p) => ({ id: p.name, url: '' })),
      async (p) => agents.resetSettings(await this.#agent(p.id)),
    );
    refusals('clearing the settings', failed);
    this.#settingsId = undefined;
  }

  #tokenNow(): string {
    if (this.#token === undefined) throw new Error('the kind target is not prepared: call prepare() first');
    return this.#token;
  }

  // -------------------------------------------------------------------------------------------------------
  // Faults

  async inject(fault: Fault, id: string, leaseMs: number): Promise<AppliedFault[]> {
    const pods = podsForFault(fault, await this.#listBackendPods());
    const injector = injectorOfKube(fault.kind);
    const injectedAt = new Date().toISOString();
    const applied = pods.map((pod): AppliedFault => ({ fault, instance: pod, injector, id, injectedAt }));
    const what = `injecting ${fault.kind} ${id} on ${fault.service}`;
    if (fault.kind === 'kill') {
      this.#faultEnded(fault.service, 0);
      await this.#kill(fault.service, pods);
      return applied;
    }
    const netem = netemArgs(fault);
    if (netem) {
      this.#leaseMs = leaseMs;
      if (fault.kind === 'latency') await this.#rememberLatencyBase(fault, id, pods);
      const results = await Promise.allSettled(
        pods.map((pod) => this.#setNetem(pod, new Map(this.#netem.get(pod) ?? []).set(id, netem), leaseMs)),
      );
      const failed = results.flatMap((r) => (r.status === 'rejected' ? [{ error: r.reason as Error }] : []));
      if (failed.length > 0) {
        // All or nothing: a fault on half the pods would make any measurement misleading.
        await this.#dropNetem(
          applied.filter((_, i) => results[i]?.status === 'fulfilled'),
          leaseMs,
        ).catch(() => {});
        this.#latencyBase.delete(id);
        throw combined(what, failed);
      }
      this.#faultStarted(fault.service);
      return applied;
    }
    const agents = new AgentClient(this.#tokenNow());
    const body = leaseBody(fault, leaseMs);
    const { ok, failed } = await onEvery(
      pods.map((pod) => ({ id: pod, url: '' })),
      async (p) => agents.put(await this.#agent(p.id), id, body!),
    );
    if (failed.length > 0) {
      await onEvery(
        ok.filter((o) => o.value.created).map((o) => o.target),
        async (p) => agents.remove(await this.#agent(p.id), id),
      );
      throw combined(what, failed);
    }
    if (fault.kind === 'http-error') {
      // Read once the leases are on: every request the agents answer from here on met the fault
      // (but for the few in flight now), so the observed share is the configured one.
      try {
        await this.#rememberErrorBase(applied);
      } catch (err) {
        await onEvery(
          pods.map((pod) => ({ id: pod, url: '' })),
          async (p) => agents.remove(await this.#agent(p.id), id),
        );
        throw err;
      }
    }
    this.#faultStarted(fault.service);
    return applied;
  }

  #faultStarted(service: BackendName): void {
    const on = this.#faultsOn.get(service) ?? { active: 0, endedAt: -1 };
    this.#faultsOn.set(service, { ...on, active: on.active + 1 });
  }

  #faultEnded(service: BackendName, faults: number): void {
    const on = this.#faultsOn.get(service) ?? { active: faults, endedAt: -1 };
    this.#faultsOn.set(service, { active: Math.max(0, on.active - faults), endedAt: this.#talliesTaken });
  }

  /**
   * SIGKILL of the service's process in each pod, by its fault sidecar: a crash, as in the local
   * lab, not a graceful shutdown that drains connections first. The pod, its qdisc and its
   * port-forward stay; the kubelet restarts the container.
   */
  async #kill(service: BackendName, pods: readonly string[]): Promise<void> {
    this.#seeRestarts(this.#pods);
    const results = await Promise.allSettled(pods.map((pod) => this.#sidecar(pod, ['kill-main', service])));
    const failed: { error: Error }[] = [];
    results.forEach((r, i) => {
      const pod = pods[i] as string;
      if (r.status === 'rejected') {
        failed.push({ error: r.reason as Error });
        return;
      }
      const entry = this.#restarts.get(pod) ?? { service, seen: 0, killed: 0 };
      this.#restarts.set(pod, { ...entry, killed: Math.max(entry.seen, entry.killed) + 1 });
    });
    if (failed.length > 0) throw combined(`killing ${service}'s process in ${pods.join(', ')}`, failed);
  }

  /** Takes the main containers' restartCounts in: each pod's highest count seen. */
  #seeRestarts(pods: readonly PodInfo[]): void {
    for (const pod of pods) {
      const service = pod.labels[LABELS.name] as BackendName;
      const entry = this.#restarts.get(pod.name) ?? { service, seen: 0, killed: 0 };
      this.#restarts.set(pod.name, { ...entry, seen: Math.max(entry.seen, pod.restarts[service] ?? 0) });
    }
  }

  async #rememberErrorBase(applied: readonly AppliedFault[]): Promise<void> {
    const { ok, failed } = await onEvery(
      applied.map((a) => ({ id: a.instance, url: '', key: `${a.id}@${a.instance}` })),
      (t) => this.#scrape(t.id),
    );
    if (failed.length > 0) throw combined('reading the metrics before an http-error', failed);
    for (const o of ok) this.#errorBase.set(o.target.key, o.value);
  }

  async #scrape(pod: string): Promise<ReturnType<typeof readingOf>> {
    const agent = await this.#agent(pod);
    let res: Response;
    try {
      res = await fetch(`${agent.url}/metrics`, { signal: AbortSignal.timeout(3_000) });
    } catch (err) {
      throw new AdminError(pod, `${pod} (${agent.url}/metrics): ${(err as Error).message}`);
    }
    const text = await res.text();
    if (!res.ok) throw new AdminError(pod, `${pod} answered ${res.status} to /metrics`, res.status);
    return readingOf(parsePromText(text));
  }

  /** Takes `applied` off their pods' qdiscs: the pod's other faults stay, on the lease they had. */
  async #dropNetem(applied: readonly AppliedFault[], leaseMs: number): Promise<void> {
    const byPod = groupByPod(applied.filter((a) => a.injector === 'tc-netem'));
    const results = await Promise.allSettled(
      [...byPod].map(async ([pod, mine]) => {
        const rest = new Map(this.#netem.get(pod) ?? []);
        for (const a of mine) rest.delete(a.id);
        try {
          await this.#setNetem(pod, rest, leaseMs);
        } catch (err) {
          // A pod that is gone took its qdisc with it.
          if (err instanceof SidecarError && err.gone) this.#netem.delete(pod);
          else throw err;
        }
      }),
    );
    const failed = results.flatMap((r) => (r.status === 'rejected' ? [{ error: r.reason as Error }] : []));
    if (failed.length > 0) throw combined('removing the netem faults', failed);
  }

  /**
   * Renews every lease. A sidecar with nothing to renew (exit 3: the lease ran out, say after
   * renewals that failed) gets the fault applied again; a pod that is gone took its fault along.
   */
  async renew(applied: readonly AppliedFault[], leaseMs: number): Promise<void> {
    this.#leaseMs = leaseMs;
    const netemPods = [...groupByPod(applied.filter((a) => a.injector === 'tc-netem')).keys()];
    const agentLeases = applied.filter((a) => a.injector === 'fault-agent');
    const agents = new AgentClient(this.#tokenNow());
    const [netem, agent] = await Promise.all([
      Promise.allSettled(
        netemPods.map(async (pod) => {
          try {
            await this.#sidecar(pod, ['renew', '--for', leaseArg(leaseMs)]);
          } catch (err) {
            if (err instanceof SidecarError && err.gone) return;
            if (!(err instanceof SidecarError && err.exitCode === 3)) throw err;
            await this.#setNetem(pod, this.#netem.get(pod) ?? new Map(), leaseMs);
          }
        }),
      ),
      onEvery(
        agentLeases.map((a) => ({ id: a.instance, url: '', applied: a })),
        async (t) => agents.put(await this.#agent(t.id), t.applied.id, leaseBody(t.applied.fault, leaseMs)!),
      ),
    ]);
    const failed = [
      ...netem.flatMap((r) => (r.status === 'rejected' ? [{ error: r.reason as Error }] : [])),
      ...agent.failed.filter((f) => !isUnreachable(f.error)),
    ];
    if (failed.length > 0) throw combined('renewing the fault leases', failed);
  }

  async remove(applied: readonly AppliedFault[]): Promise<void> {
    const leases = new Map(applied.filter((a) => a.fault.kind !== 'kill').map((a) => [a.id, a.fault]));
    for (const { service } of leases.values()) this.#faultEnded(service, 1);
    const agentLeases = applied.filter((a) => a.injector === 'fault-agent');
    const agents = new AgentClient(this.#tokenNow());
    const [netem, agent] = await Promise.allSettled([
      this.#dropNetem(applied, this.#leaseMs),
      onEvery(
        agentLeases.map((a) => ({ id: a.instance, url: '', applied: a })),
        async (t) => agents.remove(await this.#agent(t.id), t.applied.id),
      ),
    ]);
    if (netem.status === 'rejected') throw netem.reason;
    // An unreachable agent lost its faults with its process, or will when its lease ends.
    if (agent.status === 'fulfilled') refusals('removing the faults', agent.value.failed);
  }

  // -------------------------------------------------------------------------------------------------------
  // Counters, calibration

  async counters(): Promise<Readonly<Record<BackendName, ServiceCounters>>> {
    // The runner calls counters() at each phase's end: the gateways' figures then, kept two deep,
    // give the window of the phase before a fault.
    this.#tallies = [...this.#tallies, await this.#gatewayTallies()].slice(-2);
    this.#talliesTaken++;
    const pods = await this.#listBackendPods();
    this.#seeRestarts(pods);
    const running = BACKENDS.flatMap((b) => podsOfService(pods, b));
    const scraped = await onEvery(
      running.map((p) => ({ id: p.name, url: '' })),
      (t) => this.#scrape(t.id),
    );
    for (const { target, value } of scraped.ok) {
      const entry = this.#panics.get(target.id) ?? {
        service: this.#serviceOf(target.id),
        counter: new RestartSafeCounter(),
      };
      entry.counter.update(value.panicsRecovered, value.process);
      this.#panics.set(target.id, entry);
    }
    // A pod that cannot be scraped now (restarting, gone) keeps the count last seen.
    const sum = (service: BackendName, values: Iterable<{ service: BackendName; n: number }>) =>
      [...values].filter((v) => v.service === service).reduce((n, v) => n + v.n, 0);
    const result = Object.fromEntries(
      BACKENDS.map((service) => {
        const restarts = sum(
          service,
          [...this.#restarts.values()].map((r) => ({ service: r.service, n: Math.max(r.seen, r.killed) })),
        );
        const panicsRecovered = sum(
          service,
          [...this.#panics.values()].map((p) => ({ service: p.service, n: p.counter.total() })),
        );
        return [service, { restarts, panicsRecovered }];
      }),
    );
    return result as Record<BackendName, ServiceCounters>;
  }

  /** Both gateways' tallies summed; undefined when one cannot be read (the figure is then not given). */
  async #gatewayTallies(): Promise<Record<BackendName, DependencyTally> | undefined> {
    const gateways = this.#gateways;
    if (!gateways) return undefined;
    try {
      const texts = await Promise.all(
        CALIBRATING_GATEWAYS.map(async (g) => {
          const res = await fetch(`${gateways[g]}/metrics`, { signal: AbortSignal.timeout(3_000) });
          if (!res.ok) throw new Error(`${res.status}`);
          return res.text();
        }),
      );
      return dependencyTallies(texts.flatMap((t) => parsePromText(t)));
    } catch {
      return undefined;
    }
  }

  /**
   * A latency fault is calibrated when it is on every pod of its service (else the gateways'
   * calls mix slow and fast pods) and the window before it had no latency or loss fault on
   * that service: the figures then compare like with like.
   */
  async #rememberLatencyBase(fault: Fault, id: string, pods: readonly string[]): Promise<void> {
    const every = podsOfService(this.#pods, fault.service).map((p) => p.name);
    const [from, to] = this.#tallies;
    const on = this.#faultsOn.get(fault.service);
    const clean = !on || (on.active === 0 && on.endedAt <= this.#talliesTaken - 2);
    if (!from || !to || !clean || every.some((p) => !pods.includes(p))) return;
    const now = await this.#gatewayTallies();
    if (!now) return;
    this.#latencyBase.set(id, {
      service: fault.service,
      base: now[fault.service],
      baseline: { from: from[fault.service], to: to[fault.service] },
    });
  }

  /**
   * http-error: the agents' own figures, as in the local lab. latency: what the gateways without
   * deadlines saw of the dependency, against the window before the fault (netem itself keeps no
   * per-packet figures). loss: nothing — a lost segment is retransmitted, and what is left is
   * latency that cannot be told from the rest; no figure is better than the configured one
   * passed off as measured.
   */
  async observe(applied: readonly AppliedFault[]): Promise<Readonly<Record<string, number>>> {
    const first = applied[0];
    if (first?.fault.kind === 'latency') {
      const remembered = this.#latencyBase.get(first.id);
      const now = remembered && (await this.#gatewayTallies());
      if (!remembered || !now) return {};
      return observedAddedLatency(
        { base: remembered.base, now: now[remembered.service] },
        remembered.baseline,
      );
    }
    const errors = applied.filter((a) => a.fault.kind === 'http-error');
    if (errors.length === 0) return {};
    const { ok, failed } = await onEvery(
      errors.map((a) => ({ id: a.instance, url: '', key: `${a.id}@${a.instance}` })),
      (t) => this.#scrape(t.id),
    );
    if (failed.length > 0) throw combined('observing http-error', failed);
    return observedErrors(ok.map((o) => ({ now: o.value, base: this.#errorBase.get(o.target.key) })));
  }

  // -------------------------------------------------------------------------------------------------------
  // Audit, clear, release

  async audit(): Promise<LeftoverFault[]> {
    const running = await this.#runningBackendPods();
    const pods = running.map((p) => p.name);
    const agents = new AgentClient(this.#tokenNow());
    const leftovers: LeftoverFault[] = [];
    const statuses = await Promise.allSettled(pods.map((pod) => this.#sidecar(pod, ['status'])));
    const sidecarFailures: { error: Error }[] = [];
    statuses.forEach((r, i) => {
      const pod = pods[i] as string;
      if (r.status === 'rejected') {
        if (!(r.reason instanceof SidecarError && r.reason.gone))
          sidecarFailures.push({ error: r.reason as Error });
        return;
      }
      const leftover = this.#netemLeftover(pod, r.value.stdout);
      if (leftover) leftovers.push(leftover);
    });
    // The agents' faults live in the service process: a pod that is not ready is starting one
    // (a replacement, a restarted container), which has none yet. A pod that was ready a moment
    // ago may still be going down: it has no faults either, but that is only known once it answers.
    let pending = running.filter((p) => p.ready).map((p) => ({ id: p.name, url: '' }));
    let failed: { error: AdminError }[] = [];
    for (let attempt = 0; attempt < 4 && pending.length > 0; attempt++) {
      if (attempt > 0) await sleep(1_000);
      const round = await onEvery(pending, async (t) => agents.view(await this.#agent(t.id)));
      for (const { target, value } of round.ok) {
        leftovers.push(...leftoversOfAgent(target.id, value, this.#settingsId));
      }
      failed = round.failed;
      pending = round.failed.map((f) => f.target);
      if (failed.some((f) => !isUnreachable(f.error))) break;
    }
    const all = [...sidecarFailures, ...failed];
    if (all.length > 0) throw combined('auditing the lab for leftover faults', all);
    return leftovers;
  }

  #netemLeftover(pod: string, stdout: string): LeftoverFault | undefined {
    let status: SidecarStatus;
    try {
      status = JSON.parse(stdout) as SidecarStatus;
    } catch {
      throw new SidecarError(pod, `pod ${pod}: fault-sidecar status printed no JSON: ${oneLine(stdout)}`);
    }
    if (!status.netemQdisc && status.lease === null) return undefined;
    const ids = [...(this.#netem.get(pod)?.keys() ?? [])];
    const netem = status.lease?.netem ?? status.qdisc;
    return {
      instance: pod,
      injector: 'tc-netem',
      id: ids.join(', ') || 'tc-netem',
      kind: `netem (${netem})`,
    };
  }

  async clearAll(): Promise<void> {
    const pods = (await this.#runningBackendPods()).map((p) => p.name);
    const agents = new AgentClient(this.#tokenNow());
    const [sidecars, agent] = await Promise.all([
      Promise.allSettled(pods.map((pod) => this.#sidecar(pod, ['clear']))),
      onEvery(
        pods.map((pod) => ({ id: pod, url: '' })),
        async (t) => agents.clear(await this.#agent(t.id)),
      ),
    ]);
    this.#netem.clear();
    this.#settingsId = undefined;
    for (const service of this.#faultsOn.keys()) this.#faultEnded(service, Number.POSITIVE_INFINITY);
    const failed = [
      ...sidecars.flatMap((r) =>
        r.status === 'rejected' && !(r.reason instanceof SidecarError && r.reason.gone)
          ? [{ error: r.reason as Error }]
          : [],
      ),
      // Clearing also drops the settings overrides (the agents' DELETE /__chaos/faults does both).
      ...agent.failed.filter((f) => !isUnreachable(f.error)),
    ];
    if (failed.length > 0) throw combined('clearing every fault', failed);
  }

  async release(): Promise<void> {
    const pods = [...this.#forwards.keys()];
    await Promise.all(pods.map((pod) => this.#closeForward(pod)));
    this.#netem.clear();
    this.#errorBase.clear();
    this.#latencyBase.clear();
    const cluster = this.#cluster;
    this.#cluster = undefined;
    this.#token = undefined;
    if (cluster && this.#ownCluster) await cluster.close();
  }
}

function groupByPod(applied: readonly AppliedFault[]): Map<string, AppliedFault[]> {
  const byPod = new Map<string, AppliedFault[]>();
  for (const a of applied) byPod.set(a.instance, [...(byPod.get(a.instance) ?? []), a]);
  return byPod;
}

/**
 * Each gateway must answer /readyz where it is looked for; a few seconds are allowed for a pod just
 * started. `why`: what to check when one does not answer.
 */
async function waitForGateways(
  gateways: Readonly<Record<Strategy, string>>,
  signal: AbortSignal,
  why: string,
): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (const strategy of STRATEGIES) {
    const url = `${gateways[strategy]}/readyz`;
    let last = '';
    for (;;) {
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
        await res.arrayBuffer();
        if (res.ok) break;
        last = `it answered ${res.status}`;
      } catch (err) {
        const cause = (err as { cause?: { code?: string } }).cause?.code;
        last = cause ?? (err as Error).message;
      }
      if (signal.aborted) throw new Error('interrupted while checking the gateways');
      if (Date.now() >= deadline) {
        throw new Error(`gateway-${strategy} does not answer at ${url} (${last}): ${why}`);
      }
      await sleep(500);
    }
  }
}

/** A Target over the lab deployed on a Kubernetes cluster; constructing it connects to nothing. */
export function createKubeTarget(options: KubeTargetOptions): Target {
  return new KubeTarget(options);
}
