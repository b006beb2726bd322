/**
 * The lab's Cluster, built on @kubernetes/client-node 1.4: kubeconfig loaded as kubectl loads it,
 * server-side apply with field manager `chaos-lab`, rollouts followed by a Deployment watch, exec
 * and port-forward over the API server's WebSocket channels. Every failure leaves as a KubeError
 * that says what was asked, of which object, and what the API server answered.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { existsSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import { Writable } from 'node:stream';
import {
  ApiException,
  AppsV1Api,
  CoordinationV1Api,
  CoreV1Api,
  createConfiguration,
  Exec,
  HttpMethod,
  KubeConfig,
  KubernetesObjectApi,
  PatchStrategy,
  PortForward as PortForwarder,
  ServerConfiguration,
  type V1ContainerStatus,
  type V1Deployment,
  type V1Lease,
  V1MicroTime,
  type V1Node,
  type V1Pod,
  type V1Status,
  VersionApi,
  Watch,
} from '@kubernetes/client-node';
import type WebSocket from 'ws';
import {
  ApplyConflictError,
  type Cluster,
  type DeploymentInfo,
  type ExecResult,
  FIELD_MANAGER,
  type FieldConflict,
  KubeError,
  type KubeObject,
  type LeaseRecord,
  type NodeInfo,
  type PodInfo,
  type PortForward,
  podProblem,
  quantity,
  type RolloutState,
  RolloutTimeoutError,
  type UnreadyDeployment,
} from './cluster.ts';
import { DEFAULT_KIND_CLUSTER } from './kind-config.ts';

/** The context `kind create cluster --config kind/cluster.yaml` writes (the CLI passes the one of CHAOS_LAB_KIND_CONFIG's cluster). */
export const DEFAULT_CONTEXT = `kind-${DEFAULT_KIND_CLUSTER}`;
const CREATE_HINT =
  '`npx chaos-lab up --target kind` creates the lab cluster and deploys the lab, or set KUBECONFIG.';
const DEFAULT_EXEC_TIMEOUT_MS = 30_000;
/** Pause before re-listing after a watch failed, so a broken server is not hammered. */
const REWATCH_DELAY_MS = 200;

export interface ConnectOptions {
  /**
   * kubeconfig context. @default 'kind-chaos-lab' — not the current context, so that a chaos lab
   * never applies to whatever cluster kubectl happens to point at.
   */
  readonly context?: string;
  /** @default $KUBECONFIG (paths joined by `:`), else ~/.kube/config */
  readonly kubeconfigPath?: string;
  /** @default process.env */
  readonly env?: NodeJS.ProcessEnv;
}

/** Loads the kubeconfig and selects the context; throws a KubeError saying what to do when it cannot. */
export function connectCluster(options: ConnectOptions = {}): Cluster {
  const { kc, files } = loadKubeConfig(options);
  const context = options.context ?? DEFAULT_CONTEXT;
  if (!kc.getContextObject(context)) {
    const known = kc.getContexts().map((c) => c.name);
    throw new KubeError(
      `kubeconfig ${files.join(delimiter)} has no context "${context}" (contexts there: ${
        known.length > 0 ? known.join(', ') : 'none'
      }). ${CREATE_HINT.replace(', or set KUBECONFIG.', ', or pass --context with one of those.')}`,
    );
  }
  kc.setCurrentContext(context);
  const cluster = kc.getCurrentCluster();
  if (!cluster) {
    throw new KubeError(
      `kubeconfig context "${context}" names a cluster that ${files.join(delimiter)} does not define`,
    );
  }
  return new KubeCluster(kc, context, cluster.server);
}

function loadKubeConfig(options: ConnectOptions): { kc: KubeConfig; files: string[] } {
  const env = options.env ?? process.env;
  const candidates = options.kubeconfigPath
    ? [options.kubeconfigPath]
    : env.KUBECONFIG
      ? env.KUBECONFIG.split(delimiter).filter((p) => p !== '')
      : [join(env.HOME ?? homedir(), '.kube', 'config')];
  const files = candidates.filter((f) => existsSync(f));
  if (files.length === 0) {
    throw new KubeError(`no kubeconfig found (looked for ${candidates.join(', ')}). ${CREATE_HINT}`);
  }
  const kc = new KubeConfig();
  for (const file of files) {
    const one = new KubeConfig();
    try {
      one.loadFromFile(file);
    } catch (err) {
      throw new KubeError(`kubeconfig ${file} cannot be read: ${(err as Error).message}`);
    }
    // Merged as kubectl merges KUBECONFIG: the first file that defines a name wins (client-node's
    // mergeConfig throws on a duplicate instead).
    for (const c of one.clusters) if (!kc.getCluster(c.name)) kc.addCluster(c);
    for (const u of one.users) if (!kc.getUser(u.name)) kc.addUser(u);
    for (const c of one.contexts) if (!kc.getContextObject(c.name)) kc.addContext(c);
  }
  return { kc, files };
}

/**
 * KubernetesObjectApi whose apply sends the manifest as it is. client-node's own `patch` passes
 * the body through its models, whose renamed attributes (`_from` for `from`) lose fields of a
 * plain manifest: since 1.2.0 a NetworkPolicy's `ingress[].from` is silently dropped, which would
 * open the lab's policies to every pod (kubernetes-client/javascript#2825, open in 1.4.0).
 */
class ObjectApi extends KubernetesObjectApi {
  async serverSideApply(object: KubeObject, force: boolean): Promise<void> {
    // specUriPath fills in a missing namespace on the spec it is given: give it a copy.
    const path = await this.specUriPath(
      structuredClone(object) as Parameters<KubernetesObjectApi['patch']>[0],
      'patch',
    );
    const request = this.configuration.baseServer.makeRequestContext(path, HttpMethod.PATCH);
    request.setHeaderParam('Accept', 'application/json');
    request.setHeaderParam('Content-Type', PatchStrategy.ServerSideApply);
    request.setQueryParam('fieldManager', FIELD_MANAGER);
    if (force) request.setQueryParam('force', 'true');
    // JSON is YAML: the API server reads an apply-patch+yaml body written as JSON.
    request.setBody(JSON.stringify(object));
    await this.requestPromise(request);
  }
}

/** The abort signal of the call in progress, picked up by the request middleware below. */
const callSignal = new AsyncLocalStorage<AbortSignal | undefined>();

interface StatusBody {
  message?: string;
  reason?: string;
  details?: { causes?: { type?: string; message?: string; field?: string }[] };
}

class KubeCluster implements Cluster {
  private readonly objects: ObjectApi;
  private readonly core: CoreV1Api;
  private readonly apps: AppsV1Api;
  private readonly coordination: CoordinationV1Api;
  private readonly versions: VersionApi;
  private readonly watches = new Set<AbortController>();
  private readonly sockets = new Set<WebSocket>();
  private readonly forwards = new Set<PortForward>();

  constructor(
    private readonly kc: KubeConfig,
    readonly context: string,
    readonly server: string,
  ) {
    // client-node has no per-call signal; a middleware takes it from the async context instead.
    const configuration = createConfiguration({
      baseServer: new ServerConfiguration(server, {}),
      authMethods: { default: kc },
      promiseMiddleware: [
        {
          pre: async (request) => {
            const signal = callSignal.getStore();
            if (signal) request.setSignal(signal);
            return request;
          },
          post: async (response) => response,
        },
      ],
    });
    this.objects = new ObjectApi(configuration);
    this.core = new CoreV1Api(configuration);
    this.apps = new AppsV1Api(configuration);
    this.coordination = new CoordinationV1Api(configuration);
    this.versions = new VersionApi(configuration);
  }

  async version(signal?: AbortSignal): Promise<string> {
    const info = await this.call('GET /version', signal, () => this.versions.getCode());
    return info.gitVersion;
  }

  async apply(
    objects: readonly KubeObject[],
    options: { force?: boolean; signal?: AbortSignal; progress?: (line: string) => void } = {},
  ): Promise<void> {
    for (const object of objects) {
      const what = describe(object);
      try {
        await this.call(`apply of ${what}`, options.signal, () =>
          this.objects.serverSideApply(object, options.force ?? false),
        );
      } catch (err) {
        if (err instanceof StatusKubeError && err.status === 409) {
          throw new ApplyConflictError(what, conflictsOf(err.body));
        }
        throw err;
      }
      options.progress?.(`applied ${what}`);
    }
  }

  /**
   * Background propagation: the API server removes each object at once and the garbage collector
   * takes its dependents (ReplicaSets, Pods) after; Foreground would keep a Deployment around until
   * its Pods are gone, which only matters to a caller that waits, and `down` does not.
   */
  async delete(
    objects: readonly KubeObject[],
    options: { signal?: AbortSignal; progress?: (line: string) => void } = {},
  ): Promise<void> {
    for (const object of [...objects].reverse()) {
      const what = describe(object);
      try {
        await this.call(`delete of ${what}`, options.signal, () =>
          this.objects.delete(
            structuredClone(object) as Parameters<KubernetesObjectApi['delete']>[0],
            undefined,
            undefined,
            undefined,
            undefined,
            'Background',
          ),
        );
        options.progress?.(`deleted ${what}`);
      } catch (err) {
        // A Namespace already Terminating: the API server answers 409, and it is on its way out.
        if (err instanceof KubeError && err.status === 409 && object.kind === 'Namespace') {
          options.progress?.(`already being deleted ${what}`);
          continue;
        }
        if (!(err instanceof KubeError && err.status === 404)) throw err;
        options.progress?.(`already gone ${what}`);
      }
    }
  }

  async waitForRollouts(
    namespace: string,
    deployments: readonly string[],
    options: {
      timeoutMs: number;
      signal?: AbortSignal;
      progress?: (states: readonly RolloutState[]) => void;
    },
  ): Promise<void> {
    const { signal } = options;
    signal?.throwIfAborted();
    const latest = new Map<string, V1Deployment>();
    const states = () => deployments.map((name) => rolloutState(name, latest.get(name)));
    let reported = '';
    const report = () => {
      const now = states();
      const key = JSON.stringify(now);
      if (key !== reported) {
        reported = key;
        options.progress?.(now);
      }
      return now.every((s) => s.done);
    };

    const deadline = AbortSignal.timeout(options.timeoutMs);
    const stop = signal ? AbortSignal.any([signal, deadline]) : deadline;
    while (!stop.aborted) {
      let resourceVersion: string | undefined;
      try {
        const list = await this.call(`list of Deployments in ${namespace}`, stop, () =>
          this.apps.listNamespacedDeployment({ namespace }),
        );
        // A fresh list is the whole truth: a Deployment deleted while no watch ran is gone from it.
        latest.clear();
        for (const d of list.items) if (d.metadata?.name) latest.set(d.metadata.name, d);
        resourceVersion = list.metadata?.resourceVersion;
      } catch (err) {
        if (!stop.aborted) throw err;
        break;
      }
      if (report()) return;
      await this.watchUntil(`/apis/apps/v1/namespaces/${encodeURIComponent(namespace)}/deployments`, {
        resourceVersion,
        stop,
        onObject: (type, object) => {
          const d = object as V1Deployment;
          const name = d.metadata?.name;
          if (!name) return false;
          if (type === 'DELETED') latest.delete(name);
          else latest.set(name, d);
          return report();
        },
      });
      if (states().every((s) => s.done)) return;
    }
    signal?.throwIfAborted();
    throw new RolloutTimeoutError(
      options.timeoutMs,
      await this.explainUnready(namespace, deployments, latest),
    );
  }

  /**
   * Runs one watch until `onObject` says it is satisfied, the server ends the stream, or `stop`
   * fires; the watch request is aborted in every case.
   */
  private async watchUntil(
    path: string,
    options: {
      resourceVersion: string | undefined;
      stop: AbortSignal;
      onObject: (type: string, object: unknown) => boolean;
    },
  ): Promise<void> {
    const { stop } = options;
    let controller: AbortController | undefined;
    let failed = false;
    let refused: number | undefined;
    let finish = () => {};
    try {
      await new Promise<void>((resolve) => {
        finish = () => resolve();
        stop.addEventListener('abort', finish, { once: true });
        new Watch(this.kc)
          .watch(
            path,
            { resourceVersion: options.resourceVersion, allowWatchBookmarks: true },
            (type, object) => {
              if (type !== 'BOOKMARK' && type !== 'ERROR' && options.onObject(type, object)) finish();
              // A 410 Gone arrives as an ERROR event: the list is too old, so list again.
              if (type === 'ERROR') finish();
            },
            (err) => {
              failed = err !== null && err !== undefined && !stop.aborted;
              refused = (err as { statusCode?: number } | null)?.statusCode;
              finish();
            },
          )
          .then((c) => {
            controller = c;
            this.watches.add(c);
            if (stop.aborted) c.abort();
          }, finish);
      });
    } finally {
      stop.removeEventListener('abort', finish);
      controller?.abort();
      if (controller) this.watches.delete(controller);
    }
    // Listing worked but watching is refused (RBAC without `watch`, say): waiting cannot work.
    if (failed && refused !== undefined && refused >= 400 && refused < 500 && refused !== 410) {
      throw new KubeError(`watch of ${path}: the API server answered HTTP ${refused}`, refused);
    }
    if (failed && !stop.aborted) await sleep(REWATCH_DELAY_MS, stop);
  }

  /** Names each unready Deployment, one pod of it that is not ready and why. */
  private async explainUnready(
    namespace: string,
    deployments: readonly string[],
    latest: Map<string, V1Deployment>,
  ): Promise<UnreadyDeployment[]> {
    const unready: UnreadyDeployment[] = [];
    for (const name of deployments) {
      const deployment = latest.get(name);
      const state = rolloutState(name, deployment);
      if (state.done) continue;
      if (!deployment) {
        unready.push({ name, ready: 0, desired: 0, why: 'no such Deployment' });
        continue;
      }
      const matchLabels = deployment.spec?.selector?.matchLabels ?? {};
      const selector = Object.entries(matchLabels)
        .map(([k, v]) => `${k}=${v}`)
        .join(',');
      let pods: PodInfo[] = [];
      try {
        pods = await this.listPods(namespace, selector, AbortSignal.timeout(5_000));
      } catch {
        // The timeout error matters more than a failed diagnosis; it is still thrown without a pod.
      }
      const pod = pods.find((p) => !p.ready && !p.terminating) ?? pods.find((p) => !p.ready) ?? undefined;
      unready.push({
        name,
        ready: state.ready,
        desired: state.desired,
        ...(pod ? { pod: pod.name, why: podProblem(pod) } : {}),
      });
    }
    return unready;
  }

  async listPods(namespace: string, labelSelector?: string, signal?: AbortSignal): Promise<PodInfo[]> {
    const list = await this.call(`list of pods in ${namespace}`, signal, () =>
      this.core.listNamespacedPod({ namespace, ...(labelSelector ? { labelSelector } : {}) }),
    );
    return list.items.map(podInfo);
  }

  async listNodes(signal?: AbortSignal): Promise<NodeInfo[]> {
    const list = await this.call('list of nodes', signal, () => this.core.listNode());
    return list.items.map(nodeInfo).sort((a, b) => a.name.localeCompare(b.name));
  }

  async deletePod(
    namespace: string,
    pod: string,
    options: { gracePeriodSeconds?: number } = {},
  ): Promise<void> {
    await this.call(`delete of pod ${namespace}/${pod}`, undefined, () =>
      this.core.deleteNamespacedPod({
        name: pod,
        namespace,
        ...(options.gracePeriodSeconds !== undefined
          ? { gracePeriodSeconds: options.gracePeriodSeconds }
          : {}),
      }),
    );
  }

  async readSecret(namespace: string, name: string, signal?: AbortSignal): Promise<Record<string, string>> {
    const secret = await this.call(`read of Secret ${namespace}/${name}`, signal, () =>
      this.core.readNamespacedSecret({ name, namespace }),
    );
    return Object.fromEntries(
      Object.entries(secret.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]),
    );
  }

  async namespacePhase(name: string, signal?: AbortSignal): Promise<'Active' | 'Terminating' | undefined> {
    try {
      const namespace = await this.call(`read of Namespace ${name}`, signal, () =>
        this.core.readNamespace({ name }),
      );
      // A namespace being deleted carries its deletionTimestamp before the controller sets the phase.
      return namespace.status?.phase === 'Terminating' || namespace.metadata?.deletionTimestamp
        ? 'Terminating'
        : 'Active';
    } catch (err) {
      if (err instanceof KubeError && err.status === 404) return undefined;
      throw err;
    }
  }

  async listDeployments(namespace: string, signal?: AbortSignal): Promise<DeploymentInfo[]> {
    const list = await this.call(`list of Deployments in ${namespace}`, signal, () =>
      this.apps.listNamespacedDeployment({ namespace }),
    );
    return list.items
      .map((d) => ({
        name: d.metadata?.name ?? '',
        terminating: d.metadata?.deletionTimestamp !== undefined,
      }))
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  async createLease(namespace: string, lease: LeaseRecord, signal?: AbortSignal): Promise<LeaseRecord> {
    const created = await this.call(`create of Lease ${namespace}/${lease.name}`, signal, () =>
      this.coordination.createNamespacedLease({ namespace, body: v1Lease(namespace, lease) }),
    );
    return leaseRecord(created);
  }

  async readLease(namespace: string, name: string, signal?: AbortSignal): Promise<LeaseRecord | undefined> {
    try {
      const lease = await this.call(`read of Lease ${namespace}/${name}`, signal, () =>
        this.coordination.readNamespacedLease({ name, namespace }),
      );
      return leaseRecord(lease);
    } catch (err) {
      if (err instanceof KubeError && err.status === 404) return undefined;
      throw err;
    }
  }

  async replaceLease(namespace: string, lease: LeaseRecord, signal?: AbortSignal): Promise<LeaseRecord> {
    const replaced = await this.call(`update of Lease ${namespace}/${lease.name}`, signal, () =>
      this.coordination.replaceNamespacedLease({
        name: lease.name,
        namespace,
        body: v1Lease(namespace, lease),
      }),
    );
    return leaseRecord(replaced);
  }

  async deleteLease(
    namespace: string,
    name: string,
    resourceVersion: string | undefined,
    signal?: AbortSignal,
  ): Promise<boolean> {
    try {
      await this.call(`delete of Lease ${namespace}/${name}`, signal, () =>
        this.coordination.deleteNamespacedLease({
          name,
          namespace,
          ...(resourceVersion !== undefined ? { body: { preconditions: { resourceVersion } } } : {}),
        }),
      );
      return true;
    } catch (err) {
      if (err instanceof KubeError && err.status === 404) return false;
      throw err;
    }
  }

  async exec(
    namespace: string,
    pod: string,
    container: string,
    command: readonly string[],
    options: { timeoutMs?: number; signal?: AbortSignal } = {},
  ): Promise<ExecResult> {
    const what = `exec of [${command.join(' ')}] in ${namespace}/${pod} container ${container}`;
    options.signal?.throwIfAborted();
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    let status: V1Status | undefined;
    let ws: WebSocket;
    try {
      ws = (await new Exec(this.kc).exec(
        namespace,
        pod,
        container,
        [...command],
        collector(stdout),
        collector(stderr),
        null,
        false,
        (s) => {
          status = s;
        },
      )) as unknown as WebSocket;
    } catch (err) {
      throw await this.streamError(what, namespace, pod, container, err);
    }
    this.sockets.add(ws);
    const timeoutMs = options.timeoutMs ?? DEFAULT_EXEC_TIMEOUT_MS;
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          reject(new KubeError(`${what} did not finish within ${timeoutMs} ms`));
          ws.terminate();
        }, timeoutMs);
        const onAbort = () => {
          reject(options.signal?.reason);
          ws.terminate();
        };
        const done = () => {
          clearTimeout(timer);
          options.signal?.removeEventListener('abort', onAbort);
          resolve();
        };
        options.signal?.addEventListener('abort', onAbort, { once: true });
        if (ws.readyState === ws.CLOSED) done();
        else ws.on('close', done);
      });
    } finally {
      this.sockets.delete(ws);
    }
    const result = {
      stdout: Buffer.concat(stdout).toString('utf8'),
      stderr: Buffer.concat(stderr).toString('utf8'),
    };
    return { ...result, exitCode: exitCodeOf(what, status) };
  }

  async portForward(namespace: string, pod: string, port: number): Promise<PortForward> {
    const what = `port-forward to ${namespace}/${pod}:${port}`;
    const target = await this.call(what, undefined, () =>
      this.core.readNamespacedPod({ name: pod, namespace }),
    );
    if (target.status?.phase !== 'Running') {
      throw new KubeError(`${what}: the pod is ${target.status?.phase ?? 'not running'}; wait until it runs`);
    }
    const forwarder = new PortForwarder(this.kc);
    const open = new Set<{ socket: Socket; ws?: WebSocket }>();
    const server = createServer((socket) => {
      const link: { socket: Socket; ws?: WebSocket } = { socket };
      open.add(link);
      socket.on('close', () => {
        open.delete(link);
        link.ws?.close();
      });
      socket.on('error', () => socket.destroy());
      const errors = new Writable({
        write(chunk: Buffer, _encoding, done) {
          // The kubelet reports "connection refused" and the like here: the connection is over.
          if (chunk.length > 0) socket.destroy();
          done();
        },
      });
      forwarder.portForward(namespace, pod, [port], socket, errors, socket).then(
        (opened) => {
          const ws = opened as unknown as WebSocket;
          link.ws = ws;
          ws.on('close', () => socket.end());
          if (socket.destroyed) ws.close();
        },
        () => socket.destroy(),
      );
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const address = server.address();
    const localPort = typeof address === 'object' && address ? address.port : 0;
    const forward: PortForward = {
      url: `http://127.0.0.1:${localPort}`,
      close: async () => {
        this.forwards.delete(forward);
        for (const link of open) {
          link.ws?.terminate();
          link.socket.destroy();
        }
        open.clear();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      },
    };
    this.forwards.add(forward);
    return forward;
  }

  async close(): Promise<void> {
    for (const c of this.watches) c.abort();
    this.watches.clear();
    for (const ws of this.sockets) ws.terminate();
    this.sockets.clear();
    await Promise.all([...this.forwards].map((f) => f.close()));
  }

  /** Runs one API call with the signal in scope and turns its failure into a KubeError. */
  private async call<T>(what: string, signal: AbortSignal | undefined, run: () => Promise<T>): Promise<T> {
    try {
      return await callSignal.run(signal, run);
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      throw toKubeError(what, this.server, err);
    }
  }

  /**
   * The API server refuses an exec before upgrading (unknown pod, unknown container), and `ws`
   * only says "Unexpected server response: 404"; reading the pod says which it was.
   */
  private async streamError(what: string, namespace: string, pod: string, container: string, err: unknown) {
    const status = /Unexpected server response: (\d+)/.exec(String((err as Error)?.message))?.[1];
    if (status === undefined) return toKubeError(what, this.server, err);
    let found: V1Pod;
    try {
      found = await this.core.readNamespacedPod({ name: pod, namespace });
    } catch {
      return new KubeError(`${what}: pod ${namespace}/${pod} not found`, Number(status), 'NotFound');
    }
    const containers = found.spec?.containers.map((c) => c.name) ?? [];
    if (!containers.includes(container)) {
      return new KubeError(
        `${what}: pod ${namespace}/${pod} has no container "${container}" (containers: ${containers.join(', ')})`,
        Number(status),
        'BadRequest',
      );
    }
    return new KubeError(`${what}: the API server refused the upgrade with HTTP ${status}`, Number(status));
  }
}

/** A KubeError that keeps the API server's Status (apply reads a conflict's causes from it). */
class StatusKubeError extends KubeError {
  constructor(
    message: string,
    status: number,
    reason: string | undefined,
    readonly body: StatusBody | undefined,
  ) {
    super(message, status, reason);
  }
}

function toKubeError(what: string, server: string, err: unknown): KubeError {
  if (err instanceof KubeError) return err;
  if (err instanceof ApiException) {
    const body = statusBody(err.body);
    return new StatusKubeError(
      `${what}: ${body?.message ?? String(err.body).slice(0, 300)} (HTTP ${err.code}${body?.reason ? ` ${body.reason}` : ''})`,
      err.code,
      body?.reason,
      body,
    );
  }
  const e = err as { message?: string; code?: string; cause?: { code?: string } };
  const code = e.code ?? e.cause?.code;
  if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'ECONNRESET' || code === 'EHOSTUNREACH') {
    return new KubeError(
      `${what}: cannot reach the API server at ${server} (${code}). Is the cluster running? \`kind get clusters\` lists them; ${CREATE_HINT}`,
    );
  }
  const message = e.message ?? String(err);
  if (message.startsWith('Unrecognized API version and kind')) {
    return new KubeError(`${what}: the API server does not serve this kind (${message})`, 404, 'NotFound');
  }
  return new KubeError(`${what}: ${message}`);
}

/** client-node hands the error body over as text for some APIs and parsed for others. */
function statusBody(body: unknown): StatusBody | undefined {
  if (typeof body === 'string') {
    try {
      return JSON.parse(body) as StatusBody;
    } catch {
      return undefined;
    }
  }
  return typeof body === 'object' && body !== null ? (body as StatusBody) : undefined;
}

/** The FieldManagerConflict causes of a 409: `conflict with "kubectl-scale" using apps/v1` at `.spec.replicas`. */
export function conflictsOf(body: StatusBody | undefined): FieldConflict[] {
  const causes = body?.details?.causes ?? [];
  return causes
    .filter((c) => c.type === 'FieldManagerConflict' || c.type === undefined)
    .map((c) => ({
      field: c.field ?? '(unknown field)',
      manager: /conflict with "([^"]+)"/.exec(c.message ?? '')?.[1] ?? c.message ?? '(unknown manager)',
    }));
}

function describe(object: KubeObject): string {
  const ns = object.metadata.namespace;
  return `${object.kind} ${ns ? `${ns}/` : ''}${object.metadata.name}`;
}

/** Done as `kubectl rollout status` judges it. */
export function rolloutState(name: string, deployment: V1Deployment | undefined): RolloutState {
  const desired = deployment?.spec?.replicas ?? 1;
  const status = deployment?.status ?? {};
  const updated = status.updatedReplicas ?? 0;
  const available = status.availableReplicas ?? 0;
  const done =
    deployment !== undefined &&
    (status.observedGeneration ?? 0) >= (deployment.metadata?.generation ?? 0) &&
    updated >= desired &&
    (status.replicas ?? 0) <= updated &&
    available >= updated;
  return { name, desired, ready: Math.min(updated, available), done };
}

export function podInfo(pod: V1Pod): PodInfo {
  const statuses = [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])];
  const conditions = (pod.status?.conditions ?? []).map((c) => ({
    type: c.type,
    status: c.status,
    ...(c.reason ? { reason: c.reason } : {}),
    ...(c.message ? { message: c.message } : {}),
  }));
  const problems: string[] = [];
  for (const s of statuses) {
    const reason =
      s.state?.waiting?.reason ??
      s.state?.terminated?.reason ??
      (s.lastState?.terminated?.reason ? `last ${s.lastState.terminated.reason}` : undefined);
    if (reason && reason !== 'Completed') problems.push(`${s.name}: ${reason}`);
  }
  return {
    name: pod.metadata?.name ?? '',
    namespace: pod.metadata?.namespace ?? '',
    labels: pod.metadata?.labels ?? {},
    phase: pod.status?.phase ?? 'Unknown',
    ready: conditions.some((c) => c.type === 'Ready' && c.status === 'True'),
    terminating: pod.metadata?.deletionTimestamp !== undefined,
    restarts: Object.fromEntries(statuses.map((s) => [s.name, s.restartCount])),
    images: Object.fromEntries(
      [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])].map((c) => [
        c.name,
        c.image ?? '',
      ]),
    ),
    exits: Object.fromEntries(statuses.map((s) => [s.name, s.restartCount + (endedNotRestarted(s) ? 1 : 0)])),
    conditions,
    containerProblems: problems,
  };
}

/**
 * The container's process has ended and the kubelet has not started it again yet: it is terminated,
 * or waits in CrashLoopBackOff after its last end. (A container being created again is not: its
 * restartCount already counts the end.)
 */
function endedNotRestarted(status: V1ContainerStatus): boolean {
  if (status.state?.terminated) return true;
  return status.state?.waiting?.reason === 'CrashLoopBackOff' && status.lastState?.terminated !== undefined;
}

/**
 * The Lease as the API wants it. client-node sends a MicroTime as it is given, and a Date's ISO
 * string has milliseconds, which the API server refuses (it parses RFC3339Micro: six fractional
 * digits); client-node's V1MicroTime writes six.
 */
function v1Lease(namespace: string, lease: LeaseRecord): V1Lease {
  const micro = (iso: string | undefined) => (iso === undefined ? undefined : new V1MicroTime(iso));
  return {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: {
      name: lease.name,
      namespace,
      ...(lease.labels ? { labels: { ...lease.labels } } : {}),
      ...(lease.annotations ? { annotations: { ...lease.annotations } } : {}),
      ...(lease.resourceVersion !== undefined ? { resourceVersion: lease.resourceVersion } : {}),
    },
    spec: {
      ...(lease.holderIdentity !== undefined ? { holderIdentity: lease.holderIdentity } : {}),
      ...(lease.leaseDurationSeconds !== undefined
        ? { leaseDurationSeconds: lease.leaseDurationSeconds }
        : {}),
      ...(lease.acquireTime !== undefined ? { acquireTime: micro(lease.acquireTime) } : {}),
      ...(lease.renewTime !== undefined ? { renewTime: micro(lease.renewTime) } : {}),
      ...(lease.leaseTransitions !== undefined ? { leaseTransitions: lease.leaseTransitions } : {}),
    },
  };
}

/** client-node hands a MicroTime back as the string the server sent (it has no model for it), typed as a Date. */
function isoOf(time: unknown): string | undefined {
  if (time === undefined || time === null) return undefined;
  const parsed = new Date(time as string | Date);
  return Number.isNaN(parsed.getTime()) ? undefined : parsed.toISOString();
}

function leaseRecord(lease: V1Lease): LeaseRecord {
  const spec = lease.spec ?? {};
  const acquireTime = isoOf(spec.acquireTime);
  const renewTime = isoOf(spec.renewTime);
  return {
    name: lease.metadata?.name ?? '',
    ...(spec.holderIdentity !== undefined ? { holderIdentity: spec.holderIdentity } : {}),
    ...(spec.leaseDurationSeconds !== undefined ? { leaseDurationSeconds: spec.leaseDurationSeconds } : {}),
    ...(acquireTime !== undefined ? { acquireTime } : {}),
    ...(renewTime !== undefined ? { renewTime } : {}),
    ...(spec.leaseTransitions !== undefined ? { leaseTransitions: spec.leaseTransitions } : {}),
    labels: lease.metadata?.labels ?? {},
    annotations: lease.metadata?.annotations ?? {},
    ...(lease.metadata?.resourceVersion !== undefined
      ? { resourceVersion: lease.metadata.resourceVersion }
      : {}),
  };
}

export function nodeInfo(node: V1Node): NodeInfo {
  const allocatable = node.status?.allocatable ?? {};
  return {
    name: node.metadata?.name ?? '',
    ready: (node.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True'),
    allocatable: {
      cpuMillis: Math.round(quantity(allocatable.cpu ?? '0') * 1000),
      memoryBytes: Math.round(quantity(allocatable.memory ?? '0')),
    },
    addresses: (node.status?.addresses ?? []).map((a) => ({ type: a.type, address: a.address })),
  };
}

/** Exit code from the status channel: Success → 0, NonZeroExitCode → its ExitCode cause. */
function exitCodeOf(what: string, status: V1Status | undefined): number {
  if (!status) throw new KubeError(`${what}: the connection closed before the command's exit status arrived`);
  if (status.status === 'Success') return 0;
  if (status.reason === 'NonZeroExitCode') {
    const cause = status.details?.causes?.find((c) => c.reason === 'ExitCode');
    const code = Number(cause?.message);
    if (Number.isInteger(code)) return code;
  }
  throw new KubeError(
    `${what} failed: ${status.message ?? JSON.stringify(status)}`,
    status.code,
    status.reason,
  );
}

function collector(chunks: Buffer[]): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(Buffer.from(chunk));
      done();
    },
  });
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });
}
