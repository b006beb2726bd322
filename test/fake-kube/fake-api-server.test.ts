/**
 * The fake API server's own wire format, checked with plain fetch and `ws` (the client's tests in
 * lab/kube/client.test.ts check it through client-node): what the real server would answer.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { type FakeApiServer, startFakeApiServer } from './fake-api-server.ts';

const NS = 'chaos-lab';
const APPLY = 'application/apply-patch+yaml';

let server: FakeApiServer;
beforeEach(async () => {
  server = await startFakeApiServer({ readyDelayMs: 20, terminationDelayMs: 20 });
});
afterEach(async () => {
  await server.close();
});

function configMap(name: string, data: Record<string, string>, labels: Record<string, string> = {}) {
  const metadata = { name, namespace: NS, ...(Object.keys(labels).length > 0 ? { labels } : {}) };
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata, data };
}

async function apply(path: string, body: unknown, manager = 'chaos-lab', force = false) {
  const res = await fetch(`${server.url}${path}?fieldManager=${manager}${force ? '&force=true' : ''}`, {
    method: 'PATCH',
    headers: { 'Content-Type': APPLY },
    body: JSON.stringify(body),
  });
  // biome-ignore lint/suspicious/noExplicitAny: response bodies are read loosely, then asserted on.
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

const cmPath = (name: string) => `/api/v1/namespaces/${NS}/configmaps/${name}`;

describe('objects', () => {
  it('answers a missing object with a NotFound Status', async () => {
    const res = await fetch(`${server.url}${cmPath('nope')}`);
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'configmaps "nope" not found',
      reason: 'NotFound',
      details: { name: 'nope', kind: 'configmaps' },
      code: 404,
    });
  });

  it('refuses a patch that is not an apply patch (415) and an apply without a field manager (422)', async () => {
    const merge = await fetch(`${server.url}${cmPath('a')}`, {
      method: 'PATCH',
      headers: { 'Content-Type': 'application/merge-patch+json' },
      body: '{}',
    });
    expect(merge.status).toBe(415);
    expect(await merge.json()).toMatchObject({ reason: 'UnsupportedMediaType', code: 415 });
    const anonymous = await fetch(`${server.url}${cmPath('a')}`, {
      method: 'PATCH',
      headers: { 'Content-Type': APPLY },
      body: JSON.stringify(configMap('a', {})),
    });
    expect(anonymous.status).toBe(422);
  });

  it('creates (201), updates (200), and drops a field its manager stopped applying', async () => {
    const created = await apply(cmPath('a'), configMap('a', { x: '1', y: '2' }, { tier: 'one' }));
    expect(created.status).toBe(201);
    expect(created.body.metadata.managedFields[0]).toMatchObject({
      manager: 'chaos-lab',
      operation: 'Apply',
      fieldsType: 'FieldsV1',
      fieldsV1: { 'f:data': { 'f:x': {}, 'f:y': {} }, 'f:metadata': { 'f:labels': { 'f:tier': {} } } },
    });
    const updated = await apply(cmPath('a'), configMap('a', { x: '1' }));
    expect(updated.status).toBe(200);
    expect(updated.body.data).toEqual({ x: '1' });
    expect(updated.body.metadata.labels).toBeUndefined();
    expect(Number(updated.body.metadata.resourceVersion)).toBeGreaterThan(
      Number(created.body.metadata.resourceVersion),
    );
  });

  it('changes nothing on an apply that changes nothing, however much later', async () => {
    const first = await apply(cmPath('a'), configMap('a', { x: '1' }));
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    const again = await apply(cmPath('a'), configMap('a', { x: '1' }));
    expect(again.body.metadata.resourceVersion).toBe(first.body.metadata.resourceVersion);
    expect(again.body.metadata.managedFields).toEqual(first.body.metadata.managedFields);
  });

  it('shares a field applied with the same value, and conflicts on a different one', async () => {
    await apply(cmPath('a'), configMap('a', { x: '1' }));
    expect((await apply(cmPath('a'), configMap('a', { x: '1' }), 'other')).status).toBe(200);
    // Both own data.x now: chaos-lab dropping it leaves it with `other`.
    const kept = await apply(cmPath('a'), configMap('a', { y: '2' }));
    expect(kept.body.data).toEqual({ x: '1', y: '2' });
    const conflict = await apply(cmPath('a'), configMap('a', { y: '3' }), 'other');
    expect(conflict.status).toBe(409);
    expect(conflict.body).toEqual({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'Apply failed with 1 conflict: conflict with "chaos-lab" using v1: .data.y',
      reason: 'Conflict',
      details: {
        name: 'a',
        group: '',
        kind: 'configmaps',
        causes: [
          { type: 'FieldManagerConflict', message: 'conflict with "chaos-lab" using v1', field: '.data.y' },
        ],
      },
      code: 409,
    });
  });

  it('creates, replaces and deletes a Lease with resourceVersion guards, as the real server does', async () => {
    const leases = `/apis/coordination.k8s.io/v1/namespaces/${NS}/leases`;
    const micro = '2026-11-24T10:31:07.123456Z';
    const lease = (spec: Record<string, unknown>, resourceVersion?: string) => ({
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: 'run', ...(resourceVersion ? { resourceVersion } : {}) },
      spec,
    });
    const call = async (method: string, path: string, body?: unknown) => {
      const res = await fetch(`${server.url}${path}`, {
        method,
        headers: { 'Content-Type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      // biome-ignore lint/suspicious/noExplicitAny: response bodies are read loosely, then asserted on.
      return { status: res.status, body: (await res.json()) as Record<string, any> };
    };
    // No namespace yet: NamespaceLifecycle's 404.
    const nowhere = await call('POST', leases, lease({ renewTime: micro }));
    expect(nowhere).toMatchObject({
      status: 404,
      body: { reason: 'NotFound', message: 'namespaces "chaos-lab" not found' },
    });
    await apply(`/api/v1/namespaces/${NS}`, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });
    // A MicroTime has six fractional digits; a JavaScript Date's ISO string has three.
    const millis = await call('POST', leases, lease({ renewTime: '2026-11-24T10:31:07.123Z' }));
    expect(millis.status).toBe(400);
    expect(millis.body.message).toContain('cannot parse ".123Z" as ".000000"');
    const created = await call('POST', leases, lease({ holderIdentity: 'a', renewTime: micro }));
    expect(created.status).toBe(201);
    const again = await call('POST', leases, lease({ holderIdentity: 'b', renewTime: micro }));
    expect(again).toMatchObject({ status: 409, body: { reason: 'AlreadyExists' } });
    const rv = created.body.metadata.resourceVersion as string;
    const replaced = await call('PUT', `${leases}/run`, lease({ holderIdentity: 'b', renewTime: micro }, rv));
    expect(replaced.status).toBe(200);
    expect(replaced.body.spec.holderIdentity).toBe('b');
    expect(replaced.body.metadata.uid).toBe(created.body.metadata.uid);
    // The version read before is stale now: a replace and a delete guarded by it are refused.
    const stale = await call('PUT', `${leases}/run`, lease({ holderIdentity: 'c' }, rv));
    expect(stale).toMatchObject({
      status: 409,
      body: {
        reason: 'Conflict',
        message:
          'Operation cannot be fulfilled on leases.coordination.k8s.io "run": the object has been modified; please apply your changes to the latest version and try again',
      },
    });
    const guarded = await call('DELETE', `${leases}/run`, { preconditions: { resourceVersion: rv } });
    expect(guarded.status).toBe(409);
    expect(guarded.body.message).toContain(`Precondition failed: ResourceVersion in precondition: ${rv}`);
    const current = replaced.body.metadata.resourceVersion as string;
    expect(
      (await call('DELETE', `${leases}/run`, { preconditions: { resourceVersion: current } })).status,
    ).toBe(200);
    expect((await call('PUT', `${leases}/run`, lease({ holderIdentity: 'd' }))).status).toBe(404);
  });

  it('lists by label selector, without kind on the items', async () => {
    await apply(cmPath('a'), configMap('a', {}, { tier: 'one', app: 'x' }));
    await apply(cmPath('b'), configMap('b', {}, { tier: 'two', app: 'x' }));
    const list = async (selector: string) => {
      const res = await fetch(
        `${server.url}/api/v1/namespaces/${NS}/configmaps?labelSelector=${encodeURIComponent(selector)}`,
      );
      return (await res.json()) as { kind: string; items: { kind?: string; metadata: { name: string } }[] };
    };
    const both = await list('app=x');
    expect(both.kind).toBe('ConfigMapList');
    expect(both.items.map((i) => i.metadata.name)).toEqual(['a', 'b']);
    expect(both.items[0]?.kind).toBeUndefined();
    expect((await list('app=x,tier=two')).items.map((i) => i.metadata.name)).toEqual(['b']);
    expect((await list('tier!=two')).items.map((i) => i.metadata.name)).toEqual(['a']);
    expect((await list('!app')).items).toEqual([]);
  });
});

describe('watch', () => {
  it('replays what happened after a resourceVersion, then streams', async () => {
    const first = await apply(cmPath('a'), configMap('a', { x: '1' }));
    await apply(cmPath('a'), configMap('a', { x: '2' }));
    const controller = new AbortController();
    const res = await fetch(
      `${server.url}/api/v1/namespaces/${NS}/configmaps?watch=true&resourceVersion=${first.body.metadata.resourceVersion}`,
      { signal: controller.signal },
    );
    const events: { type: string; object: { data?: Record<string, string> } }[] = [];
    const reading = (async () => {
      const decoder = new TextDecoder();
      let buffered = '';
      for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
        buffered += decoder.decode(chunk);
        const lines = buffered.split('\n');
        buffered = lines.pop() ?? '';
        for (const line of lines) events.push(JSON.parse(line));
        if (events.length >= 3) return;
      }
    })();
    await until(() => events.length === 1);
    await fetch(`${server.url}${cmPath('a')}`, { method: 'DELETE' });
    await apply(cmPath('b'), configMap('b', {}));
    await reading;
    controller.abort();
    expect(events.map((e) => e.type)).toEqual(['MODIFIED', 'DELETED', 'ADDED']);
    expect(events[0]?.object.data).toEqual({ x: '2' });
    await until(() => server.openWatches() === 0);
  });
});

describe('workloads', () => {
  const deployment = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'account', namespace: NS },
    spec: {
      replicas: 2,
      selector: { matchLabels: { app: 'account' } },
      template: {
        metadata: { labels: { app: 'account' } },
        spec: { containers: [{ name: 'app', image: 'i' }] },
      },
    },
  };

  it('runs a Deployment’s pods, replaces a deleted one, and takes them along when it goes', async () => {
    await apply(`/apis/apps/v1/namespaces/${NS}/deployments/account`, deployment);
    // The Deployment's status follows its pods a turn of the event loop later, as a controller's would.
    const status = () =>
      server.object('apps/v1', 'Deployment', NS, 'account')?.status as
        | { availableReplicas?: number }
        | undefined;
    await until(() => status()?.availableReplicas === 2);
    expect(server.pods(NS).map((p) => (p.status as { phase: string }).phase)).toEqual(['Running', 'Running']);
    expect(status()).toMatchObject({
      observedGeneration: 1,
      replicas: 2,
      updatedReplicas: 2,
      availableReplicas: 2,
    });

    const victim = server.pods(NS)[0]?.metadata.name ?? '';
    const deleted = await fetch(`${server.url}/api/v1/namespaces/${NS}/pods/${victim}`, { method: 'DELETE' });
    expect(
      ((await deleted.json()) as { metadata: { deletionTimestamp?: string } }).metadata.deletionTimestamp,
    ).toBeTruthy();
    await until(() => {
      const names = server.pods(NS).map((p) => p.metadata.name);
      return names.length === 2 && !names.includes(victim);
    });

    await fetch(`${server.url}/apis/apps/v1/namespaces/${NS}/deployments/account`, { method: 'DELETE' });
    await until(() => server.pods(NS).length === 0);
  });

  it('restarts a container in its pod as the kubelet does: restartCount up, not Ready for a while', async () => {
    await apply(`/apis/apps/v1/namespaces/${NS}/deployments/account`, deployment);
    await until(() => server.pods(NS).every((p) => isReady(p)) && server.pods(NS).length === 2);
    const pod = server.pods(NS)[0]?.metadata.name ?? '';
    const container = () => {
      const status = server.pods(NS).find((p) => p.metadata.name === pod)?.status as
        | { containerStatuses: Status[] }
        | undefined;
      return status?.containerStatuses[0];
    };
    server.restartContainer(NS, pod, 'app', { readyAfterMs: 150 });
    expect(container()).toMatchObject({
      restartCount: 1,
      ready: false,
      lastState: { terminated: { exitCode: 137, reason: 'Error' } },
    });
    expect(isReady(server.pods(NS).find((p) => p.metadata.name === pod))).toBe(false);
    // The same pod, not a replacement.
    expect(server.pods(NS).map((p) => p.metadata.name)).toContain(pod);
    await until(() => isReady(server.pods(NS).find((p) => p.metadata.name === pod)));
    expect(container()).toMatchObject({ restartCount: 1, ready: true });
  });
});

type Status = Record<string, unknown>;

function isReady(pod: Record<string, unknown> | undefined): boolean {
  const conditions = (pod?.status as { conditions?: { type: string; status: string }[] } | undefined)
    ?.conditions;
  return conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

describe('nodes', () => {
  it("has kind's one Ready node unless told otherwise, and the nodes it is given", async () => {
    const res = await fetch(`${server.url}/api/v1/nodes`);
    const list = (await res.json()) as { items: { metadata: { name: string }; status: Status }[] };
    expect(list.items.map((n) => n.metadata.name)).toEqual(['chaos-lab-control-plane']);
    expect(list.items[0]?.status).toMatchObject({
      allocatable: { cpu: '4', memory: '8025424Ki' },
      addresses: [{ type: 'InternalIP', address: '172.18.0.2' }, { type: 'Hostname' }],
    });
    const small = await startFakeApiServer({
      nodes: [{ name: 'tiny', cpu: '2', memory: '1Gi', ready: false }],
    });
    try {
      const node = (await (await fetch(`${small.url}/api/v1/nodes/tiny`)).json()) as { status: Status };
      expect(node.status).toMatchObject({
        allocatable: { cpu: '2', memory: '1Gi' },
        conditions: expect.arrayContaining([expect.objectContaining({ type: 'Ready', status: 'Unknown' })]),
      });
    } finally {
      await small.close();
    }
  });
});

describe('exec and port-forward', () => {
  async function runningPod(): Promise<string> {
    await apply(`/api/v1/namespaces/${NS}/pods/solo`, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'solo', namespace: NS },
      spec: { containers: [{ name: 'app', image: 'i' }] },
    });
    return 'solo';
  }

  it('speaks v4.channel.k8s.io to a client that offers only it, status on channel 3', async () => {
    const pod = await runningPod();
    server.onExec(() => ({ stdout: 'hi', exitCode: 2 }));
    const ws = new WebSocket(
      `${server.url.replace('http', 'ws')}/api/v1/namespaces/${NS}/pods/${pod}/exec?command=x&container=app&stdout=true`,
      ['v4.channel.k8s.io'],
    );
    const frames: Buffer[] = [];
    ws.on('message', (data: Buffer) => frames.push(data));
    await new Promise((resolve) => ws.on('close', resolve));
    expect(ws.protocol).toBe('v4.channel.k8s.io');
    expect(frames.map((f) => f[0])).toEqual([1, 3]);
    expect(frames[0]?.subarray(1).toString()).toBe('hi');
    expect(JSON.parse(frames[1]?.subarray(1).toString() ?? '')).toMatchObject({
      status: 'Failure',
      reason: 'NonZeroExitCode',
      details: { causes: [{ reason: 'ExitCode', message: '2' }] },
    });
  });

  it('answers an exec on an unknown pod with 404 before upgrading', async () => {
    const ws = new WebSocket(
      `${server.url.replace('http', 'ws')}/api/v1/namespaces/${NS}/pods/ghost/exec?command=x`,
      ['v4.channel.k8s.io'],
    );
    const status = await new Promise<number | undefined>((resolve) => {
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode));
      ws.on('open', () => resolve(undefined));
    });
    expect(status).toBe(404);
  });

  it('sends the port on channels 0 and 1, then the kubelet’s error for a port nothing listens on', async () => {
    const pod = await runningPod();
    const ws = new WebSocket(
      `${server.url.replace('http', 'ws')}/api/v1/namespaces/${NS}/pods/${pod}/portforward?ports=9999`,
      ['v5.channel.k8s.io', 'v4.channel.k8s.io'],
    );
    const frames: Buffer[] = [];
    ws.on('message', (data: Buffer) => frames.push(data));
    await new Promise((resolve) => ws.on('close', resolve));
    expect(ws.protocol).toBe('v4.channel.k8s.io');
    expect(frames[0]).toEqual(Buffer.from([0, 0x0f, 0x27]));
    expect(frames[1]).toEqual(Buffer.from([1, 0x0f, 0x27]));
    expect(frames[2]?.[0]).toBe(1);
    expect(frames[2]?.subarray(1).toString()).toMatch(/connect: connection refused/);
  });
});

async function until(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms: ${condition}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
