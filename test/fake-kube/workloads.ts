/**
 * The fake API server's simulated Deployment controller and kubelet. A Deployment gets
 * `spec.replicas` Pods named `<deployment>-<template hash>-<5 chars>` carrying the template's labels;
 * after `readyDelayMs` each Pod is Running and Ready (or, for a Deployment told to fail, Running
 * with a container waiting in CrashLoopBackOff), and the Deployment's status follows the Pods as the
 * real controller writes it. Every change goes through the store, so watches see it.
 */
import { createHash, randomBytes } from 'node:crypto';
import { resourceByKind } from './resources.ts';
import type { Obj, Store, StoreEvent } from './store.ts';

const DEPLOYMENTS = resourceByKind('apps/v1', 'Deployment')!;
const PODS = resourceByKind('v1', 'Pod')!;
export const NODES = resourceByKind('v1', 'Node')!;
/** The characters Kubernetes uses for generated name suffixes (no vowels, no look-alikes). */
const SAFE = 'bcdfghjklmnpqrstvwxz2456789';

export interface PodFailure {
  /** Container waiting reason. @default 'CrashLoopBackOff' */
  readonly reason?: string;
  /** @default `back-off 10s restarting failed container=<c> pod=<pod>` */
  readonly message?: string;
  /** The failing container. @default the template's first container */
  readonly container?: string;
  /** @default 3 */
  readonly restartCount?: number;
}

/** A node as its kubelet registers it. */
export interface FakeNode {
  readonly name: string;
  /** status.allocatable.cpu. @default '4' */
  readonly cpu?: string;
  /** status.allocatable.memory. @default '8025424Ki' (a kind node on a laptop with 8 GiB) */
  readonly memory?: string;
  /** The Ready condition. @default true */
  readonly ready?: boolean;
  /** status.addresses. @default InternalIP 172.18.0.2 (kind's first node on its docker network), Hostname */
  readonly addresses?: readonly { readonly type: string; readonly address: string }[];
}

/** The one node a fake cluster has unless told otherwise: kind's control-plane node. */
export const DEFAULT_NODE: FakeNode = { name: 'chaos-lab-control-plane' };

export function nodeObject(node: FakeNode): Obj {
  const ready = node.ready ?? true;
  const allocatable = { cpu: node.cpu ?? '4', memory: node.memory ?? '8025424Ki', pods: '110' };
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name: node.name,
      labels: { 'kubernetes.io/hostname': node.name, 'kubernetes.io/os': 'linux' },
    },
    spec: {},
    status: {
      capacity: allocatable,
      allocatable,
      conditions: [
        { type: 'MemoryPressure', status: 'False', reason: 'KubeletHasSufficientMemory' },
        ready
          ? {
              type: 'Ready',
              status: 'True',
              reason: 'KubeletReady',
              message: 'kubelet is posting ready status',
            }
          : {
              type: 'Ready',
              status: 'Unknown',
              reason: 'NodeStatusUnknown',
              message: 'Kubelet stopped posting node status.',
            },
      ],
      addresses: node.addresses ?? [
        { type: 'InternalIP', address: '172.18.0.2' },
        { type: 'Hostname', address: node.name },
      ],
    },
  };
}

export interface WorkloadOptions {
  /** From Pod creation to Running/Ready. @default 30 */
  readonly readyDelayMs?: number;
  /** From a graceful delete to the Pod being gone. @default 10 */
  readonly terminationDelayMs?: number;
}

interface Spec {
  replicas?: number;
  selector?: { matchLabels?: Record<string, string> };
  template?: {
    metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
    spec?: { containers?: { name: string; [k: string]: unknown }[]; [k: string]: unknown };
  };
}

export class Workloads {
  private readonly failures = new Map<string, PodFailure>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly pending = new Set<string>();
  private readonly unsubscribe: () => void;
  private podIp = 10;
  private closed = false;
  private readonly readyDelayMs: number;
  private readonly terminationDelayMs: number;

  constructor(
    private readonly store: Store,
    options: WorkloadOptions = {},
  ) {
    this.readyDelayMs = options.readyDelayMs ?? 30;
    this.terminationDelayMs = options.terminationDelayMs ?? 10;
    this.unsubscribe = store.subscribe((event) => this.onEvent(event));
  }

  /** Pods of this Deployment (present and future) never become ready, for the given reason. */
  neverReady(namespace: string, deployment: string, failure: PodFailure = {}): void {
    this.failures.set(`${namespace}/${deployment}`, failure);
    for (const pod of this.podsOf(namespace, deployment)) {
      if (pod.status && (pod.status as { phase?: string }).phase === 'Running') this.start(pod);
    }
  }

  /** Undoes neverReady: the Deployment's pods become ready. */
  heal(namespace: string, deployment: string): void {
    this.failures.delete(`${namespace}/${deployment}`);
    for (const pod of this.podsOf(namespace, deployment)) this.start(pod);
  }

  setRestartCount(namespace: string, pod: string, container: string, restartCount: number): void {
    this.store.update(PODS, namespace, pod, (o) => {
      const statuses = (o.status as { containerStatuses?: { name: string; restartCount: number }[] })
        ?.containerStatuses;
      const status = statuses?.find((s) => s.name === container);
      if (!status) throw new Error(`pod ${namespace}/${pod} has no container ${container}`);
      status.restartCount = restartCount;
    });
  }

  /**
   * What the kubelet does when a container's process dies (a SIGKILL, a crash): the container
   * restarts in the same pod, its restartCount goes up by one, its last state says how it ended,
   * and the pod is not Ready until the new container is, `readyAfterMs` later.
   */
  restartContainer(
    namespace: string,
    pod: string,
    container: string,
    options: { readonly exitCode?: number; readonly readyAfterMs?: number } = {},
  ): void {
    const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    const updated = this.store.update(PODS, namespace, pod, (o) => {
      const status = o.status as {
        conditions?: { type: string; status: string; reason?: string; message?: string }[];
        containerStatuses?: Record<string, unknown>[];
      };
      const found = status?.containerStatuses?.find((s) => s.name === container);
      if (!found) throw new Error(`pod ${namespace}/${pod} has no container ${container}`);
      found.restartCount = Number(found.restartCount ?? 0) + 1;
      found.ready = false;
      found.started = true;
      found.lastState = {
        terminated: { exitCode: options.exitCode ?? 137, reason: 'Error', finishedAt: now },
      };
      found.state = { running: { startedAt: now } };
      const unready = {
        status: 'False',
        reason: 'ContainersNotReady',
        message: `containers with unready status: [${container}]`,
      };
      status.conditions = (status.conditions ?? []).map((c) =>
        c.type === 'Ready' || c.type === 'ContainersReady' ? { type: c.type, ...unready } : c,
      );
    });
    this.later(options.readyAfterMs ?? this.readyDelayMs, () => this.start(updated));
  }

  /**
   * What the kubelet reports for a container that crashed again while in back-off: its process has
   * ended (`lastState.terminated`), it waits in CrashLoopBackOff, and its restartCount does not
   * count the crash until the wait is over (`restartContainer` then starts it).
   */
  crashContainer(namespace: string, pod: string, container: string, exitCode = 2): void {
    const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    this.store.update(PODS, namespace, pod, (o) => {
      const status = o.status as {
        conditions?: { type: string; status: string; reason?: string; message?: string }[];
        containerStatuses?: Record<string, unknown>[];
      };
      const found = status?.containerStatuses?.find((s) => s.name === container);
      if (!found) throw new Error(`pod ${namespace}/${pod} has no container ${container}`);
      found.ready = false;
      found.started = false;
      found.lastState = { terminated: { exitCode, reason: 'Error', finishedAt: now } };
      found.state = {
        waiting: {
          reason: 'CrashLoopBackOff',
          message: `back-off 40s restarting failed container=${container} pod=${pod}`,
        },
      };
      status.conditions = (status.conditions ?? []).map((c) =>
        c.type === 'Ready' || c.type === 'ContainersReady'
          ? { type: c.type, status: 'False', reason: 'ContainersNotReady' }
          : c,
      );
    });
  }

  /**
   * Deletes a pod the way the API does: with a grace period the pod is marked terminating first and
   * removed `terminationDelayMs` later. Its Deployment creates a replacement at once, as a
   * ReplicaSet does (a terminating pod does not count as a replica).
   */
  deletePod(namespace: string, name: string, gracePeriodSeconds: number | undefined): Obj | undefined {
    const pod = this.store.get(PODS, namespace, name);
    if (!pod) return undefined;
    if (gracePeriodSeconds === 0) return this.store.remove(PODS, namespace, name);
    if (pod.metadata.deletionTimestamp) return pod;
    const marked = this.store.update(PODS, namespace, name, (o) => {
      o.metadata.deletionTimestamp = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
      o.metadata.deletionGracePeriodSeconds = gracePeriodSeconds ?? 30;
    });
    this.later(this.terminationDelayMs, () => this.store.remove(PODS, namespace, name));
    return marked;
  }

  close(): void {
    this.closed = true;
    this.unsubscribe();
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  private onEvent(event: StoreEvent): void {
    const { namespace, name } = event.object.metadata;
    if (event.resource === DEPLOYMENTS && namespace) {
      if (event.type === 'DELETED') {
        for (const pod of this.podsOf(namespace, name)) this.store.remove(PODS, namespace, pod.metadata.name);
      } else {
        this.schedule(namespace, name);
      }
    } else if (event.resource === PODS && namespace) {
      const owner = event.object.metadata.labels?.['chaos-lab.fake/deployment'];
      if (owner) this.schedule(namespace, owner);
      // A pod created directly (no Deployment) is the kubelet's alone: it starts it too.
      else if (event.type === 'ADDED' && !event.object.status) {
        this.later(this.readyDelayMs, () => this.start(event.object, this.nextIp()));
      }
    }
  }

  /** Reconciles once per turn of the event loop, never inside a store listener. */
  private schedule(namespace: string, deployment: string): void {
    const key = `${namespace}/${deployment}`;
    if (this.pending.has(key)) return;
    this.pending.add(key);
    this.later(0, () => {
      this.pending.delete(key);
      this.reconcile(namespace, deployment);
    });
  }

  private reconcile(namespace: string, name: string): void {
    const deployment = this.store.get(DEPLOYMENTS, namespace, name);
    if (!deployment) return;
    const spec = (deployment.spec ?? {}) as Spec;
    const hash = templateHash(spec.template);
    const replicas = spec.replicas ?? 1;
    const live = this.podsOf(namespace, name).filter((p) => !p.metadata.deletionTimestamp);
    const current = live.filter((p) => p.metadata.labels?.['pod-template-hash'] === hash);
    for (const old of live.filter((p) => p.metadata.labels?.['pod-template-hash'] !== hash)) {
      this.deletePod(namespace, old.metadata.name, 30);
    }
    for (const extra of current.slice(replicas)) this.deletePod(namespace, extra.metadata.name, 30);
    for (let i = current.length; i < replicas; i++) this.createPod(deployment, spec, hash);

    const pods = this.podsOf(namespace, name).filter((p) => !p.metadata.deletionTimestamp);
    const updated = pods.filter((p) => p.metadata.labels?.['pod-template-hash'] === hash);
    const ready = pods.filter(isReady).length;
    const available = updated.filter(isReady).length;
    this.store.update(DEPLOYMENTS, namespace, name, (o) => {
      o.status = {
        observedGeneration: o.metadata.generation,
        replicas: pods.length,
        updatedReplicas: updated.length,
        readyReplicas: ready,
        availableReplicas: available,
        ...(pods.length - available > 0 ? { unavailableReplicas: pods.length - available } : {}),
        conditions: [
          {
            type: 'Available',
            status: available >= replicas ? 'True' : 'False',
            reason: available >= replicas ? 'MinimumReplicasAvailable' : 'MinimumReplicasUnavailable',
          },
          { type: 'Progressing', status: 'True', reason: 'ReplicaSetUpdated' },
        ],
      };
      if (ready === 0) delete (o.status as Record<string, unknown>).readyReplicas;
      if (available === 0) delete (o.status as Record<string, unknown>).availableReplicas;
    });
  }

  private createPod(deployment: Obj, spec: Spec, hash: string): void {
    const namespace = deployment.metadata.namespace as string;
    const containers = spec.template?.spec?.containers ?? [];
    const name = `${deployment.metadata.name}-${hash}-${randomSuffix(5)}`;
    const pod = this.store.create(PODS, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name,
        namespace,
        labels: {
          ...spec.template?.metadata?.labels,
          'pod-template-hash': hash,
          // How the fake finds a pod's Deployment; the real controller uses ownerReferences to a ReplicaSet.
          'chaos-lab.fake/deployment': deployment.metadata.name,
        },
        ...(spec.template?.metadata?.annotations ? { annotations: spec.template.metadata.annotations } : {}),
        ownerReferences: [
          {
            apiVersion: 'apps/v1',
            kind: 'ReplicaSet',
            name: `${deployment.metadata.name}-${hash}`,
            uid: deployment.metadata.uid,
            controller: true,
            blockOwnerDeletion: true,
          },
        ],
      },
      spec: { ...spec.template?.spec, nodeName: 'chaos-lab-worker' },
      status: {
        phase: 'Pending',
        conditions: [{ type: 'PodScheduled', status: 'True' }],
        containerStatuses: containers.map((c) => ({
          name: c.name,
          ready: false,
          started: false,
          restartCount: 0,
          image: c.image,
          state: { waiting: { reason: 'ContainerCreating' } },
        })),
      },
    });
    const ip = this.nextIp();
    this.later(this.readyDelayMs, () => this.start(pod, ip));
  }

  /** The kubelet's part: the pod runs, and is Ready unless its Deployment is told to fail. */
  private start(pod: Obj, ip?: string): void {
    const { namespace, name, labels } = pod.metadata;
    if (!namespace || !this.store.get(PODS, namespace, name)) return;
    const failure = this.failures.get(`${namespace}/${labels?.['chaos-lab.fake/deployment']}`);
    const containers = (pod.spec as { containers?: { name: string }[] } | undefined)?.containers ?? [];
    const failing = failure ? (failure.container ?? containers[0]?.name) : undefined;
    const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    this.store.update(PODS, namespace, name, (o) => {
      const previous = (o.status ?? {}) as {
        podIP?: string;
        containerStatuses?: { restartCount?: number; lastState?: unknown }[];
      };
      const ready = failing === undefined;
      o.status = {
        phase: 'Running',
        podIP: ip ?? previous.podIP,
        startTime: now,
        conditions: [
          { type: 'PodScheduled', status: 'True' },
          { type: 'Initialized', status: 'True' },
          ready
            ? { type: 'ContainersReady', status: 'True' }
            : {
                type: 'ContainersReady',
                status: 'False',
                reason: 'ContainersNotReady',
                message: `containers with unready status: [${failing}]`,
              },
          ready
            ? { type: 'Ready', status: 'True' }
            : {
                type: 'Ready',
                status: 'False',
                reason: 'ContainersNotReady',
                message: `containers with unready status: [${failing}]`,
              },
        ],
        containerStatuses: containers.map((c, i) =>
          c.name === failing
            ? {
                name: c.name,
                ready: false,
                started: false,
                restartCount: failure?.restartCount ?? 3,
                state: {
                  waiting: {
                    reason: failure?.reason ?? 'CrashLoopBackOff',
                    message:
                      failure?.message ?? `back-off 10s restarting failed container=${c.name} pod=${name}`,
                  },
                },
                lastState: { terminated: { exitCode: 1, reason: 'Error' } },
              }
            : {
                name: c.name,
                ready: true,
                started: true,
                restartCount: previous.containerStatuses?.[i]?.restartCount ?? 0,
                ...(previous.containerStatuses?.[i]?.lastState
                  ? { lastState: previous.containerStatuses[i]?.lastState }
                  : {}),
                state: { running: { startedAt: now } },
              },
        ),
      };
    });
  }

  private nextIp(): string {
    this.podIp += 1;
    return `10.244.${Math.floor(this.podIp / 250) % 250}.${(this.podIp % 250) + 1}`;
  }

  private podsOf(namespace: string, deployment: string): Obj[] {
    return this.store
      .list(PODS, namespace)
      .filter((p) => p.metadata.labels?.['chaos-lab.fake/deployment'] === deployment);
  }

  private later(ms: number, run: () => void): void {
    if (this.closed) return;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      if (!this.closed) run();
    }, ms);
    this.timers.add(timer);
  }
}

function isReady(pod: Obj): boolean {
  const conditions = (pod.status as { conditions?: { type: string; status: string }[] } | undefined)
    ?.conditions;
  return conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

/** Ten safe characters from the template, as the real pod-template-hash (a different hash, same shape). */
function templateHash(template: unknown): string {
  const digest = createHash('sha256')
    .update(JSON.stringify(template ?? {}))
    .digest();
  return [...digest.subarray(0, 10)].map((b) => SAFE[b % SAFE.length]).join('');
}

function randomSuffix(n: number): string {
  return [...randomBytes(n)].map((b) => SAFE[b % SAFE.length]).join('');
}
