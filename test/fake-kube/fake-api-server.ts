/**
 * A fake Kubernetes API server for tests: real HTTP and WebSocket on 127.0.0.1, the real wire
 * format, objects in memory. Enough of the API for the lab's client (lab/kube/client.ts, built on
 * @kubernetes/client-node) to run unchanged against it.
 *
 * Served:
 * - `GET /version`, `/api`, `/apis`, `/api/v1`, `/apis/<group>/<version>` (discovery for the kinds in
 *   resources.ts: everything `npm run synth` emits, plus Pod, Node, ReplicaSet, Job, ClusterRole(Binding)).
 * - Nodes as their kubelets register them (`nodes`, default one: kind's `chaos-lab-control-plane`,
 *   Ready, 4 CPUs and about 7.7 GiB allocatable, InternalIP 172.18.0.2).
 * - Server-side apply: `PATCH <object path>?fieldManager=…&force=…` with Content-Type
 *   `application/apply-patch+yaml` (any other patch type → 415), create-or-update, field ownership and
 *   409 Conflict Status with `FieldManagerConflict` causes as the real server sends them (the
 *   simplifications are in store.ts). `metadata.generation` bumps on spec changes; resourceVersion is
 *   a global counter.
 * - `POST` (create, 409 AlreadyExists; 404 `namespaces "…" not found` in a namespace that does not
 *   exist), `PUT` (replace: 404 when missing; a `metadata.resourceVersion` that is not the object's
 *   → 409 Conflict "the object has been modified"; field ownership is not tracked), `GET` one (404
 *   NotFound Status), `GET` list with `labelSelector` (`a=b,c!=d,e,!f`) and `fieldSelector`
 *   (`metadata.name=…`), `DELETE` (404 when missing; DeleteOptions' `preconditions.resourceVersion`
 *   or `uid` that is not the object's → 409 Conflict "Precondition failed"; a Deployment takes its
 *   Pods with it; a Pod with a grace period is marked terminating first). A Lease's `acquireTime`
 *   and `renewTime` are MicroTimes: anything but six fractional digits is refused with 400, as the
 *   real server's RFC3339Micro parse does. A Namespace is deleted as the real one is: DELETE sets `metadata.deletionTimestamp` and
 *   `status.phase: Terminating` and answers 200 with it, everything in it is deleted, and the
 *   namespace itself goes `namespaceTerminationMs` later; meanwhile creating anything in it (apply
 *   or POST of a new object) → 403 Forbidden with cause `NamespaceTerminating`, and another DELETE →
 *   409 Conflict, with the real server's messages. Lists leave kind/apiVersion off their items, as the real
 *   server does.
 * - `GET …?watch=true[&resourceVersion=N][&timeoutSeconds=S]`: `{"type":"ADDED|MODIFIED|DELETED",
 *   "object":…}` lines; from N it replays what happened after N, without N it starts with an ADDED
 *   per existing object.
 * - Exec over WebSocket (`…/pods/<pod>/exec?command=…&container=…`; v5/v4.channel.k8s.io; channel 1
 *   stdout, 2 stderr, 3 Status JSON). Unknown pod → 404, unknown container → 400, before the upgrade.
 * - Port-forward over WebSocket (`…/pods/<pod>/portforward?ports=N`, v4.channel.k8s.io: channel 0
 *   data, 1 error, the first frame on each carrying the port as 2 bytes little-endian).
 * - A simulated Deployment controller and kubelet (workloads.ts): Pods `<deploy>-<hash>-<xxxxx>`
 *   become Running/Ready after `readyDelayMs`, the Deployment's status follows, a deleted Pod is
 *   replaced; a Pod created directly runs too. No ReplicaSet objects exist (Pods' ownerReferences
 *   name one). A Secret's `stringData` is stored base64-encoded in `data`; a Namespace is `Active`
 *   at once.
 *
 * Options: `readyDelayMs` (30), `terminationDelayMs` (10), `namespaceTerminationMs` (100),
 * `token` (require a bearer token), `gitVersion` ('v1.33.1'), `nodes` ([DEFAULT_NODE]).
 *
 * Scenario API (on the object startFakeApiServer resolves to):
 * - `kubeconfig(path?, { context?, namespace? })` writes a kubeconfig (context `kind-chaos-lab`,
 *   bearer token when the server was started with one) and resolves to its path.
 * - `neverReady(ns, deployment, { reason?, message?, container?, restartCount? })`, `heal(ns, deployment)`,
 *   `setRestartCount(ns, pod, container, n)`, `restartContainer(ns, pod, container, { exitCode?, readyAfterMs? })`,
 *   `crashContainer(ns, pod, container, exitCode?)` (ended, waiting in CrashLoopBackOff)
 *   (the kubelet after the container's process died: restartCount + 1, the pod not Ready for a while).
 * - `onExec((call) => ({ stdout?, stderr?, exitCode?, error? }) | Promise<…>)`: the last handler
 *   registered that does not return undefined answers; default: exit 127 `<cmd>: not found`.
 *   `execs` records every call.
 * - `forwardPodPort(pod | RegExp, port, { host, port })`: the pod's port answers from that local
 *   address; an unmapped port gets the kubelet's "connection refused" on the error channel.
 * - `applyAs(manager, object, { force? })`: apply by another manager (e.g. to set up a conflict;
 *   throws store.ts's ApplyConflict on one without force);
 *   `own(manager, object, ['.spec.replicas'])`: hand fields to a manager as `kubectl scale` would.
 * - `object(apiVersion, kind, ns, name)`, `objects(apiVersion, kind, ns?)`, `pods(ns)`.
 * - `endWatches()` ends every open watch stream (as the server's watch timeout does);
 *   `openWatches()` counts them.
 * - `requests`: every request (method, path, query, contentType).
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse, STATUS_CODES } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import {
  type ApiResource,
  apiGroupList,
  apiResourceList,
  RESOURCES,
  resourceByKind,
  resourceByPlural,
} from './resources.ts';
import { ApplyConflict, type Obj, Store, type StoreEvent } from './store.ts';
import { type ExecCall, type ExecHandler, PodStreams, type PortTarget } from './streams.ts';
import { DEFAULT_NODE, type FakeNode, NODES, nodeObject, type PodFailure, Workloads } from './workloads.ts';

export type { ExecCall, ExecHandler, ExecReply, PortTarget } from './streams.ts';
export type { FakeNode, PodFailure } from './workloads.ts';

export interface FakeApiServerOptions {
  /** From Pod creation to Running/Ready. @default 30 */
  readonly readyDelayMs?: number;
  /** From a graceful Pod delete to the Pod being gone. @default 10 */
  readonly terminationDelayMs?: number;
  /** From a Namespace's DELETE (phase Terminating) to the Namespace being gone. @default 100 */
  readonly namespaceTerminationMs?: number;
  /** When set, every request must carry `Authorization: Bearer <token>` (401 otherwise). */
  readonly token?: string;
  /** What `GET /version` reports. @default 'v1.33.1' */
  readonly gitVersion?: string;
  /** The cluster's nodes. @default [DEFAULT_NODE] */
  readonly nodes?: readonly FakeNode[];
}

export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly query: Readonly<Record<string, string>>;
  readonly contentType?: string;
}

export interface FakeApiServer {
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  readonly requests: RecordedRequest[];
  readonly execs: ExecCall[];
  kubeconfig(path?: string, options?: { context?: string; namespace?: string }): Promise<string>;
  neverReady(namespace: string, deployment: string, failure?: PodFailure): void;
  heal(namespace: string, deployment: string): void;
  setRestartCount(namespace: string, pod: string, container: string, restartCount: number): void;
  restartContainer(
    namespace: string,
    pod: string,
    container: string,
    options?: { readonly exitCode?: number; readonly readyAfterMs?: number },
  ): void;
  crashContainer(namespace: string, pod: string, container: string, exitCode?: number): void;
  onExec(handler: ExecHandler): void;
  forwardPodPort(pod: string | RegExp, port: number, target: PortTarget): void;
  applyAs(manager: string, object: Record<string, unknown>, options?: { force?: boolean }): Obj;
  own(manager: string, object: Obj, fields: string[]): void;
  object(apiVersion: string, kind: string, namespace: string | undefined, name: string): Obj | undefined;
  objects(apiVersion: string, kind: string, namespace?: string): Obj[];
  pods(namespace: string): Obj[];
  endWatches(): void;
  /** Watch streams open now (a client that stops its watches leaves none). */
  openWatches(): number;
  close(): Promise<void>;
}

const APPLY_PATCH = 'application/apply-patch+yaml';
const NAMESPACES = resourceByKind('v1', 'Namespace') as ApiResource;

export async function startFakeApiServer(options: FakeApiServerOptions = {}): Promise<FakeApiServer> {
  const store = new Store();
  for (const node of options.nodes ?? [DEFAULT_NODE]) store.create(NODES, nodeObject(node));
  const workloads = new Workloads(store, options);
  const streams = new PodStreams(store);
  const requests: RecordedRequest[] = [];
  const watches = new Set<ServerResponse>();
  /** Directories kubeconfig() made; close() removes them. */
  const tempDirs: string[] = [];
  const timers = new Set<NodeJS.Timeout>();
  const context: HandlerContext = { store, workloads, watches, options, timers };

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://fake');
    requests.push(record(req, url));
    if (!authorized(req, options.token)) {
      sendStatus(res, 401, 'Unauthorized', 'Unauthorized');
      return;
    }
    handle(context, req, res, url).catch((err: unknown) => {
      if (!res.headersSent) sendStatus(res, 500, 'InternalError', `fake API server: ${String(err)}`);
      else res.destroy();
    });
  });
  const wss = new WebSocketServer({
    noServer: true,
    handleProtocols: (offered, req) => PodStreams.chooseProtocol(offered, req.url),
  });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = new URL(req.url ?? '/', 'http://fake');
    requests.push(record(req, url));
    if (!authorized(req, options.token)) {
      rejectUpgrade(socket, 401, statusBody(401, 'Unauthorized', 'Unauthorized'));
      return;
    }
    streams.upgrade(wss, req, socket, head, url, rejectUpgrade);
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;

  const kindOf = (apiVersion: string, kind: string): ApiResource => {
    const resource = resourceByKind(apiVersion, kind);
    if (!resource) throw new Error(`the fake API server does not serve ${apiVersion} ${kind}`);
    return resource;
  };

  return {
    url,
    requests,
    execs: streams.execs,
    async kubeconfig(path, kubeconfigOptions = {}) {
      let file = path;
      if (!file) {
        const dir = await mkdtemp(join(tmpdir(), 'fake-kube-'));
        tempDirs.push(dir);
        file = join(dir, 'config');
      }
      await writeFile(file, kubeconfigYaml(url, options.token, kubeconfigOptions));
      return file;
    },
    neverReady: (ns, deployment, failure) => workloads.neverReady(ns, deployment, failure),
    heal: (ns, deployment) => workloads.heal(ns, deployment),
    setRestartCount: (ns, pod, container, n) => workloads.setRestartCount(ns, pod, container, n),
    restartContainer: (ns, pod, container, restartOptions) =>
      workloads.restartContainer(ns, pod, container, restartOptions),
    crashContainer: (ns, pod, container, exitCode) => workloads.crashContainer(ns, pod, container, exitCode),
    onExec: (handler) => streams.onExec(handler),
    forwardPodPort: (pod, podPort, target) => streams.forwardPodPort(pod, podPort, target),
    applyAs(manager, object, applyOptions = {}) {
      const obj = object as Obj;
      return store.apply(kindOf(obj.apiVersion, obj.kind), obj, manager, applyOptions.force ?? false).object;
    },
    own(manager, object, fields) {
      const resource = kindOf(object.apiVersion, object.kind);
      const paths = fields.map((f) => f.split('.').filter((p) => p !== ''));
      store.own(resource, object.metadata.namespace, object.metadata.name, manager, paths);
    },
    object: (apiVersion, kind, ns, name) => store.get(kindOf(apiVersion, kind), ns, name),
    objects: (apiVersion, kind, ns) => store.list(kindOf(apiVersion, kind), ns),
    pods: (ns) => store.list(kindOf('v1', 'Pod'), ns),
    endWatches() {
      for (const res of watches) res.end();
      watches.clear();
    },
    openWatches: () => watches.size,
    async close() {
      workloads.close();
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      for (const res of watches) res.end();
      watches.clear();
      await streams.close();
      for (const client of wss.clients) client.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await Promise.all(tempDirs.map((dir) => rm(dir, { recursive: true, force: true })));
    },
  };
}

interface HandlerContext {
  readonly store: Store;
  readonly workloads: Workloads;
  readonly watches: Set<ServerResponse>;
  readonly options: FakeApiServerOptions;
  /** Pending namespace removals (close() clears them). */
  readonly timers: Set<NodeJS.Timeout>;
}

/** A parsed resource path: `/apis/apps/v1/namespaces/ns/deployments/name[/sub]`. */
interface Target {
  readonly resource: ApiResource;
  readonly namespace?: string;
  readonly name?: string;
  readonly subresource?: string;
}

async function handle(ctx: HandlerContext, req: IncomingMessage, res: ServerResponse, url: URL) {
  const path = url.pathname.replace(/\/+$/, '');
  if (req.method === 'GET' && path === '/version') {
    sendJson(res, 200, {
      major: '1',
      minor: (ctx.options.gitVersion ?? 'v1.33.1').split('.')[1] ?? '33',
      gitVersion: ctx.options.gitVersion ?? 'v1.33.1',
      platform: 'linux/amd64',
    });
    return;
  }
  if (req.method === 'GET' && path === '/api') {
    sendJson(res, 200, { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [] });
    return;
  }
  if (req.method === 'GET' && path === '/apis') {
    sendJson(res, 200, apiGroupList());
    return;
  }
  const discovery = /^\/(?:api\/(v1)|apis\/([^/]+\/[^/]+))$/.exec(path);
  if (discovery && req.method === 'GET') {
    const list = apiResourceList(discovery[1] ?? discovery[2] ?? '');
    if (list) sendJson(res, 200, list);
    else sendStatus(res, 404, 'NotFound', 'the server could not find the requested resource');
    return;
  }
  const target = parseTarget(path);
  if (!target) {
    sendStatus(res, 404, 'NotFound', 'the server could not find the requested resource');
    return;
  }
  if (target.subresource) {
    sendStatus(
      res,
      405,
      'MethodNotAllowed',
      `the fake API server does not serve ${target.subresource} over HTTP`,
    );
    return;
  }
  switch (req.method) {
    case 'GET':
      if (!target.name) {
        if (url.searchParams.get('watch') === 'true' || url.searchParams.get('watch') === '1') {
          watch(ctx, target, url, req, res);
        } else list(ctx, target, url, res);
      } else get(ctx, target, res);
      return;
    case 'PATCH':
      return apply(ctx, target, url, req, res);
    case 'POST':
      return create(ctx, target, req, res);
    case 'PUT':
      return replace(ctx, target, req, res);
    case 'DELETE':
      return remove(ctx, target, url, req, res);
    default:
      sendStatus(res, 405, 'MethodNotAllowed', `the fake API server does not implement ${req.method}`);
  }
}

function parseTarget(path: string): Target | undefined {
  const m = /^\/(?:api\/(v1)|apis\/([^/]+\/[^/]+))\/(.+)$/.exec(path);
  if (!m) return undefined;
  const groupVersion = m[1] ?? m[2] ?? '';
  const parts = (m[3] ?? '').split('/').map(decodeURIComponent);
  let namespace: string | undefined;
  let rest = parts;
  if (parts[0] === 'namespaces' && parts.length >= 3) {
    namespace = parts[1];
    rest = parts.slice(2);
  }
  const resource = resourceByPlural(groupVersion, rest[0] ?? '');
  if (!resource) return undefined;
  if (namespace !== undefined && !resource.namespaced) return undefined;
  return { resource, namespace, name: rest[1], subresource: rest[2] };
}

function get(ctx: HandlerContext, target: Target, res: ServerResponse) {
  const obj = ctx.store.get(target.resource, target.namespace, target.name ?? '');
  if (obj) sendJson(res, 200, obj);
  else notFound(res, target);
}

function list(ctx: HandlerContext, target: Target, url: URL, res: ServerResponse) {
  const matches = selector(url);
  const items = ctx.store.list(target.resource, target.namespace).filter(matches);
  sendJson(res, 200, {
    kind: `${target.resource.kind}List`,
    apiVersion: target.resource.groupVersion,
    metadata: { resourceVersion: String(ctx.store.resourceVersion) },
    items: items.map(({ apiVersion: _a, kind: _k, ...item }) => item),
  });
}

function watch(ctx: HandlerContext, target: Target, url: URL, req: IncomingMessage, res: ServerResponse) {
  const matches = selector(url);
  const relevant = (e: StoreEvent) =>
    e.resource === target.resource &&
    (target.namespace === undefined || e.object.metadata.namespace === target.namespace) &&
    matches(e.object);
  res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
  res.flushHeaders();
  const send = (type: string, object: Obj) => res.write(`${JSON.stringify({ type, object })}\n`);
  const from = url.searchParams.get('resourceVersion');
  if (from && from !== '0') {
    for (const e of ctx.store.eventsSince(Number(from))) if (relevant(e)) send(e.type, e.object);
  } else {
    for (const obj of ctx.store.list(target.resource, target.namespace).filter(matches)) send('ADDED', obj);
  }
  const unsubscribe = ctx.store.subscribe((e) => {
    if (relevant(e)) send(e.type, e.object);
  });
  ctx.watches.add(res);
  const timeout = Number(url.searchParams.get('timeoutSeconds') ?? 0);
  const timer = timeout > 0 ? setTimeout(() => res.end(), timeout * 1000) : undefined;
  const stop = () => {
    unsubscribe();
    clearTimeout(timer);
    ctx.watches.delete(res);
  };
  res.on('close', stop);
  res.on('finish', stop);
  req.on('close', () => {
    stop();
    if (!res.writableEnded) res.end();
  });
}

async function apply(
  ctx: HandlerContext,
  target: Target,
  url: URL,
  req: IncomingMessage,
  res: ServerResponse,
) {
  const contentType = (req.headers['content-type'] ?? '').split(';')[0]?.trim();
  const body = await readBody(req);
  if (contentType !== APPLY_PATCH) {
    sendStatus(
      res,
      415,
      'UnsupportedMediaType',
      `the body of the request was in an unknown format - accepted media types include: ${APPLY_PATCH} (the fake API server implements server-side apply only)`,
    );
    return;
  }
  const manager = url.searchParams.get('fieldManager');
  if (!manager) {
    sendStatus(
      res,
      422,
      'Invalid',
      'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch',
    );
    return;
  }
  let patch: Obj;
  try {
    patch = parseYaml(body) as Obj;
  } catch (err) {
    sendStatus(res, 400, 'BadRequest', `error decoding YAML: ${String(err)}`);
    return;
  }
  const problem = identityProblem(patch, target) ?? microTimeProblem(target.resource, patch);
  if (problem) {
    sendStatus(res, 400, 'BadRequest', problem);
    return;
  }
  if (refusedInTerminatingNamespace(ctx, target, target.name ?? '', res)) return;
  try {
    const force = url.searchParams.get('force') === 'true';
    const { object, created } = ctx.store.apply(target.resource, patch, manager, force);
    sendJson(res, created ? 201 : 200, object);
  } catch (err) {
    if (!(err instanceof ApplyConflict)) throw err;
    const name = target.name ?? '';
    const summary = err.causes.map((c) => `conflict with "${c.manager}" using ${c.apiVersion}: ${c.field}`);
    sendJson(res, 409, {
      ...statusBody(
        409,
        'Conflict',
        `Apply failed with ${err.causes.length} conflict${err.causes.length === 1 ? '' : 's'}: ${summary.join('\n')}`,
      ),
      details: {
        name,
        group: groupOf(target.resource),
        kind: target.resource.plural,
        causes: err.causes.map((c) => ({
          type: 'FieldManagerConflict',
          message: `conflict with "${c.manager}" using ${c.apiVersion}`,
          field: c.field,
        })),
      },
    });
  }
}

/** The body must name the object of the path, as the real server checks. */
function identityProblem(patch: Obj, target: Target): string | undefined {
  if (!patch || typeof patch !== 'object' || !patch.metadata) return 'the body is not a Kubernetes object';
  if (patch.kind !== target.resource.kind || patch.apiVersion !== target.resource.groupVersion) {
    return `the body's ${patch.apiVersion} ${patch.kind} does not match the path's ${target.resource.groupVersion} ${target.resource.kind}`;
  }
  if (patch.metadata.name !== target.name) {
    return `the name of the object (${patch.metadata.name}) does not match the name on the URL (${target.name})`;
  }
  if (target.resource.namespaced) {
    if (patch.metadata.namespace !== undefined && patch.metadata.namespace !== target.namespace) {
      return `the namespace of the provided object does not match the namespace sent on the request`;
    }
    (patch.metadata as { namespace?: string }).namespace = target.namespace;
  }
  return undefined;
}

async function create(ctx: HandlerContext, target: Target, req: IncomingMessage, res: ServerResponse) {
  const object = JSON.parse(await readBody(req)) as Obj;
  if (target.resource.namespaced) object.metadata.namespace = target.namespace;
  if (!object.metadata.name && typeof object.metadata.generateName === 'string') {
    object.metadata.name = `${object.metadata.generateName}${randomBytes(3).toString('hex').slice(0, 5)}`;
  }
  const invalid = microTimeProblem(target.resource, object);
  if (invalid) {
    sendStatus(res, 400, 'BadRequest', invalid);
    return;
  }
  if (refusedInMissingNamespace(ctx, target, res)) return;
  if (refusedInTerminatingNamespace(ctx, target, object.metadata.name, res)) return;
  if (ctx.store.get(target.resource, target.namespace, object.metadata.name)) {
    sendJson(res, 409, {
      ...statusBody(
        409,
        'AlreadyExists',
        `${target.resource.plural}${groupSuffix(target.resource)} "${object.metadata.name}" already exists`,
      ),
      details: { name: object.metadata.name, group: groupOf(target.resource), kind: target.resource.plural },
    });
    return;
  }
  sendJson(res, 201, ctx.store.create(target.resource, object));
}

/**
 * PUT: the object replaced by the body, as an update by `kubectl replace` or a client's `replace…`:
 * guarded by the body's resourceVersion when it gives one (optimistic concurrency), unconditional
 * otherwise. Its uid, creation time and field owners stay.
 */
async function replace(ctx: HandlerContext, target: Target, req: IncomingMessage, res: ServerResponse) {
  const object = JSON.parse(await readBody(req)) as Obj;
  const problem = identityProblem(object, target) ?? microTimeProblem(target.resource, object);
  if (problem) {
    sendStatus(res, 400, 'BadRequest', problem);
    return;
  }
  const name = target.name ?? '';
  const current = ctx.store.get(target.resource, target.namespace, name);
  if (!current) {
    notFound(res, target);
    return;
  }
  const asked = object.metadata.resourceVersion;
  if (asked !== undefined && asked !== current.metadata.resourceVersion) {
    conflict(
      res,
      target,
      `${cannotFulfil(target)}: the object has been modified; please apply your changes to the latest version and try again`,
    );
    return;
  }
  const { apiVersion: _a, kind: _k, metadata, ...content } = object;
  const kept = [
    'uid',
    'creationTimestamp',
    'resourceVersion',
    'generation',
    'managedFields',
    'deletionTimestamp',
  ];
  const replaced = ctx.store.update(target.resource, target.namespace, name, (o) => {
    for (const key of Object.keys(o)) if (key !== 'apiVersion' && key !== 'kind') delete o[key];
    Object.assign(o, structuredClone(content));
    o.metadata = {
      ...structuredClone(metadata),
      ...Object.fromEntries(
        kept.filter((k) => current.metadata[k] !== undefined).map((k) => [k, current.metadata[k]]),
      ),
      name,
      ...(target.namespace !== undefined ? { namespace: target.namespace } : {}),
    } as Obj['metadata'];
  });
  sendJson(res, 200, replaced);
}

async function remove(
  ctx: HandlerContext,
  target: Target,
  url: URL,
  req: IncomingMessage,
  res: ServerResponse,
) {
  const body = await readBody(req);
  const name = target.name ?? '';
  const current = ctx.store.get(target.resource, target.namespace, name);
  if (!current) {
    notFound(res, target);
    return;
  }
  const options = (body.trim() ? JSON.parse(body) : {}) as {
    gracePeriodSeconds?: number;
    preconditions?: { resourceVersion?: string; uid?: string };
  };
  const { resourceVersion, uid } = options.preconditions ?? {};
  if (resourceVersion !== undefined && resourceVersion !== current.metadata.resourceVersion) {
    conflict(
      res,
      target,
      `${cannotFulfil(target)}: Precondition failed: ResourceVersion in precondition: ${resourceVersion}, ResourceVersion in object meta: ${current.metadata.resourceVersion}`,
    );
    return;
  }
  if (uid !== undefined && uid !== current.metadata.uid) {
    conflict(
      res,
      target,
      `${cannotFulfil(target)}: Precondition failed: UID in precondition: ${uid}, UID in object meta: ${current.metadata.uid}`,
    );
    return;
  }
  let grace: number | undefined;
  const fromQuery = url.searchParams.get('gracePeriodSeconds');
  if (fromQuery !== null) grace = Number(fromQuery);
  else grace = options.gracePeriodSeconds;
  if (target.resource.kind === 'Pod' && target.namespace) {
    sendJson(res, 200, ctx.workloads.deletePod(target.namespace, name, grace));
    return;
  }
  if (target.resource.kind === 'Namespace') {
    terminateNamespace(ctx, target, name, res);
    return;
  }
  sendJson(res, 200, ctx.store.remove(target.resource, target.namespace, name));
}

/**
 * What the API server and the namespace controller do with a deleted Namespace: it stays, marked
 * Terminating, while its content is deleted, and goes a moment later. A second DELETE meanwhile
 * gets the registry's 409.
 */
function terminateNamespace(ctx: HandlerContext, target: Target, name: string, res: ServerResponse) {
  const current = ctx.store.get(target.resource, undefined, name);
  if (current?.metadata.deletionTimestamp) {
    sendJson(res, 409, {
      ...statusBody(
        409,
        'Conflict',
        `Operation cannot be fulfilled on namespaces "${name}": The system is ensuring all content is removed from this namespace.  Upon completion, this namespace will automatically be purged by the system.`,
      ),
      details: { name, kind: 'namespaces' },
    });
    return;
  }
  const terminating = ctx.store.update(target.resource, undefined, name, (ns) => {
    ns.metadata.deletionTimestamp = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    ns.spec = { finalizers: ['kubernetes'] };
    ns.status = { phase: 'Terminating' };
  });
  for (const resource of RESOURCES) {
    if (!resource.namespaced) continue;
    for (const obj of ctx.store.list(resource, name)) ctx.store.remove(resource, name, obj.metadata.name);
  }
  const timer = setTimeout(() => {
    ctx.timers.delete(timer);
    ctx.store.remove(target.resource, undefined, name);
  }, ctx.options.namespaceTerminationMs ?? 100);
  ctx.timers.add(timer);
  sendJson(res, 200, terminating);
}

/** `Operation cannot be fulfilled on leases.coordination.k8s.io "chaos-lab-run"`: how the real server begins a 409 Conflict. */
function cannotFulfil(target: Target): string {
  return `Operation cannot be fulfilled on ${target.resource.plural}${groupSuffix(target.resource)} "${target.name ?? ''}"`;
}

function conflict(res: ServerResponse, target: Target, message: string) {
  sendJson(res, 409, {
    ...statusBody(409, 'Conflict', message),
    details: {
      name: target.name ?? '',
      group: groupOf(target.resource) || undefined,
      kind: target.resource.plural,
    },
  });
}

/** RFC3339Micro, as metav1.MicroTime parses it: exactly six fractional digits. */
const MICRO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}(?:Z|[+-]\d\d:\d\d)$/;

/**
 * A Lease whose acquireTime or renewTime is no MicroTime: the real server cannot decode it (a
 * JavaScript Date's ISO string, with milliseconds, is one).
 */
function microTimeProblem(resource: ApiResource, object: Obj): string | undefined {
  if (resource.kind !== 'Lease') return undefined;
  const spec = (object.spec ?? {}) as Record<string, unknown>;
  for (const field of ['acquireTime', 'renewTime']) {
    const value = spec[field];
    if (value === undefined || value === null) continue;
    if (typeof value !== 'string' || !MICRO_TIME.test(value)) {
      const text = String(value);
      const fraction = /\.\d*.*$/.exec(text)?.[0] ?? text.slice(19);
      return `Lease in version "v1" cannot be handled as a Lease: parsing time "${text}" as "2006-01-02T15:04:05.000000Z07:00": cannot parse "${fraction}" as ".000000"`;
    }
  }
  return undefined;
}

/** The NamespaceLifecycle admission plugin: nothing is created in a namespace that does not exist (404). */
function refusedInMissingNamespace(ctx: HandlerContext, target: Target, res: ServerResponse): boolean {
  if (!target.resource.namespaced || target.namespace === undefined) return false;
  if (ctx.store.get(NAMESPACES, undefined, target.namespace)) return false;
  sendJson(res, 404, {
    ...statusBody(404, 'NotFound', `namespaces "${target.namespace}" not found`),
    details: { name: target.namespace, kind: 'namespaces' },
  });
  return true;
}

/**
 * The NamespaceLifecycle admission plugin: nothing new is created in a Terminating namespace
 * (objects that exist may still be updated). Sends the real 403 and returns true when refused.
 */
function refusedInTerminatingNamespace(
  ctx: HandlerContext,
  target: Target,
  name: string,
  res: ServerResponse,
): boolean {
  if (!target.resource.namespaced || target.namespace === undefined) return false;
  const namespace = ctx.store.get(NAMESPACES, undefined, target.namespace);
  if (!namespace?.metadata.deletionTimestamp) return false;
  if (ctx.store.get(target.resource, target.namespace, name)) return false;
  sendJson(res, 403, {
    ...statusBody(
      403,
      'Forbidden',
      `${target.resource.plural}${groupSuffix(target.resource)} "${name}" is forbidden: unable to create new content in namespace ${target.namespace} because it is being terminated`,
    ),
    details: {
      name,
      group: groupOf(target.resource) || undefined,
      kind: target.resource.plural,
      causes: [
        {
          reason: 'NamespaceTerminating',
          message: `namespace ${target.namespace} is being terminated`,
          field: 'metadata.namespace',
        },
      ],
    },
  });
  return true;
}

/** labelSelector (`a=b`, `a==b`, `a!=b`, `a`, `!a`) and fieldSelector (`metadata.name=`, `metadata.namespace=`). */
function selector(url: URL): (o: Obj) => boolean {
  const labelTerms = (url.searchParams.get('labelSelector') ?? '').split(',').filter((t) => t.trim());
  const fieldTerms = (url.searchParams.get('fieldSelector') ?? '').split(',').filter((t) => t.trim());
  return (o) => {
    const labels = o.metadata.labels ?? {};
    for (const term of labelTerms) {
      const [, key, op, value] = /^\s*(!?[^=!\s]+)\s*(==|=|!=)?\s*(.*?)\s*$/.exec(term) ?? [];
      if (!key) return false;
      if (!op) {
        if (key.startsWith('!') ? key.slice(1) in labels : !(key in labels)) return false;
      } else if (op === '!=') {
        if (labels[key] === value) return false;
      } else if (labels[key] !== value) return false;
    }
    for (const term of fieldTerms) {
      const [field, value] = term.split(/==?/);
      if (field === 'metadata.name' && o.metadata.name !== value) return false;
      if (field === 'metadata.namespace' && o.metadata.namespace !== value) return false;
    }
    return true;
  };
}

function notFound(res: ServerResponse, target: Target) {
  const name = target.name ?? '';
  sendJson(res, 404, {
    ...statusBody(
      404,
      'NotFound',
      `${target.resource.plural}${groupSuffix(target.resource)} "${name}" not found`,
    ),
    details: { name, group: groupOf(target.resource) || undefined, kind: target.resource.plural },
  });
}

function groupOf(resource: ApiResource): string {
  return resource.groupVersion.includes('/') ? (resource.groupVersion.split('/')[0] ?? '') : '';
}

function groupSuffix(resource: ApiResource): string {
  const group = groupOf(resource);
  return group ? `.${group}` : '';
}

export function statusBody(code: number, reason: string, message: string): Record<string, unknown> {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
}

function sendStatus(res: ServerResponse, code: number, reason: string, message: string) {
  sendJson(res, code, statusBody(code, reason, message));
}

function sendJson(res: ServerResponse, code: number, body: unknown) {
  const text = JSON.stringify(body);
  res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

/** Answers an upgrade request with a plain HTTP error, as the real server does before upgrading. */
export function rejectUpgrade(socket: Duplex, code: number, body: Record<string, unknown>) {
  const text = JSON.stringify(body);
  socket.end(
    `HTTP/1.1 ${code} ${STATUS_CODES[code] ?? 'Error'}\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`,
  );
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function record(req: IncomingMessage, url: URL): RecordedRequest {
  const contentType = req.headers['content-type'];
  return {
    method: req.method ?? 'GET',
    path: url.pathname,
    query: Object.fromEntries(url.searchParams),
    ...(contentType ? { contentType } : {}),
  };
}

function authorized(req: IncomingMessage, token: string | undefined): boolean {
  return token === undefined || req.headers.authorization === `Bearer ${token}`;
}

function kubeconfigYaml(
  server: string,
  token: string | undefined,
  options: { context?: string; namespace?: string },
): string {
  const name = options.context ?? 'kind-chaos-lab';
  return stringifyYaml({
    apiVersion: 'v1',
    kind: 'Config',
    // client-node refuses a plain-http server unless TLS verification is off.
    clusters: [{ name, cluster: { server, 'insecure-skip-tls-verify': true } }],
    users: [{ name, user: token ? { token } : {} }],
    contexts: [
      {
        name,
        context: {
          cluster: name,
          user: name,
          ...(options.namespace ? { namespace: options.namespace } : {}),
        },
      },
    ],
    'current-context': name,
    preferences: {},
  });
}
