/**
 * The lab's Kubernetes client against the fake API server: real HTTP, real WebSockets, real
 * sockets on loopback, client-node unchanged.
 */
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { synthLab } from '../../charts/__fixtures__/manifests.ts';
import { type FakeApiServer, startFakeApiServer } from '../../test/fake-kube/fake-api-server.ts';
import { connectCluster } from './client.ts';
import {
  ApplyConflictError,
  type Cluster,
  KubeError,
  type KubeObject,
  quantity,
  type RolloutState,
  RolloutTimeoutError,
} from './cluster.ts';

const NS = 'chaos-lab';

const namespace: KubeObject = { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } };

function deployment(name: string, replicas = 1, image = 'chaos-lab:dev'): KubeObject {
  const labels = { 'app.kubernetes.io/name': name };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: NS, labels },
    spec: {
      replicas,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: {
          containers: [
            { name: 'app', image, ports: [{ containerPort: 8080 }] },
            { name: 'fault-sidecar', image },
          ],
        },
      },
    },
  };
}

let server: FakeApiServer;
let cluster: Cluster;

beforeEach(async () => {
  server = await startFakeApiServer({ readyDelayMs: 20 });
  cluster = connectCluster({ kubeconfigPath: await server.kubeconfig() });
});

afterEach(async () => {
  await cluster.close();
  await server.close();
});

async function rolledOut(...deployments: KubeObject[]) {
  await cluster.apply([namespace, ...deployments]);
  await cluster.waitForRollouts(
    NS,
    deployments.map((d) => d.metadata.name),
    { timeoutMs: 10_000 },
  );
}

describe('connectCluster', () => {
  it('reads the version through the kubeconfig it is given', async () => {
    expect(cluster.context).toBe('kind-chaos-lab');
    expect(cluster.server).toBe(server.url);
    expect(await cluster.version()).toBe('v1.33.1');
  });

  it('says how to create the cluster when there is no kubeconfig', async () => {
    const home = await mkdtemp(join(tmpdir(), 'no-kube-'));
    expect(() => connectCluster({ env: { HOME: home } })).toThrow(
      /no kubeconfig found \(looked for .*\.kube\/config\).*npx chaos-lab up --target kind.*KUBECONFIG/,
    );
  });

  it('lists the contexts there are when the one asked for is not there', async () => {
    const path = await server.kubeconfig(undefined, { context: 'kind-other' });
    expect(() => connectCluster({ kubeconfigPath: path })).toThrow(
      /has no context "kind-chaos-lab" \(contexts there: kind-other\)/,
    );
    expect(connectCluster({ kubeconfigPath: path, context: 'kind-other' }).context).toBe('kind-other');
  });

  it('takes the kubeconfig from KUBECONFIG, the first file defining a name winning as in kubectl', async () => {
    const path = await server.kubeconfig();
    const other = await startFakeApiServer();
    const shadowed = await other.kubeconfig(join(await mkdtemp(join(tmpdir(), 'shadowed-')), 'config'));
    await other.close();
    const fromEnv = connectCluster({ env: { KUBECONFIG: `/nonexistent/config:${path}:${shadowed}` } });
    expect(fromEnv.server).toBe(server.url);
    expect(await fromEnv.version()).toBe('v1.33.1');
  });

  it('passes the abort signal to the request', async () => {
    await expect(cluster.version(AbortSignal.abort(new Error('stopped by the caller')))).rejects.toThrow(
      'stopped by the caller',
    );
    expect(server.requests.filter((r) => r.path === '/version')).toHaveLength(0);
  });

  it('says the cluster cannot be reached when nothing listens', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dead-kube-'));
    const path = join(dir, 'config');
    const closed = await startFakeApiServer();
    await closed.kubeconfig(path);
    await closed.close();
    const dead = connectCluster({ kubeconfigPath: path });
    await expect(dead.version()).rejects.toThrow(
      /cannot reach the API server at http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\)/,
    );
  });

  it('sends the bearer token of the kubeconfig', async () => {
    const guarded = await startFakeApiServer({ token: 's3cret' });
    try {
      const withToken = connectCluster({ kubeconfigPath: await guarded.kubeconfig() });
      expect(await withToken.version()).toBe('v1.33.1');
      // The WebSocket upgrade carries it too.
      await withToken.apply([namespace, deployment('account')]);
      await withToken.waitForRollouts(NS, ['account'], { timeoutMs: 10_000 });
      const [pod] = await withToken.listPods(NS);
      guarded.onExec(() => ({ stdout: 'ok' }));
      expect((await withToken.exec(NS, pod?.name ?? '', 'app', ['true'])).stdout).toBe('ok');
      await withToken.close();
      const dir = await mkdtemp(join(tmpdir(), 'tokenless-'));
      const path = join(dir, 'config');
      await writeFile(path, (await readFile(await guarded.kubeconfig(), 'utf8')).replace('s3cret', 'wrong'));
      await expect(connectCluster({ kubeconfigPath: path }).version()).rejects.toMatchObject({ status: 401 });
    } finally {
      await guarded.close();
    }
  });
});

describe('apply', () => {
  it('creates then updates with server-side apply, bumping generation only on change', async () => {
    const lines: string[] = [];
    await cluster.apply([namespace, deployment('account')], { progress: (l) => lines.push(l) });
    expect(lines).toEqual(['applied Namespace chaos-lab', 'applied Deployment chaos-lab/account']);

    const patches = server.requests.filter((r) => r.method === 'PATCH');
    expect(patches.map((r) => r.path)).toEqual([
      '/api/v1/namespaces/chaos-lab',
      '/apis/apps/v1/namespaces/chaos-lab/deployments/account',
    ]);
    for (const patch of patches) {
      expect(patch.contentType).toBe('application/apply-patch+yaml');
      expect(patch.query.fieldManager).toBe('chaos-lab');
      expect(patch.query.force).toBeUndefined();
    }
    const created = server.object('apps/v1', 'Deployment', NS, 'account');
    expect(created?.metadata.generation).toBe(1);

    await cluster.apply([deployment('account')]);
    expect(server.object('apps/v1', 'Deployment', NS, 'account')?.metadata.generation).toBe(1);

    await cluster.apply([deployment('account', 3)]);
    const updated = server.object('apps/v1', 'Deployment', NS, 'account');
    expect(updated?.metadata.generation).toBe(2);
    expect(updated?.spec).toMatchObject({ replicas: 3 });
    expect(updated?.metadata.managedFields?.map((m) => m.manager)).toContain('chaos-lab');
  });

  it('turns a conflict into an ApplyConflictError naming field and manager; force takes over', async () => {
    await cluster.apply([namespace, deployment('account', 2)]);
    // What `kubectl scale --replicas=4` leaves behind: another manager owning .spec.replicas.
    server.applyAs(
      'kubectl-scale',
      {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'account', namespace: NS },
        spec: { replicas: 4 },
      },
      { force: true },
    );

    const error = await cluster.apply([deployment('account', 2)]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApplyConflictError);
    const conflict = error as ApplyConflictError;
    expect(conflict.object).toBe('Deployment chaos-lab/account');
    expect(conflict.conflicts).toEqual([{ field: '.spec.replicas', manager: 'kubectl-scale' }]);
    expect(conflict.status).toBe(409);
    expect(conflict.message).toMatch(/\.spec\.replicas \(owned by kubectl-scale\).*--force-conflicts/);

    await cluster.apply([deployment('account', 2)], { force: true });
    expect(server.requests.at(-1)?.query.force).toBe('true');
    const taken = server.object('apps/v1', 'Deployment', NS, 'account');
    expect(taken?.spec).toMatchObject({ replicas: 2 });
  });

  it('applies the whole synthesized lab, and every Deployment of it rolls out', async () => {
    const manifests = synthLab() as KubeObject[];
    await cluster.apply(manifests);
    expect(server.requests.filter((r) => r.method === 'PATCH')).toHaveLength(manifests.length);
    // client-node serializes through its models, which drop any field they do not know: none may be lost.
    for (const m of manifests) {
      const stored = server.object(m.apiVersion, m.kind, m.metadata.namespace, m.metadata.name);
      const { stringData: _write_only, ...expected } = m as KubeObject & { stringData?: unknown };
      expect(stored, `${m.kind} ${m.metadata.name}`).toMatchObject(expected);
    }
    const deployments = manifests.filter((m) => m.kind === 'Deployment').map((m) => m.metadata.name);
    expect(deployments.length).toBeGreaterThan(5);
    await cluster.waitForRollouts(NS, deployments, { timeoutMs: 10_000 });
    expect(server.object('v1', 'Namespace', undefined, NS)?.status).toEqual({ phase: 'Active' });
  });

  it('says which object the API server does not know', async () => {
    const unknown: KubeObject = {
      apiVersion: 'example.com/v1',
      kind: 'Widget',
      metadata: { name: 'w', namespace: NS },
    };
    await expect(cluster.apply([unknown])).rejects.toThrow(/apply of Widget chaos-lab\/w: /);
  });
});

describe('delete', () => {
  it('deletes in reverse order with background propagation, and a missing object is no error', async () => {
    await cluster.apply([namespace, deployment('account')]);
    const lines: string[] = [];
    await cluster.delete([namespace, deployment('account'), deployment('never-applied')], {
      progress: (l) => lines.push(l),
    });
    expect(lines).toEqual([
      'already gone Deployment chaos-lab/never-applied',
      'deleted Deployment chaos-lab/account',
      'deleted Namespace chaos-lab',
    ]);
    const deletes = server.requests.filter((r) => r.method === 'DELETE');
    expect(deletes.every((r) => r.query.propagationPolicy === 'Background')).toBe(true);
    expect(server.object('apps/v1', 'Deployment', NS, 'account')).toBeUndefined();
    // The namespace is Terminating until the namespace controller has emptied it, then gone.
    expect(await cluster.namespacePhase(NS)).toBe('Terminating');
    const again: string[] = [];
    await cluster.delete([namespace], { progress: (l) => again.push(l) });
    expect(again).toEqual(['already being deleted Namespace chaos-lab']);
    await expect(cluster.apply([deployment('account')])).rejects.toThrow(
      'unable to create new content in namespace chaos-lab because it is being terminated',
    );
    await expect.poll(() => cluster.namespacePhase(NS), { timeout: 5_000 }).toBeUndefined();
    expect(server.object('v1', 'Namespace', undefined, NS)).toBeUndefined();
  });

  it('reads a namespace phase: Active, and undefined for none', async () => {
    await cluster.apply([namespace]);
    expect(await cluster.namespacePhase(NS)).toBe('Active');
    expect(await cluster.namespacePhase('no-such-namespace')).toBeUndefined();
  });
});

describe('waitForRollouts', () => {
  it('follows the watch until every deployment is available, reporting progress', async () => {
    await cluster.apply([namespace, deployment('account', 2), deployment('catalog')]);
    const seen: RolloutState[][] = [];
    await cluster.waitForRollouts(NS, ['account', 'catalog'], {
      timeoutMs: 10_000,
      progress: (s) => seen.push([...s]),
    });
    expect(seen.length).toBeGreaterThan(1);
    expect(seen[0]?.some((s) => !s.done)).toBe(true);
    expect(seen.at(-1)).toEqual([
      { name: 'account', desired: 2, ready: 2, done: true },
      { name: 'catalog', desired: 1, ready: 1, done: true },
    ]);
    expect(server.requests.some((r) => r.query.watch === 'true' && r.query.resourceVersion)).toBe(true);
    expect(server.openWatches()).toBe(0);

    const pods = await cluster.listPods(NS, 'app.kubernetes.io/name=account');
    expect(pods).toHaveLength(2);
    for (const pod of pods) {
      expect(pod.name).toMatch(/^account-[a-z0-9]{10}-[a-z0-9]{5}$/);
      expect(pod).toMatchObject({ namespace: NS, phase: 'Running', ready: true, terminating: false });
      expect(pod.restarts).toEqual({ app: 0, 'fault-sidecar': 0 });
    }
  });

  it('lists again when the server ends the watch', async () => {
    server.neverReady(NS, 'account');
    await cluster.apply([namespace, deployment('account')]);
    const lists = () =>
      server.requests.filter((r) => r.path.endsWith('/deployments') && !r.query.watch).length;
    const waiting = cluster.waitForRollouts(NS, ['account'], { timeoutMs: 30_000 });
    await until(() => server.openWatches() === 1);
    expect(lists()).toBe(1);
    server.endWatches();
    await until(() => lists() === 2 && server.openWatches() === 1);
    server.heal(NS, 'account');
    await waiting;
    expect(server.openWatches()).toBe(0);
  });

  it('times out naming the pod that is not ready and why', async () => {
    await rolledOut(deployment('catalog'));
    server.neverReady(NS, 'account', { reason: 'CrashLoopBackOff' });
    await cluster.apply([deployment('account')]);
    await until(async () =>
      (await cluster.listPods(NS, 'app.kubernetes.io/name=account')).some((p) => p.phase === 'Running'),
    );
    const error = await cluster
      .waitForRollouts(NS, ['account', 'catalog'], { timeoutMs: 400 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RolloutTimeoutError);
    const timeout = error as RolloutTimeoutError;
    expect(timeout.unready).toHaveLength(1);
    expect(timeout.unready[0]).toMatchObject({ name: 'account', ready: 0, desired: 1 });
    expect(timeout.unready[0]?.pod).toMatch(/^account-/);
    expect(timeout.unready[0]?.why).toBe('Ready=False ContainersNotReady; app: CrashLoopBackOff');
    expect(timeout.message).toMatch(
      /account 0\/1 \(pod account-\S+: Ready=False ContainersNotReady; app: CrashLoopBackOff\)/,
    );
    expect(server.openWatches()).toBe(0);

    const [pod] = await cluster.listPods(NS, 'app.kubernetes.io/name=account');
    expect(pod?.containerProblems).toEqual(['app: CrashLoopBackOff']);
    expect(pod?.restarts.app).toBe(3);
    // Three restarts, and the crash whose restart the back-off holds: four exits.
    expect(pod?.exits.app).toBe(4);
  });

  it('stops at once when aborted, leaving no watch open', async () => {
    server.neverReady(NS, 'account');
    await cluster.apply([namespace, deployment('account')]);
    const controller = new AbortController();
    const waiting = cluster.waitForRollouts(NS, ['account'], {
      timeoutMs: 60_000,
      signal: controller.signal,
    });
    await until(() => server.openWatches() === 1);
    controller.abort(new Error('user pressed ctrl-c'));
    await expect(waiting).rejects.toThrow('user pressed ctrl-c');
    await until(() => server.openWatches() === 0);
  });
});

describe('pods', () => {
  it('deletes a pod and its deployment replaces it', async () => {
    await rolledOut(deployment('account'));
    const [before] = await cluster.listPods(NS);
    await cluster.deletePod(NS, before?.name ?? '', { gracePeriodSeconds: 0 });
    await until(async () => {
      const pods = await cluster.listPods(NS);
      return pods.length === 1 && pods[0]?.name !== before?.name && pods[0]?.ready === true;
    });
    await expect(cluster.deletePod(NS, 'no-such-pod')).rejects.toMatchObject({
      status: 404,
      reason: 'NotFound',
    });
  });

  it('reports restart counts', async () => {
    await rolledOut(deployment('account'));
    const [pod] = await cluster.listPods(NS);
    server.setRestartCount(NS, pod?.name ?? '', 'fault-sidecar', 2);
    const [again] = await cluster.listPods(NS);
    expect(again?.restarts).toEqual({ app: 0, 'fault-sidecar': 2 });
  });

  it('reads and decodes a Secret', async () => {
    await cluster.apply([
      namespace,
      {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'chaos-lab-secrets', namespace: NS },
        data: { CHAOS_ADMIN_TOKEN: Buffer.from('tok-1').toString('base64') },
        // Write-only: the API server keeps it base64-encoded in data, as the chart's Secret relies on.
        stringData: { TRUST_KEY: 'key-1' },
      },
    ]);
    expect(await cluster.readSecret?.(NS, 'chaos-lab-secrets')).toEqual({
      CHAOS_ADMIN_TOKEN: 'tok-1',
      TRUST_KEY: 'key-1',
    });
  });
});

describe('nodes', () => {
  it('lists them with their readiness, allocatable CPU and memory, and addresses', async () => {
    const other = await startFakeApiServer({
      nodes: [
        { name: 'b-worker', cpu: '3500m', memory: '2Gi', ready: false },
        {
          name: 'a-control-plane',
          cpu: '2',
          memory: '1970380Ki',
          addresses: [
            { type: 'ExternalIP', address: '203.0.113.7' },
            { type: 'InternalIP', address: '10.0.0.4' },
          ],
        },
      ],
    });
    const client = connectCluster({ kubeconfigPath: await other.kubeconfig() });
    try {
      expect(await client.listNodes()).toEqual([
        {
          name: 'a-control-plane',
          ready: true,
          allocatable: { cpuMillis: 2000, memoryBytes: 1970380 * 1024 },
          addresses: [
            { type: 'ExternalIP', address: '203.0.113.7' },
            { type: 'InternalIP', address: '10.0.0.4' },
          ],
        },
        expect.objectContaining({
          name: 'b-worker',
          ready: false,
          allocatable: { cpuMillis: 3500, memoryBytes: 2 * 2 ** 30 },
        }),
      ]);
    } finally {
      await client.close();
      await other.close();
    }
  });

  it('reads quantities as the API server writes them', () => {
    expect(quantity('50m')).toBeCloseTo(0.05);
    expect(quantity('4')).toBe(4);
    expect(quantity('1.5')).toBe(1.5);
    expect(quantity('128Mi')).toBe(128 * 2 ** 20);
    expect(quantity('8025424Ki')).toBe(8025424 * 1024);
    expect(quantity('2G')).toBe(2e9);
    expect(quantity('1e3')).toBe(1000);
    expect(quantity(3)).toBe(3);
    expect(() => quantity('lots')).toThrow('"lots" is not a Kubernetes quantity');
  });
});

describe('exec', () => {
  it('collects stdout and stderr and reads the exit code from the status channel', async () => {
    await rolledOut(deployment('account'));
    const [pod] = await cluster.listPods(NS);
    const name = pod?.name ?? '';
    server.onExec(({ command }) =>
      command[2] === 'status'
        ? { stdout: 'lease: none\n', stderr: 'note\n', exitCode: 0 }
        : { stderr: 'tc: no such qdisc\n', exitCode: 3 },
    );
    const ok = await cluster.exec(NS, name, 'fault-sidecar', ['fault-sidecar.sh', '--', 'status']);
    expect(ok).toEqual({ stdout: 'lease: none\n', stderr: 'note\n', exitCode: 0 });
    const failed = await cluster.exec(NS, name, 'fault-sidecar', ['fault-sidecar.sh', '--', 'clear']);
    expect(failed).toEqual({ stdout: '', stderr: 'tc: no such qdisc\n', exitCode: 3 });
    expect(server.execs).toEqual([
      { namespace: NS, pod: name, container: 'fault-sidecar', command: ['fault-sidecar.sh', '--', 'status'] },
      { namespace: NS, pod: name, container: 'fault-sidecar', command: ['fault-sidecar.sh', '--', 'clear'] },
    ]);
  });

  it('gives exit 127 for a command nobody handles', async () => {
    await rolledOut(deployment('account'));
    const [pod] = await cluster.listPods(NS);
    const result = await cluster.exec(NS, pod?.name ?? '', 'app', ['nope']);
    expect(result.exitCode).toBe(127);
    expect(result.stderr).toMatch(/nope: not found/);
  });

  it('says which pod or container does not exist', async () => {
    await rolledOut(deployment('account'));
    const [pod] = await cluster.listPods(NS);
    const missingPod = await cluster.exec(NS, 'ghost', 'app', ['true']).catch((e: unknown) => e);
    expect(missingPod).toBeInstanceOf(KubeError);
    expect(missingPod).toMatchObject({ status: 404 });
    expect((missingPod as Error).message).toMatch(
      /exec of \[true\] in chaos-lab\/ghost container app: pod chaos-lab\/ghost not found/,
    );
    const missingContainer = await cluster
      .exec(NS, pod?.name ?? '', 'nope', ['true'])
      .catch((e: unknown) => e);
    expect((missingContainer as Error).message).toMatch(
      /has no container "nope" \(containers: app, fault-sidecar\)/,
    );
  });

  it('turns a failure other than an exit code into a KubeError', async () => {
    await rolledOut(deployment('account'));
    const [pod] = await cluster.listPods(NS);
    server.onExec(() => ({ error: 'OCI runtime exec failed: container is stopped' }));
    await expect(cluster.exec(NS, pod?.name ?? '', 'app', ['true'])).rejects.toThrow(
      /exec of \[true\] in chaos-lab\/account-\S+ container app failed: OCI runtime exec failed/,
    );
  });

  it('stops when aborted', async () => {
    await rolledOut(deployment('account'));
    const [pod] = await cluster.listPods(NS);
    server.onExec(() => new Promise(() => {}));
    const controller = new AbortController();
    const running = cluster.exec(NS, pod?.name ?? '', 'app', ['sleep', '60'], { signal: controller.signal });
    await until(() => server.execs.length === 1);
    controller.abort(new Error('interrupted'));
    await expect(running).rejects.toThrow('interrupted');
  });

  it('times out naming pod, container and command', async () => {
    await rolledOut(deployment('account'));
    const [pod] = await cluster.listPods(NS);
    server.onExec(() => new Promise(() => {}));
    await expect(
      cluster.exec(NS, pod?.name ?? '', 'app', ['sleep', '60'], { timeoutMs: 200 }),
    ).rejects.toThrow(
      /exec of \[sleep 60\] in chaos-lab\/account-\S+ container app did not finish within 200 ms/,
    );
  });
});

describe('portForward', () => {
  let backend: Server;
  beforeEach(async () => {
    backend = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => {
        body += c;
      });
      req.on('end', () => res.end(`${req.method} ${req.url} ${body}`));
    });
    await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
  });
  afterEach(async () => {
    backend.closeAllConnections();
    await new Promise((resolve) => backend.close(resolve));
  });

  it('reaches a real local http server through the forward, and close ends it', async () => {
    await rolledOut(deployment('account'));
    const [pod] = await cluster.listPods(NS);
    server.forwardPodPort(/^account-/, 8080, {
      host: '127.0.0.1',
      port: (backend.address() as AddressInfo).port,
    });
    const forward = await cluster.portForward(NS, pod?.name ?? '', 8080);
    expect(forward.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);

    const first = await fetch(`${forward.url}/health`);
    expect(await first.text()).toBe('GET /health ');
    const posts = await Promise.all(
      [1, 2, 3].map(async (i) =>
        (await fetch(`${forward.url}/echo`, { method: 'POST', body: `n=${i}` })).text(),
      ),
    );
    expect(posts).toEqual(['POST /echo n=1', 'POST /echo n=2', 'POST /echo n=3']);
    expect(server.requests.some((r) => r.path.endsWith('/portforward') && r.query.ports === '8080')).toBe(
      true,
    );

    await forward.close();
    await expect(fetch(`${forward.url}/health`)).rejects.toThrow();
  });

  it('ends the connection when nothing listens on the pod port', async () => {
    await rolledOut(deployment('account'));
    const [pod] = await cluster.listPods(NS);
    const forward = await cluster.portForward(NS, pod?.name ?? '', 9999);
    await expect(fetch(`${forward.url}/health`)).rejects.toThrow();
    await forward.close();
  });

  it('refuses a pod that does not exist', async () => {
    await cluster.apply([namespace]);
    await expect(cluster.portForward(NS, 'ghost', 8080)).rejects.toMatchObject({ status: 404 });
  });
});

/** Polls until the condition holds (the fake's controller works on timers). */
async function until(condition: () => boolean | Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms: ${condition}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
