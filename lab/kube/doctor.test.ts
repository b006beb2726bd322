/**
 * The doctor: docker and kind checks against fake executables that print what the real ones print
 * (Docker cannot run here), the context and the probes against the fake API server with the real
 * client. The probe's `tc` answers are those of a real `tc` on a kernel without sch_netem (this
 * machine's), and of one with it.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { TEST_SECRETS } from '../../charts/__fixtures__/manifests.ts';
import {
  type FakeApiServer,
  type FakeNode,
  startFakeApiServer,
} from '../../test/fake-kube/fake-api-server.ts';
import { type FakeDockerKind, fakeDockerKind } from './__fixtures__/fake-docker-kind.ts';
import { connectCluster } from './client.ts';
import { type Cluster, KubeError } from './cluster.ts';
import { processRunner } from './commands.ts';
import {
  type CheckResult,
  checkContext,
  checkDocker,
  checkKind,
  checkKindCluster,
  checkResources,
  DEFAULT_PROBE_LIFETIME_MS,
  MIN_KIND_VERSION,
  PINNED_NODE_IMAGE,
  PROBE_LABEL,
  parseKindVersion,
  probeLifetimeMs,
  probeNetworkPolicy,
  renderChecks,
  requestsOf,
  runDoctor,
  runProbes,
  withProbePod,
} from './doctor.ts';
import { LAB_IMAGE, LAB_NAMESPACE, labManifests } from './kind-lab.ts';

/** The lab as `up` applies it: what the resources check sums. */
const MANIFESTS = labManifests({ secrets: TEST_SECRETS, image: LAB_IMAGE });

const REPO = path.join(import.meta.dirname, '..', '..');

/** What `tc qdisc add dev lo root netem delay 1ms` answers on a kernel without sch_netem (exit 2). */
const NO_NETEM = { stderr: 'Error: Specified qdisc kind is unknown.\n', exitCode: 2 };

let bins: FakeDockerKind;
let fake: FakeApiServer;
let kubeconfig: string;

beforeAll(async () => {
  bins = fakeDockerKind();
  fake = await startFakeApiServer({ readyDelayMs: 20 });
  kubeconfig = await fake.kubeconfig();
});

afterAll(async () => {
  await fake?.close();
  bins?.remove();
});

afterEach(() => bins.clusterExists(false));

const runner = (behaviour: Record<string, string> = {}) => processRunner(bins.env(behaviour));
const connect = (context: string) => connectCluster({ context, kubeconfigPath: kubeconfig });
const byName = (results: readonly CheckResult[], name: string) => {
  const found = results.find((r) => r.name === name);
  if (!found) throw new Error(`no check ${name} in ${results.map((r) => r.name).join(', ')}`);
  return found;
};

describe('docker and kind', () => {
  it('reports a running daemon with its version', async () => {
    expect(await checkDocker(runner())).toEqual({
      name: 'docker',
      status: 'ok',
      detail: 'the daemon runs (server 28.3.2)',
    });
  });

  it('tells a stopped daemon from a missing docker, each with its fix', async () => {
    const stopped = await checkDocker(runner({ FAKE_DOCKER: 'stopped' }));
    expect(stopped).toMatchObject({
      status: 'fail',
      detail: 'docker is installed but its daemon is not running',
    });
    expect(stopped.fix).toContain('sudo systemctl start docker');
    expect(stopped.fix).toContain('colima start');

    const missing = await checkDocker(processRunner({ PATH: '/nonexistent' }));
    expect(missing).toMatchObject({
      status: 'fail',
      detail: 'docker is not installed (no `docker` on PATH)',
    });
    expect(missing.fix).toContain('Docker Desktop');

    const denied = await checkDocker(runner({ FAKE_DOCKER: 'denied' }));
    expect(denied.detail).toContain('permission denied');
    expect(denied.fix).toContain('usermod -aG docker');
  });

  it('accepts kind v0.31.0, the release of the pinned node image, and refuses an older one', async () => {
    expect(await checkKind(runner())).toMatchObject({ status: 'ok', detail: 'kind v0.31.0' });
    expect(await checkKind(runner({ FAKE_KIND_VERSION: '0.32.1' }))).toMatchObject({ status: 'ok' });
    // v0.30.0 enforces NetworkPolicy, but was not made for kindest/node:v1.33.7.
    const old = await checkKind(runner({ FAKE_KIND_VERSION: '0.30.0' }));
    expect(old).toMatchObject({
      status: 'fail',
      detail:
        'kind v0.30.0 is too old for the node image kind/cluster.yaml pins (kindest/node:v1.33.7, published with kind v0.31.0)',
    });
    expect(old.fix).toContain('install kind v0.31.0 or newer');
    expect(old.fix).toContain('go install sigs.k8s.io/kind@v0.31.0');
    expect((await checkKind(runner({ FAKE_KIND_VERSION: '0.24.0' }))).status).toBe('fail');
    expect(parseKindVersion('kind v0.31.0 go1.24.6 linux/amd64')).toEqual([0, 31, 0]);
    expect(parseKindVersion('kind v1.0.0-alpha go1.25 darwin/arm64')).toEqual([1, 0, 0]);
  });

  it('requires the kind release of the node image kind/cluster.yaml pins: change them together', () => {
    const config = parseYaml(readFileSync(path.join(REPO, 'kind', 'cluster.yaml'), 'utf8')) as {
      nodes: { image: string }[];
    };
    expect(config.nodes.map((n) => n.image)).toEqual([PINNED_NODE_IMAGE]);
    expect(MIN_KIND_VERSION).toEqual([0, 31, 0]);
  });

  it('reports a missing kind cluster with how to create it', async () => {
    const missing = await checkKindCluster(runner());
    expect(missing).toMatchObject({ status: 'fail', detail: 'no kind cluster named chaos-lab' });
    expect(missing.fix).toContain('npx chaos-lab up --target kind');
    bins.clusterExists(true);
    expect(await checkKindCluster(runner())).toMatchObject({ status: 'ok' });
  });
});

describe('the context', () => {
  it('shows the server version when the API server answers', async () => {
    const { result, cluster } = await checkContext(connect, 'kind-chaos-lab');
    await cluster?.close();
    expect(result.status).toBe('ok');
    expect(result.detail).toContain(`kind-chaos-lab: API server ${fake.url} answers (Kubernetes v1.33.1)`);
  });

  it('names a missing context and the contexts there are', async () => {
    const { result, cluster } = await checkContext(connect, 'kind-elsewhere');
    expect(cluster).toBeUndefined();
    expect(result.status).toBe('fail');
    expect(result.detail).toContain('no context "kind-elsewhere"');
    expect(result.detail).toContain('kind-chaos-lab');
  });

  it('fails when the API server does not answer', async () => {
    const gone = await startFakeApiServer();
    // Kept outside the server's temporary directory, which close() removes.
    const file = await gone.kubeconfig(path.join(bins.dir, 'gone-kubeconfig'));
    await gone.close();
    const { result } = await checkContext(
      (context) => connectCluster({ context, kubeconfigPath: file }),
      'kind-chaos-lab',
    );
    expect(result.status).toBe('fail');
    expect(result.fix).toContain('docker start chaos-lab-control-plane');
  });
});

describe('the doctor with the lab deployed (probes in a pod)', () => {
  let cluster: Cluster;

  beforeAll(async () => {
    cluster = connect('kind-chaos-lab');
    const objects = labManifests({ secrets: TEST_SECRETS, image: LAB_IMAGE });
    await cluster.apply(objects);
    const deployments = objects.filter((o) => o.kind === 'Deployment').map((o) => o.metadata.name);
    await cluster.waitForRollouts(LAB_NAMESPACE, deployments, { timeoutMs: 30_000 });
  }, 60_000);

  afterAll(async () => {
    await cluster?.close();
  });

  /** Exec answers: tc as given; the fetch of a backend blocked for the probe pod unless `reachable`. */
  function cluster_answers(tc: { stderr?: string; exitCode?: number }, reachable = false) {
    fake.onExec((call) => {
      if (call.command[0] === 'tc') return tc;
      if (call.command[0] === 'node') {
        return call.pod.startsWith('chaos-lab-doctor') ? { exitCode: reachable ? 0 : 1 } : { exitCode: 0 };
      }
      return undefined;
    });
  }

  const doctor = () =>
    runDoctor({
      namespace: LAB_NAMESPACE,
      image: LAB_IMAGE,
      imageFromRegistry: false,
      manifests: MANIFESTS,
      run: runner(),
      connect,
    });

  const probePods = () =>
    fake
      .pods(LAB_NAMESPACE)
      .filter((p) => (p.metadata as { labels?: Record<string, string> }).labels?.[PROBE_LABEL]);

  it('passes every check, and deletes its probe pod', async () => {
    bins.clusterExists(true);
    cluster_answers({ exitCode: 0 });
    const probeSpecs: unknown[] = [];
    fake.onExec((call) => {
      if (call.command[0] === 'tc' && call.command[2] === 'add') {
        probeSpecs.push(fake.object('v1', 'Pod', LAB_NAMESPACE, call.pod)?.spec);
      }
      return undefined;
    });
    const results = await doctor();
    expect(results.map((r) => [r.name, r.status])).toEqual([
      ['docker', 'ok'],
      ['kind', 'ok'],
      ['cluster', 'ok'],
      ['context', 'ok'],
      ['resources', 'ok'],
      ['netem', 'ok'],
      ['network-policy', 'ok'],
    ]);
    expect(byName(results, 'network-policy').detail).toMatch(
      /cannot reach account:\d+, gateway-\w+-\w+-\w+ can/,
    );
    // The probe ran as the fault sidecar does: root, NET_ADMIN without the CAP_ prefix.
    expect(probeSpecs).toHaveLength(1);
    expect(probeSpecs[0]).toMatchObject({
      containers: [
        {
          image: 'chaos-lab:dev',
          imagePullPolicy: 'IfNotPresent',
          command: ['sleep', 'infinity'],
          securityContext: { runAsUser: 0, capabilities: { add: ['NET_ADMIN'] } },
        },
      ],
      activeDeadlineSeconds: DEFAULT_PROBE_LIFETIME_MS / 1000,
    });
    const tcCalls = fake.execs.filter((e) => e.command[0] === 'tc').map((e) => e.command.join(' '));
    expect(tcCalls.slice(-2)).toEqual([
      'tc qdisc add dev eth0 root netem delay 1ms',
      'tc qdisc del dev eth0 root',
    ]);
    expect(probePods()).toEqual([]);
    expect(renderChecks(results)[0]).toBe('✓ docker          the daemon runs (server 28.3.2)');
  }, 60_000);

  it('says the node kernel has no sch_netem, with the fix, and still deletes the probe pod', async () => {
    bins.clusterExists(true);
    cluster_answers(NO_NETEM);
    const results = await doctor();
    const netem = byName(results, 'netem');
    // A warning: the lab works without netem (the fault proxy sidecar applies latency and loss).
    expect(netem).toMatchObject({
      status: 'warn',
      detail: 'tc netem in a pod: Error: Specified qdisc kind is unknown.',
    });
    expect(netem.fix).toContain('sudo modprobe sch_netem');
    expect(netem.fix).toContain('faults that ask for `injector: netem` are refused');
    expect(probePods()).toEqual([]);
    const lines = renderChecks(results);
    expect(lines).toContain('! netem           tc netem in a pod: Error: Specified qdisc kind is unknown.');
    expect(lines.some((l) => l.trim().startsWith('fix: the node kernel has no sch_netem'))).toBe(true);
  }, 60_000);

  it('says NET_ADMIN was not granted when tc is not permitted', async () => {
    bins.clusterExists(true);
    cluster_answers({ stderr: 'RTNETLINK answers: Operation not permitted\n', exitCode: 2 });
    const netem = byName(await doctor(), 'netem');
    expect(netem.status).toBe('warn');
    expect(netem.detail).toContain('NET_ADMIN was not granted');
    expect(netem.fix).toContain('PodSecurity');
  }, 60_000);

  it('warns when a pod that is not a gateway reaches a backend: policies not enforced', async () => {
    bins.clusterExists(true);
    cluster_answers({ exitCode: 0 }, true);
    const results = await doctor();
    const policy = byName(results, 'network-policy');
    expect(policy.status).toBe('warn');
    expect(policy.detail).toContain('NetworkPolicies are NOT enforced');
    expect(policy.fix).toContain('kind >= 0.24');
    expect(renderChecks(results).some((l) => l.startsWith('! network-policy'))).toBe(true);
    expect(probePods()).toEqual([]);
  }, 60_000);

  /** The real cluster, but the first `refusals` applies of the probe pod answer 403 with `message`. */
  function refusing(message: string, refusals: number): Cluster {
    let left = refusals;
    return new Proxy(cluster, {
      get(target, key, receiver) {
        if (key === 'apply') {
          return async (...args: Parameters<Cluster['apply']>) => {
            if (args[0].some((o) => o.kind === 'Pod') && left-- > 0)
              throw new KubeError(message, 403, 'Forbidden');
            return target.apply(...args);
          };
        }
        const value = Reflect.get(target, key, receiver);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
  }

  it("waits for the new namespace's default ServiceAccount before creating the probe pod", async () => {
    cluster_answers({ exitCode: 0 });
    const results = await runProbes(
      refusing(
        'pods "chaos-lab-doctor-1" is forbidden: error looking up service account chaos-lab/default: serviceaccount "default" not found',
        2,
      ),
      { namespace: LAB_NAMESPACE, image: LAB_IMAGE, networkPolicy: false },
    );
    expect(results).toEqual([expect.objectContaining({ name: 'netem', status: 'ok' })]);
  }, 30_000);

  it('keeps the probe pod as long as up waits between the probes, and deletes it after', async () => {
    cluster_answers({ exitCode: 0 });
    const upTimeoutMs = 10 * 60_000;
    let during: Record<string, unknown> | undefined;
    const results = await runProbes(cluster, {
      namespace: LAB_NAMESPACE,
      image: LAB_IMAGE,
      networkPolicy: true,
      lifetimeMs: probeLifetimeMs(upTimeoutMs),
      beforeNetworkPolicy: async () => {
        during = probePods()[0]?.spec as Record<string, unknown>;
      },
    });
    expect(results.map((r) => [r.name, r.status])).toEqual([
      ['netem', 'ok'],
      ['network-policy', 'ok'],
    ]);
    // It outlives the longest wait for the rollouts (a fixed `sleep 300` did not), and still ends by
    // itself should the doctor be killed before deleting it.
    expect(during).toMatchObject({
      activeDeadlineSeconds: 90 + 600 + 120,
      containers: [expect.objectContaining({ command: ['sleep', 'infinity'] })],
    });
    expect(during?.activeDeadlineSeconds as number).toBeGreaterThan(upTimeoutMs / 1000);
    expect(probePods()).toEqual([]);
  }, 30_000);

  it('says PodSecurity refused NET_ADMIN when the probe pod is forbidden', async () => {
    const results = await runProbes(
      refusing(
        'pods "chaos-lab-doctor-1" is forbidden: violates PodSecurity "baseline:latest": non-default capabilities (container "probe" must not include "NET_ADMIN" in securityContext.capabilities.add)',
        1,
      ),
      { namespace: LAB_NAMESPACE, image: LAB_IMAGE, networkPolicy: true },
    );
    expect(results.map((r) => [r.name, r.status])).toEqual([
      ['netem', 'fail'],
      ['network-policy', 'skipped'],
    ]);
    expect(results[0]?.detail).toContain('the probe pod (root with NET_ADMIN) was refused');
    expect(results[0]?.fix).toContain('pod-security.kubernetes.io/enforce=privileged');
  });

  it('cannot call policies enforced when no gateway is ready to show the backend answers', async () => {
    cluster_answers({ exitCode: 0 });
    const elsewhere = 'no-lab-here';
    await cluster.apply([{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: elsewhere } }]);
    const result = await withProbePod(cluster, { namespace: elsewhere, image: LAB_IMAGE }, (pod) =>
      probeNetworkPolicy(cluster, elsewhere, pod),
    );
    expect(result.status).toBe('warn');
    expect(result.detail).toContain('no gateway is ready to show that it answers at all');
  }, 30_000);

  it('with --context: no docker or kind checks, and the image must come from a registry', async () => {
    cluster_answers({ exitCode: 0 });
    const results = await runDoctor({
      context: 'kind-chaos-lab',
      namespace: LAB_NAMESPACE,
      image: LAB_IMAGE,
      imageFromRegistry: false,
      manifests: MANIFESTS,
      run: processRunner({ PATH: '/nonexistent' }),
      connect,
    });
    expect(results.map((r) => r.name)).not.toContain('docker');
    const image = byName(results, 'image');
    expect(image.status).toBe('fail');
    expect(image.fix).toContain('CHAOS_LAB_IMAGE=');
  }, 60_000);
});

describe('resources: the lab must fit the nodes', () => {
  it('sums every container request, times the replicas, as the scheduler does', () => {
    // 13 service pods (50m, 80 MiB), 10 fault sidecars (5m, 8 MiB), 10 fault proxy sidecars (10m,
    // 16 MiB), Prometheus and Grafana (50m, 96 MiB).
    expect(requestsOf(MANIFESTS)).toEqual({
      cpuMillis: 13 * 50 + 10 * 5 + 10 * 10 + 2 * 50,
      memoryBytes: (13 * 80 + 10 * 8 + 10 * 16 + 2 * 96) * 2 ** 20,
    });
    const withInit = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'p' },
      spec: {
        initContainers: [{ resources: { requests: { memory: '1Gi' } } }],
        containers: [{ resources: { requests: { cpu: '1', memory: '100Mi' } } }, {}],
      },
    };
    expect(requestsOf([withInit])).toEqual({ cpuMillis: 1000, memoryBytes: 2 ** 30 });
  });

  /** The lab's resources check against a fake cluster of these nodes. */
  async function checkOn(nodes: FakeNode[], onKind = true): Promise<CheckResult> {
    const server = await startFakeApiServer({ nodes });
    const client = connectCluster({ kubeconfigPath: await server.kubeconfig() });
    try {
      return await checkResources(client, MANIFESTS, { onKind });
    } finally {
      await client.close();
      await server.close();
    }
  }

  it("fails with the figures and how to give colima's VM more memory when the lab does not fit", async () => {
    const result = await checkOn([
      // A bigger node that is not Ready gives nothing.
      { name: 'big-but-down', cpu: '8', memory: '16Gi', ready: false },
      { name: 'colima', cpu: '2', memory: '1Gi' },
    ]);
    expect(result).toMatchObject({
      name: 'resources',
      status: 'fail',
      detail:
        'the lab requests 0.9 CPU and 1.4 GiB of memory, but the Ready node (colima) allocates 2 CPU and 1.0 GiB: not enough memory, so some of its pods would stay Pending',
    });
    expect(result.fix).toContain('colima stop && colima start --memory 4 --cpu 2');
    expect(result.fix).toContain('Docker Desktop: Settings → Resources');
    const lines = renderChecks([result]);
    expect(lines[0]).toMatch(/^✗ resources/);
    expect(lines[1]).toContain('fix: give the VM that runs Docker more memory');
  });

  it('adds up every Ready node, warns when little is left, and speaks of nodes off kind', async () => {
    expect(
      await checkOn([
        { name: 'a', cpu: '600m', memory: '1Gi' },
        { name: 'b', cpu: '600m', memory: '1Gi' },
      ]),
    ).toMatchObject({
      status: 'ok',
      detail:
        'the lab requests 0.9 CPU and 1.4 GiB of memory; the 2 Ready nodes (a, b) allocate 1.2 CPU and 2.0 GiB',
    });
    expect(await checkOn([{ name: 'snug', cpu: '4', memory: '1500Mi' }])).toMatchObject({
      status: 'warn',
      detail: expect.stringContaining("little is left for kube-system's own pods"),
    });
    const elsewhere = await checkOn([{ name: 'small', cpu: '500m', memory: '8Gi' }], false);
    expect(elsewhere.detail).toContain('not enough CPU');
    expect(elsewhere.fix).toContain('add a node to the cluster');
    expect(await checkOn([{ name: 'down', ready: false }])).toMatchObject({
      status: 'fail',
      detail: 'the lab requests 0.9 CPU and 1.4 GiB of memory, and no node is Ready (down)',
    });
  });
});

describe('the doctor without a cluster', () => {
  it('reports the missing cluster clearly and leaves the probes as not yet checked', async () => {
    const results = await runDoctor({
      namespace: LAB_NAMESPACE,
      image: LAB_IMAGE,
      imageFromRegistry: false,
      manifests: MANIFESTS,
      run: runner(),
      connect,
    });
    expect(results.map((r) => [r.name, r.status])).toEqual([
      ['docker', 'ok'],
      ['kind', 'ok'],
      ['cluster', 'fail'],
      ['context', 'skipped'],
      ['resources', 'skipped'],
      ['netem', 'skipped'],
      ['network-policy', 'skipped'],
    ]);
    expect(renderChecks(results)).toContain(
      '                  fix: `npx chaos-lab up --target kind` creates it (or `kind create cluster --config kind/cluster.yaml`)',
    );
  });

  it('with docker stopped, does not ask kind for clusters', async () => {
    bins.reset();
    const results = await runDoctor({
      namespace: LAB_NAMESPACE,
      image: LAB_IMAGE,
      imageFromRegistry: false,
      manifests: MANIFESTS,
      run: runner({ FAKE_DOCKER: 'stopped' }),
      connect,
    });
    expect(byName(results, 'docker').status).toBe('fail');
    expect(byName(results, 'cluster')).toMatchObject({
      status: 'skipped',
      detail: 'not checked: needs docker and kind',
    });
    expect(bins.calls()).toEqual(['docker info --format {{.ServerVersion}}', 'kind version']);
  });
});
