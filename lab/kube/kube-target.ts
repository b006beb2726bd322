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
 *
 * One run per lab: a run holds the lab with the Lease `chaos-lab-run` in its namespace
 * (run-lease.ts), and is watched while it goes (lab-watch.ts): a lab whose namespace or
 * Deployments are gone ends the run at once, as does another run taking the Lease over.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { FAULT_SIDECAR_CONTAINER } from '../../charts/fault-sidecar.ts';
import { LABELS, PART_OF, TRUST_MODE_LABEL } from '../../charts/lab-pod.ts';
import { ADMIN_TOKEN_KEY, LAB_SECRET_NAME } from '../../charts/lab-secret.ts';
import { isTrustMode, type TrustMode } from '../../services/lib/trust.ts';
import { COMPONENTS, FAULT_PROXY_POD_PORTS } from '../../services/names.ts';
import {
  BACKENDS,
  type BackendName,
  isBackendName,
  STRATEGIES,
  type Strategy,
  topology,
} from '../../services/topology.ts';
import { AdminError, type Target as AdminTarget, onEvery } from '../admin-client.ts';
import { CliError } from '../cli-error.ts';
import { formatDuration } from '../duration.ts';
import type { FaultInjector } from '../faults/injector.ts';
import { type AgentInjector, createAgentInjector } from '../faults/injectors/agent.ts';
import { createKillInjector } from '../faults/injectors/kill.ts';
import { createNetemInjector, netemHint, oneLine, SidecarError } from '../faults/injectors/netem.ts';
import { createProxyInjector } from '../faults/injectors/proxy.ts';
import type { InjectorName } from '../faults/kind.ts';
import { type Reading, RestartSafeCounter, readingOf } from '../faults/readings.ts';
import { type AnyFault, type FaultKind, unsupportedBy } from '../faults/registry.ts';
import { parsePromText } from '../prom-text.ts';
import { instanceIds } from '../runner/experiment.ts';
import { RogueTurns, rogueGet } from '../runner/rogue.ts';
import type {
  PrepareOptions,
  RogueAnswer,
  RunHolder,
  ServiceCounters,
  Target,
  TargetInfo,
  TargetInstance,
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
import { runProbes } from './doctor.ts';
import { GatewayCalibration } from './gateway-calibration.ts';
import { GATEWAY_HOST_ENV, gatewayUrls, nodePortHost, nodePortUrls } from './gateway-urls.ts';
import { DEFAULT_KIND_CONFIG, type KindConfig, readKindConfig } from './kind-config.ts';
import { watchLab } from './lab-watch.ts';
import { holdRunLease, type RunLeaseTiming, readRunLease } from './run-lease.ts';

export { gatewayUrls } from './gateway-urls.ts';

export const DEFAULT_NAMESPACE = 'chaos-lab';
/** The injectors of a lab on Kubernetes. */
export const KIND_INJECTORS = ['fault-agent', 'fault-proxy', 'tc-netem', 'fault-sidecar'] as const;
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
  /** The run Lease's duration and renewal (tests). @default run-lease.ts's RUN_LEASE_TIMING: 30 s, renewed every 10 s */
  readonly runLease?: Partial<RunLeaseTiming>;
  /** How often watch() looks at the lab while a run uses it. @default 500 ms */
  readonly watchEveryMs?: number;
}

/** The lab's Deployments: prepare() waits for them, watch() ends the run when one is gone. */
const LAB_DEPLOYMENTS: readonly string[] = [...BACKENDS, ...STRATEGIES.map((s) => `gateway-${s}`)];

export { leaseArg, netemArgs, SidecarError, type SidecarStatus } from '../faults/injectors/netem.ts';
export {
  CALIBRATING_GATEWAYS,
  type DependencyTally,
  dependencyTallies,
  observedAddedLatency,
} from './gateway-calibration.ts';

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
export function podsForFault(
  fault: { readonly service: BackendName; readonly instances: readonly string[] },
  pods: readonly PodInfo[],
): string[] {
  const ofService = podsOfService(pods, fault.service).map((p) => p.name);
  const every = instanceIds(fault.service);
  if (ofService.length === 0) {
    throw new Error(`${fault.service} has no running pod: see kubectl -n <namespace> get pods`);
  }
  const named = fault.instances;
  if (named.length === 0 || (every.length === named.length && every.every((id) => named.includes(id)))) {
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
  /** The gateway pods seen so far (their agents are reached on the gateway's port). */
  readonly #gatewayPods = new Set<string>();
  readonly #forwards = new Map<string, Promise<PortForward>>();
  /**
   * Per pod seen during the run: its service, its main container's highest restartCount seen, and
   * what the count is at least since this target killed it (see "Restarts" above).
   */
  readonly #restarts = new Map<string, { service: BackendName; seen: number; killed: number }>();
  readonly #panics = new Map<string, { service: BackendName; counter: RestartSafeCounter }>();
  /** The kind configuration, read once: it gives the default context and the gateways' host ports. */
  #kindConfig: KindConfig | undefined;
  #gateways: Readonly<Record<Strategy, string>> | undefined;
  readonly #calibration = new GatewayCalibration(() => this.#gateways);
  readonly #agents: AgentInjector;
  /** The doctor's netem probe, run once when a fault asks for netem by name: why it cannot work, if so. */
  #netemProbe: Promise<string | undefined> | undefined;
  /** Why the run Lease is no longer this run's (another run took it over), once it is not. */
  #leaseLost: string | undefined;
  /** The watch under way, told when the Lease is lost. */
  #onLeaseLost: ((why: string) => void) | undefined;
  readonly #injectors: Readonly<Record<(typeof KIND_INJECTORS)[number], FaultInjector>>;

  constructor(options: KubeTargetOptions) {
    this.#options = options;
    this.#namespace = options.namespace ?? DEFAULT_NAMESPACE;
    // The gateways have a fault agent too: a variant's trust mode is a settings lease on them.
    const ready = async () =>
      [...(await this.#runningBackendPods()), ...(await this.#runningGatewayPods())].filter((p) => p.ready);
    this.#agents = createAgentInjector({
      token: () => this.#tokenNow(),
      reach: (pod) => this.#agent(pod),
      // The agents' faults live in the service process: a pod that is not ready is starting one
      // (a replacement, a restarted container), which has none yet.
      instances: async () => (await ready()).map((p) => ({ id: p.name, service: this.#serviceOf(p.name) })),
      scrape: (pod) => this.#scrape(pod),
    });
    const netem = createNetemInjector({
      sidecar: async (pod, args) => (await this.#sidecar(pod, args)).stdout,
      pods: async () => (await this.#runningBackendPods()).map((p) => p.name),
      calibration: {
        before: (applied) => {
          const service = applied[0]?.fault.service;
          const every = service && isBackendName(service) ? podsOfService(this.#pods, service) : [];
          return this.#calibration.before(
            applied,
            every.map((p) => p.name),
          );
        },
        observe: (applied) => this.#calibration.observe(applied),
      },
    });
    // The fault proxy sidecar keeps its own figures (calibration as in the local lab): no gateway
    // calibration to tell.
    const proxy = createProxyInjector({
      token: () => this.#tokenNow(),
      proxies: async () =>
        Promise.all(
          (await this.#runningBackendPods()).map(async (p) => ({
            instance: p.name,
            admin: await this.#forwarded(p.name, FAULT_PROXY_POD_PORTS.admin, 'fault proxy'),
          })),
        ),
    });
    this.#injectors = {
      'fault-agent': this.#tracked(this.#agents),
      'fault-proxy': proxy,
      'tc-netem': this.#tracked(netem),
      'fault-sidecar': createKillInjector('fault-sidecar', (pod) => this.#kill(pod)),
    };
  }

  unsupported(fault: FaultKind | AnyFault): string | undefined {
    // Whether the node's kernel has sch_netem is the doctor's to check; a first netem apply that
    // fails on it says so (netemHint).
    return unsupportedBy({ name: this.name, injectors: this.injectors() }, fault);
  }

  /**
   * netem asked for by name (`injector: netem`): the doctor's netem probe, in a pod of the lab's own
   * image (root with NET_ADMIN, `tc qdisc add … netem`, deleted after), once per target. A node
   * kernel without sch_netem is refused here, before anything starts, with the doctor's words.
   */
  async refusedInjectors(
    asked: readonly InjectorName[],
    signal: AbortSignal,
  ): Promise<Partial<Record<InjectorName, string>>> {
    if (!asked.includes('tc-netem')) return {};
    this.#netemProbe ??= this.#probeNetem(signal);
    const why = await this.#netemProbe;
    return why === undefined ? {} : { 'tc-netem': why };
  }

  async #probeNetem(signal: AbortSignal): Promise<string | undefined> {
    const cluster = await this.#connect();
    const pods = await cluster.listPods(
      this.#namespace,
      `${LABELS.partOf}=${PART_OF},${LABELS.component}=backend`,
      signal,
    );
    const image = pods.map((p) => p.images[FAULT_SIDECAR_CONTAINER]).find((i) => i);
    // No lab deployed: prepare() says so, and what to do.
    if (!image) return undefined;
    const [netem] = await runProbes(cluster, {
      namespace: this.#namespace,
      image,
      networkPolicy: false,
      signal,
    });
    if (!netem || netem.status === 'ok') return undefined;
    return `${netem.detail}${netem.fix ? `; ${netem.fix}` : ''} (the doctor's netem check: npx chaos-lab doctor --target kind)`;
  }

  // -------------------------------------------------------------------------------------------------------
  // One run per lab

  /**
   * The Lease in the lab's namespace (run-lease.ts). It outlives release(): the run releases it
   * after the target, over the same client (a closed client still makes API calls; only its
   * watches, streams and forwards are gone).
   */
  async holdLab(holder: RunHolder): Promise<{ release(): Promise<void> }> {
    let cluster: Cluster;
    try {
      cluster = await this.#connect();
    } catch (err) {
      throw new CliError((err as Error).message);
    }
    this.#leaseLost = undefined;
    return holdRunLease(
      {
        cluster,
        namespace: this.#namespace,
        ...(this.#options.runLease ? { timing: this.#options.runLease } : {}),
        onLost: (why) => {
          this.#leaseLost = why;
          this.#onLeaseLost?.(why);
        },
      },
      holder,
    );
  }

  /** The run holding the lab now; undefined when none does, or the Lease cannot be read (a warning is not worth failing for). */
  async labHolder(): Promise<RunHolder | undefined> {
    try {
      return await readRunLease(await this.#connect(), this.#namespace);
    } catch {
      return undefined;
    }
  }

  /** The lab's namespace and Deployments twice a second (lab-watch.ts), and the run Lease. */
  watch(lost: (why: string) => void): () => void {
    let told = false;
    const once = (why: string) => {
      if (told) return;
      told = true;
      stop();
      lost(why);
    };
    const stopWatching = watchLab(
      {
        cluster: this.#clusterNow(),
        namespace: this.#namespace,
        deployments: LAB_DEPLOYMENTS,
        ...(this.#options.watchEveryMs !== undefined ? { everyMs: this.#options.watchEveryMs } : {}),
      },
      once,
    );
    const stop = () => {
      stopWatching();
      if (this.#onLeaseLost === once) this.#onLeaseLost = undefined;
    };
    this.#onLeaseLost = once;
    if (this.#leaseLost) once(this.#leaseLost);
    return stop;
  }

  // -------------------------------------------------------------------------------------------------------
  // Prepare

  async prepare(
    progress: (line: string) => void,
    signal: AbortSignal,
    _options: PrepareOptions = {},
  ): Promise<TargetInfo> {
    // It never starts a lab: `up --target kind` deploys it.
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
    const deployments = LAB_DEPLOYMENTS;
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
    // The mode `up --trust` deployed, from the pods' label (absent on pods that predate it).
    const trust = pods.map((p) => p.labels[TRUST_MODE_LABEL]).find((t) => t !== undefined && isTrustMode(t));
    return { name: 'kind', gateways, ...(trust ? { trust: trust as TrustMode } : {}) };
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

  /** The gateways' running pods (their fault agents take a variant's settings). */
  async #runningGatewayPods(signal?: AbortSignal): Promise<PodInfo[]> {
    const pods = await this.#clusterNow().listPods(
      this.#namespace,
      `${LABELS.partOf}=${PART_OF},${LABELS.component}=${COMPONENTS.gateway}`,
      signal,
    );
    const running = pods.filter((p) => p.phase === 'Running' && !p.terminating);
    for (const pod of running) this.#gatewayPods.add(pod.name);
    return running;
  }

  #backendOf(pod: string): BackendName {
    const service = this.#serviceOf(pod);
    if (service === 'gateway') throw new Error(`pod ${pod} is a gateway pod, not a backend pod of the lab`);
    return service;
  }

  #serviceOf(pod: string): BackendName | 'gateway' {
    if (this.#gatewayPods.has(pod)) return 'gateway';
    const service = this.#pods.find((p) => p.name === pod)?.labels[LABELS.name];
    if (!service || !isBackendName(service)) throw new Error(`pod ${pod} is not a backend pod of the lab`);
    return service;
  }

  /** The pod's fault agent, through this run's forward to its service port (opened on first use). */
  #agent(pod: string): Promise<AdminTarget> {
    const service = this.#serviceOf(pod);
    const port = service === 'gateway' ? topology.gateway.port : topology.backends[service].port;
    return this.#forwarded(pod, port, 'fault agent');
  }

  readonly #rogueTurns = new RogueTurns();

  /**
   * A rogue client: straight to a backend pod's service port through a port-forward — around
   * the gateways, the fault proxy and the NetworkPolicies (what a client that got past them would
   * send), unsigned, plain HTTP.
   */
  async rogueCall(service: BackendName, path: string, signal: AbortSignal): Promise<RogueAnswer> {
    const pod = this.#rogueTurns.next(service, podsOfService(await this.#listBackendPods(signal), service));
    if (!pod) return { status: null, reason: `no running pod of ${service}` };
    return rogueGet(async () => `${(await this.#agent(pod.name)).url}${path}`, signal);
  }

  /** An admin API in the pod, through this run's forward to `port` (opened on first use). */
  async #forwarded(pod: string, port: number, what: string): Promise<AdminTarget> {
    const key = `${pod}:${port}`;
    let forward = this.#forwards.get(key);
    if (!forward) {
      forward = this.#clusterNow().portForward(this.#namespace, pod, port);
      this.#forwards.set(key, forward);
      // A failed forward is tried again at the next call.
      forward.catch(() => this.#forwards.delete(key));
    }
    try {
      return { id: pod, url: (await forward).url };
    } catch (err) {
      throw new AdminError(
        pod,
        `${pod}: no port-forward to its ${what} (port ${port}): ${(err as Error).message}`,
      );
    }
  }

  async #closeForward(key: string): Promise<void> {
    const forward = this.#forwards.get(key);
    this.#forwards.delete(key);
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

  #tokenNow(): string {
    if (this.#token === undefined) throw new Error('the kind target is not prepared: call prepare() first');
    return this.#token;
  }

  // -------------------------------------------------------------------------------------------------------
  // Instances and injectors

  async instances(service?: BackendName | 'gateway'): Promise<readonly TargetInstance[]> {
    const pods = [...(await this.#runningBackendPods()), ...(await this.#runningGatewayPods())];
    const all = pods.map((p) => ({ id: p.name, service: this.#serviceOf(p.name) }));
    return service ? all.filter((i) => i.service === service) : all;
  }

  async resolve(
    fault: Pick<AnyFault, 'service' | 'instances'> & { readonly kind?: FaultKind },
  ): Promise<readonly string[]> {
    if (fault.service === 'gateway') {
      throw new Error(
        'faults by hand on the gateways are for the local lab; on Kubernetes, fault a backend and the gateways see it on their calls',
      );
    }
    return podsForFault(
      { service: fault.service, instances: fault.instances },
      await this.#listBackendPods(),
    );
  }

  injectors(): readonly FaultInjector[] {
    return Object.values(this.#injectors);
  }

  agents(): AgentInjector {
    return this.#agents;
  }

  /** The injector, telling the latency calibration which services have faults on them. */
  #tracked(injector: FaultInjector): FaultInjector {
    const calibration = this.#calibration;
    return {
      ...injector,
      async apply(applied, leaseMs) {
        const outcomes = await injector.apply(applied, leaseMs);
        const service = applied[0]?.fault.service;
        if (service && isBackendName(service) && outcomes.every((o) => o.status === 'fulfilled')) {
          calibration.faultStarted(service);
        }
        return outcomes;
      },
      async remove(leases) {
        const faults = new Map(leases.map((a) => [a.id, a.fault?.service]));
        for (const service of faults.values()) {
          if (service && isBackendName(service)) calibration.faultEnded(service, 1);
        }
        await injector.remove(leases);
      },
      async clear(scope) {
        if (!scope) calibration.allEnded();
        return injector.clear(scope);
      },
    };
  }

  /**
   * SIGKILL of the service's process in the pod, by its fault sidecar: a crash, as in the local
   * lab, not a graceful shutdown that drains connections first. The pod, its qdisc and its
   * port-forward stay; the kubelet restarts the container.
   */
  async #kill(pod: string): Promise<void> {
    const service = this.#backendOf(pod);
    this.#calibration.faultEnded(service, 0);
    this.#seeRestarts(this.#pods);
    await this.#sidecar(pod, ['kill-main', service]);
    const entry = this.#restarts.get(pod) ?? { service, seen: 0, killed: 0 };
    this.#restarts.set(pod, { ...entry, killed: Math.max(entry.seen, entry.killed) + 1 });
  }

  /** Takes the main containers' exits in (restarts, and a crash whose restart waits): each pod's highest count seen. */
  #seeRestarts(pods: readonly PodInfo[]): void {
    for (const pod of pods) {
      const service = pod.labels[LABELS.name] as BackendName;
      const entry = this.#restarts.get(pod.name) ?? { service, seen: 0, killed: 0 };
      this.#restarts.set(pod.name, { ...entry, seen: Math.max(entry.seen, pod.exits[service] ?? 0) });
    }
  }

  async #scrape(pod: string): Promise<Reading> {
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

  // -------------------------------------------------------------------------------------------------------
  // Counters

  async counters(): Promise<Readonly<Record<BackendName, ServiceCounters>>> {
    // The runner calls counters() at each phase's end: the gateways' figures then give the window
    // of the phase before a fault.
    await this.#calibration.phaseEnded();
    const pods = await this.#listBackendPods();
    this.#seeRestarts(pods);
    const running = BACKENDS.flatMap((b) => podsOfService(pods, b));
    const scraped = await onEvery(
      running.map((p) => ({ id: p.name, url: '' })),
      (t) => this.#scrape(t.id),
    );
    for (const { target, value } of scraped.ok) {
      const entry = this.#panics.get(target.id) ?? {
        service: this.#backendOf(target.id),
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

  // -------------------------------------------------------------------------------------------------------
  // Release

  async release(): Promise<void> {
    const keys = [...this.#forwards.keys()];
    await Promise.all(keys.map((key) => this.#closeForward(key)));
    this.#calibration.forget();
    const cluster = this.#cluster;
    this.#cluster = undefined;
    this.#token = undefined;
    if (cluster && this.#ownCluster) await cluster.close();
  }
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
