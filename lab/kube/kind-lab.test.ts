/**
 * `up --target kind` and `down --target kind` through the CLI: fake `docker` and `kind`
 * executables on PATH (Docker cannot run here), the fake API server behind the kubeconfig, the
 * real client, the chart synthesized in-process. Each test has its own API server, so what one
 * applies is not seen by another.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type FakeApiServer,
  type FakeNode,
  startFakeApiServer,
} from '../../test/fake-kube/fake-api-server.ts';
import { main } from '../cli.ts';
import type { Io } from '../io.ts';
import { type FakeDockerKind, fakeDockerKind } from './__fixtures__/fake-docker-kind.ts';
import { connectCluster } from './client.ts';
import { processRunner } from './commands.ts';
import { kindDriver } from './driver.ts';
import { KIND_CONFIG_ENV } from './kind-config.ts';
import { LAB_IMAGE, LAB_NAMESPACE, labManifests, PLACEHOLDER_SECRETS } from './kind-lab.ts';
import { kindUp, rolloutLine } from './kind-up.ts';

const REPO = path.join(import.meta.dirname, '..', '..');
/** The image id the fake docker gives a build unless told another, and the tag `up` deploys for it. */
const IMAGE_ID = '5f0c2d1e8a9b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d';
const BUILT = `chaos-lab:${IMAGE_ID.slice(0, 12)}`;
const LAB_OBJECTS = labManifests({ secrets: PLACEHOLDER_SECRETS, image: LAB_IMAGE });

let bins: FakeDockerKind;
let fake: FakeApiServer | undefined;
const home = mkdtempSync(path.join(tmpdir(), 'kind-lab-home-'));

beforeAll(() => {
  bins = fakeDockerKind();
});

afterAll(() => {
  bins?.remove();
  rmSync(home, { recursive: true, force: true });
});

afterEach(async () => {
  await fake?.close();
  fake = undefined;
  bins.clusterExists(false);
  bins.reset();
});

interface Captured {
  readonly io: Io;
  readonly out: () => string;
  readonly err: () => string;
}

async function started(
  behaviour: Record<string, string> = {},
  setup: { namespaceTerminationMs?: number; context?: string; nodes?: FakeNode[] } = {},
): Promise<Captured> {
  fake = await startFakeApiServer({
    readyDelayMs: 20,
    ...(setup.namespaceTerminationMs !== undefined
      ? { namespaceTerminationMs: setup.namespaceTerminationMs }
      : {}),
    ...(setup.nodes ? { nodes: setup.nodes } : {}),
  });
  const kubeconfig = await fake.kubeconfig(undefined, setup.context ? { context: setup.context } : {});
  let out = '';
  let err = '';
  return {
    io: {
      stdout: (text) => {
        out += text;
      },
      stderr: (text) => {
        err += text;
      },
      env: { ...bins.env(behaviour), KUBECONFIG: kubeconfig, CHAOS_LAB_HOME: home },
    },
    out: () => out,
    err: () => err,
  };
}

/** Answers the doctor's probes as a healthy kind cluster does. */
function healthyProbes(server: FakeApiServer): void {
  server.onExec((call) => {
    if (call.command[0] === 'tc') return { exitCode: 0 };
    if (call.command[0] === 'node') return { exitCode: call.pod.startsWith('chaos-lab-doctor') ? 1 : 0 };
    return undefined;
  });
}

/** Every image the lab's Deployments run, once each. */
function deploymentImages(server: FakeApiServer): string[] {
  const images = server
    .objects('apps/v1', 'Deployment', LAB_NAMESPACE)
    .filter((d) => ['backend', 'gateway'].includes(d.metadata.labels?.['app.kubernetes.io/component'] ?? ''))
    .flatMap((d) =>
      (d.spec as { template: { spec: { containers: { image: string }[] } } }).template.spec.containers.map(
        (c) => c.image,
      ),
    );
  return [...new Set(images)];
}

/** The TRUST_MODE of every gateway's and backend's main container, by Deployment. */
function deployedTrustModes(server: FakeApiServer): Record<string, string | undefined> {
  type Env = { name: string; value?: string }[];
  return Object.fromEntries(
    server
      .objects('apps/v1', 'Deployment', LAB_NAMESPACE)
      .filter((d) =>
        ['backend', 'gateway'].includes(d.metadata.labels?.['app.kubernetes.io/component'] ?? ''),
      )
      .map((d) => {
        const main = (d.spec as { template: { spec: { containers: { env: Env }[] } } }).template.spec
          .containers[0];
        return [d.metadata.name, main?.env.find((e) => e.name === 'TRUST_MODE')?.value];
      }),
  );
}

/** The lab's Secret as the fake API server holds it, decoded. */
function heldSecret(server: FakeApiServer): Record<string, string> {
  const data = (server.object('v1', 'Secret', LAB_NAMESPACE, 'chaos-lab-secrets')?.data ?? {}) as Record<
    string,
    string
  >;
  return Object.fromEntries(
    Object.entries(data).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]),
  );
}

/** The lab objects the fake API server holds. */
function labObjectsHeld(server: FakeApiServer): string[] {
  return LAB_OBJECTS.filter((o) =>
    server.object(o.apiVersion, o.kind, o.metadata.namespace, o.metadata.name),
  ).map((o) => `${o.kind} ${o.metadata.name}`);
}

describe('up --target kind', () => {
  it('creates the cluster, builds and loads the image, applies, probes, waits and prints the URLs', async () => {
    const cli = await started();
    healthyProbes(fake as FakeApiServer);
    const code = await main(['up', '--target', 'kind'], cli.io);
    expect(code, cli.err()).toBe(0);
    expect(bins.calls()).toEqual([
      'docker info --format {{.ServerVersion}}',
      'kind version',
      'kind get clusters',
      `kind create cluster --config ${path.join(REPO, 'kind', 'cluster.yaml')}`,
      'docker build -t chaos-lab:dev .',
      'docker image inspect --format {{.Id}} chaos-lab:dev',
      `docker tag chaos-lab:dev ${BUILT}`,
      `kind load docker-image ${BUILT} chaos-lab:dev --name chaos-lab`,
    ]);
    // The pods run the build's own tag, and so does the probe pod.
    expect(deploymentImages(fake as FakeApiServer)).toEqual([BUILT]);
    const out = cli.out();
    expect(out).toContain('- cluster         no kind cluster chaos-lab: creating it');
    expect(out).toContain('   ✓ Starting control-plane'); // kind's own progress, streamed
    expect(out).toContain('  #14 naming to docker.io/library/chaos-lab:dev done');
    expect(out).toContain(`applied Deployment ${LAB_NAMESPACE}/account`);
    expect(out).toContain('✓ netem');
    expect(out).toContain('✓ network-policy');
    // netem is probed before the rollouts, NetworkPolicy after: a backend must be up to be unreachable.
    expect(out.indexOf('✓ netem')).toBeLessThan(out.indexOf('deployments'));
    expect(out.indexOf(`ready ${LAB_OBJECTS.filter((o) => o.kind === 'Deployment').length}/`)).toBeLessThan(
      out.indexOf('✓ network-policy'),
    );
    const deployments = LAB_OBJECTS.filter((o) => o.kind === 'Deployment').length;
    expect(out).toContain(`ready ${deployments}/${deployments} deployments\n`);
    expect(out).toContain('  naive      http://127.0.0.1:18080\n');
    expect(out).toContain('  resilient  http://127.0.0.1:18082\n');
    expect(out).toContain(
      'grafana: http://127.0.0.1:3000 (anonymous viewing; user admin, password: the adminToken in',
    );
    expect(out).toContain('next: npx chaos-lab run tour --target kind');
    expect(labObjectsHeld(fake as FakeApiServer)).toHaveLength(LAB_OBJECTS.length);
    // The probe pod is gone; the lab's pods are running.
    expect(fake?.pods(LAB_NAMESPACE).filter((p) => p.metadata.name.startsWith('chaos-lab-doctor'))).toEqual(
      [],
    );
  }, 90_000);

  it(`follows ${KIND_CONFIG_ENV}: the cluster's name, its context, its host ports`, async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'kind-config-'));
    try {
      const file = path.join(dir, 'lab-two.yaml');
      writeFileSync(
        file,
        [
          'kind: Cluster',
          'apiVersion: kind.x-k8s.io/v1alpha4',
          'name: lab-two',
          'nodes:',
          '  - role: control-plane',
          '    extraPortMappings:',
          '      - { containerPort: 30080, hostPort: 28080, listenAddress: 127.0.0.1 }',
          '      - { containerPort: 30081, hostPort: 28081, listenAddress: 127.0.0.1 }',
          '      - { containerPort: 30082, hostPort: 28082, listenAddress: 127.0.0.1 }',
        ].join('\n'),
      );
      const cli = await started({ [KIND_CONFIG_ENV]: file }, { context: 'kind-lab-two' });
      healthyProbes(fake as FakeApiServer);
      expect(await main(['up', '--target', 'kind', '--no-build'], cli.io), cli.err()).toBe(0);
      expect(bins.calls()).toContain(`kind create cluster --config ${file}`);
      expect(bins.calls()).toContain(`kind load docker-image ${BUILT} chaos-lab:dev --name lab-two`);
      const out = cli.out();
      expect(out).toContain('doctor (kind cluster lab-two)');
      expect(out).toContain('chaos-lab is up on kind-lab-two');
      expect(out).toContain('  naive      http://127.0.0.1:28080\n');
      expect(out).toContain('grafana: no host port maps NodePort 30300 in');
      expect(out).toContain('-n chaos-lab port-forward svc/grafana 3000');
      expect(labObjectsHeld(fake as FakeApiServer)).toHaveLength(LAB_OBJECTS.length);

      expect(await main(['down', '--target', 'kind', '--delete-cluster'], cli.io), cli.err()).toBe(0);
      expect(bins.calls().at(-1)).toBe('kind delete cluster --name lab-two');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 90_000);

  it('keeps the probe pod alive through the rollouts it waits for, however long --timeout allows', async () => {
    const cli = await started();
    const server = fake as FakeApiServer;
    bins.clusterExists(true);
    healthyProbes(server);
    const deadlines: unknown[] = [];
    server.onExec((call) => {
      if (call.command[0] === 'node' && call.pod.startsWith('chaos-lab-doctor')) {
        const spec = server.object('v1', 'Pod', LAB_NAMESPACE, call.pod)?.spec as
          | { activeDeadlineSeconds?: number }
          | undefined;
        deadlines.push(spec?.activeDeadlineSeconds);
      }
      return undefined;
    });
    expect(await main(['up', '--target', 'kind', '--no-build', '--timeout', '7m'], cli.io), cli.err()).toBe(
      0,
    );
    expect(cli.out()).toContain('✓ network-policy');
    // Its start (90 s), the rollouts (7 min), the probes (2 min): a fixed 300 s would end it first.
    expect(deadlines).toEqual([90 + 420 + 120]);
  }, 90_000);

  it("stops at the doctor when the lab's requests do not fit the nodes, and builds nothing", async () => {
    const cli = await started({}, { nodes: [{ name: 'chaos-lab-control-plane', cpu: '2', memory: '1Gi' }] });
    bins.clusterExists(true);
    expect(await main(['up', '--target', 'kind'], cli.io)).toBe(1);
    expect(cli.out()).toContain(
      '✗ resources       the lab requests 0.9 CPU and 1.4 GiB of memory, but the Ready node (chaos-lab-control-plane) allocates 2 CPU and 1.0 GiB: not enough memory',
    );
    expect(cli.out()).toContain('colima stop && colima start --memory 4 --cpu 2');
    expect(cli.err()).toContain('the doctor found a problem (see ✗ above); nothing was changed');
    expect(bins.calls()).not.toContain('docker build -t chaos-lab:dev .');
    expect(labObjectsHeld(fake as FakeApiServer)).toEqual([]);
  });

  it("with --context, deploys CHAOS_LAB_IMAGE without docker or kind and prints the gateways at a node's InternalIP", async () => {
    const image = { CHAOS_LAB_IMAGE: 'registry.example/chaos-lab:v7' };
    const cli = await started(image, { context: 'ci-cluster' });
    healthyProbes(fake as FakeApiServer);
    expect(await main(['up', '--target', 'kind', '--context', 'ci-cluster'], cli.io), cli.err()).toBe(0);
    expect(bins.calls()).toEqual([]);
    const out = cli.out();
    expect(out).toContain('✓ resources');
    expect(out).toContain(
      "gateways (NodePorts on 172.18.0.2, a Ready node's InternalIP; CHAOS_LAB_GATEWAY_HOST names another host)",
    );
    expect(out).toContain('  naive      http://172.18.0.2:30080\n');
    expect(out).toContain('  resilient  http://172.18.0.2:30082\n');
    expect(out).toContain('grafana: http://172.18.0.2:30300 (anonymous viewing');
    expect(out).toContain('next: npx chaos-lab run tour --target kind --context ci-cluster');

    const tunnelled = { ...cli.io, env: { ...cli.io.env, CHAOS_LAB_GATEWAY_HOST: 'gw.example' } };
    expect(await main(['up', '--target', 'kind', '--context', 'ci-cluster'], tunnelled), cli.err()).toBe(0);
    expect(cli.out()).toContain('gateways (NodePorts on gw.example, from CHAOS_LAB_GATEWAY_HOST)');
    expect(cli.out()).toContain('  parallel   http://gw.example:30081\n');
  }, 90_000);

  it('--no-grafana deploys Prometheus without Grafana, and says so instead of a Grafana URL', async () => {
    const cli = await started(
      { CHAOS_LAB_IMAGE: 'registry.example/chaos-lab:v7' },
      { context: 'ci-cluster' },
    );
    const server = fake as FakeApiServer;
    healthyProbes(server);
    expect(
      await main(['up', '--target', 'kind', '--context', 'ci-cluster', '--no-grafana'], cli.io),
      cli.err(),
    ).toBe(0);
    expect(server.object('apps/v1', 'Deployment', LAB_NAMESPACE, 'prometheus')).toBeDefined();
    expect(server.object('apps/v1', 'Deployment', LAB_NAMESPACE, 'grafana')).toBeUndefined();
    expect(cli.out()).toContain(
      'grafana: not deployed (--no-grafana); Prometheus: `kubectl --context ci-cluster',
    );
    expect(cli.out()).not.toContain(':30300');

    const local = await started();
    expect(await main(['up', '--no-grafana'], local.io)).toBe(2);
    expect(local.err()).toContain('--no-grafana');
  }, 90_000);

  it('stops at the doctor when docker is not running, and changes nothing', async () => {
    const cli = await started({ FAKE_DOCKER: 'stopped' });
    expect(await main(['up', '--target', 'kind'], cli.io)).toBe(1);
    expect(cli.out()).toContain('✗ docker          docker is installed but its daemon is not running');
    expect(cli.out()).toContain('fix: start Docker Desktop');
    expect(cli.err()).toContain('the doctor found a problem (see ✗ above); nothing was changed');
    expect(bins.calls()).not.toContain('docker build -t chaos-lab:dev .');
    expect(labObjectsHeld(fake as FakeApiServer)).toEqual([]);
  });

  it('shows the last lines of a failed docker build and applies nothing', async () => {
    const cli = await started({ FAKE_BUILD: 'fail' });
    bins.clusterExists(true);
    expect(await main(['up', '--target', 'kind'], cli.io)).toBe(1);
    expect(cli.err()).toContain('chaos-lab: `docker build -t chaos-lab:dev .` failed with exit code 1');
    expect(cli.err()).toContain('  ERROR: failed to build: failed to solve');
    expect(bins.calls().filter((c) => c.startsWith('kind load'))).toEqual([]);
    expect(labObjectsHeld(fake as FakeApiServer)).toEqual([]);
  });

  it('deploys a tag of the image id: a rebuild that changed the image rolls out, an unchanged one does not', async () => {
    const cli = await started();
    const server = fake as FakeApiServer;
    bins.clusterExists(true);
    healthyProbes(server);
    const podNames = () =>
      server
        .pods(LAB_NAMESPACE)
        .filter((p) => p.metadata.labels?.['app.kubernetes.io/name'] === 'coin')
        .map((p) => p.metadata.name)
        .sort();
    expect(await main(['up', '--target', 'kind'], cli.io), cli.err()).toBe(0);
    const first = podNames();
    const generation = server.object('apps/v1', 'Deployment', LAB_NAMESPACE, 'coin')?.metadata.generation;

    // The same image again (a build from the cache): nothing to roll out.
    expect(await main(['up', '--target', 'kind'], cli.io), cli.err()).toBe(0);
    expect(podNames()).toEqual(first);
    expect(server.object('apps/v1', 'Deployment', LAB_NAMESPACE, 'coin')?.metadata.generation).toBe(
      generation,
    );

    // A build that changed the image: its tag is new, and the pods are replaced by ones running it.
    const rebuilt = `${'ab12cd34ef56'}${'0'.repeat(52)}`;
    const rebuiltIo = { ...cli.io, env: { ...cli.io.env, FAKE_IMAGE_ID: rebuilt } };
    expect(await main(['up', '--target', 'kind'], rebuiltIo), cli.err()).toBe(0);
    expect(bins.calls()).toContain('docker tag chaos-lab:dev chaos-lab:ab12cd34ef56');
    expect(bins.calls().at(-1)).toBe(
      'kind load docker-image chaos-lab:ab12cd34ef56 chaos-lab:dev --name chaos-lab',
    );
    expect(deploymentImages(server)).toEqual(['chaos-lab:ab12cd34ef56']);
    expect(podNames().some((name) => first.includes(name))).toBe(false);
  }, 120_000);

  it('deploys CHAOS_LAB_IMAGE as it is, with no tag of its own', async () => {
    const cli = await started({ CHAOS_LAB_IMAGE: 'registry.example/chaos-lab:v7' });
    bins.clusterExists(true);
    healthyProbes(fake as FakeApiServer);
    expect(await main(['up', '--target', 'kind'], cli.io), cli.err()).toBe(0);
    expect(bins.calls().slice(-2)).toEqual([
      'docker build -t registry.example/chaos-lab:v7 .',
      'kind load docker-image registry.example/chaos-lab:v7 --name chaos-lab',
    ]);
    expect(deploymentImages(fake as FakeApiServer)).toEqual(['registry.example/chaos-lab:v7']);
  }, 90_000);

  it('with --no-build and no image built yet, says to build it, and applies nothing', async () => {
    const cli = await started({ FAKE_IMAGE: 'missing' });
    bins.clusterExists(true);
    expect(await main(['up', '--target', 'kind', '--no-build'], cli.io)).toBe(1);
    expect(cli.err()).toContain(
      '`docker image inspect --format "{{.Id}}" chaos-lab:dev` failed with exit code 1: the image chaos-lab:dev to deploy cannot be told apart from an earlier build',
    );
    expect(cli.err()).toContain('Error response from daemon: No such image: chaos-lab:dev');
    expect(cli.err()).toContain('without --no-build, which builds it');
    expect(labObjectsHeld(fake as FakeApiServer)).toEqual([]);
  });

  it('fails with a clear timeout naming the pod and its condition when a rollout never completes', async () => {
    const cli = await started();
    bins.clusterExists(true);
    healthyProbes(fake as FakeApiServer);
    fake?.neverReady(LAB_NAMESPACE, 'coin', { reason: 'CrashLoopBackOff' });
    const code = await main(['up', '--target', 'kind', '--no-build', '--timeout', '2s'], cli.io);
    expect(code).toBe(1);
    expect(bins.calls()).not.toContain('docker build -t chaos-lab:dev .');
    expect(cli.out()).toMatch(/ready \d+\/10 deployments \(waiting for coin 0\/2\)/);
    const err = cli.err();
    expect(err).toMatch(
      /the lab did not become ready: not ready after 2 s: coin 0\/2 \(pod coin-[\w-]+: [^)]*CrashLoopBackOff/,
    );
    expect(err).toContain('npx chaos-lab down --target kind` removes the lab');
    // The probe pod lived through the rollout (NetworkPolicy is probed once the lab is ready) and is gone.
    expect(cli.out()).toContain('✓ netem');
    expect(cli.out()).not.toContain('network-policy');
    expect(fake?.pods(LAB_NAMESPACE).filter((p) => p.metadata.name.startsWith('chaos-lab-doctor'))).toEqual(
      [],
    );
  }, 60_000);

  it('stops on an apply conflict with the fields, their manager and --force-conflicts', async () => {
    const cli = await started();
    bins.clusterExists(true);
    healthyProbes(fake as FakeApiServer);
    const account = LAB_OBJECTS.find((o) => o.kind === 'Deployment' && o.metadata.name === 'account');
    fake?.applyAs('chaos-lab', account as Record<string, unknown>);
    // What `kubectl scale --replicas=4` leaves behind: another manager owning .spec.replicas.
    fake?.applyAs(
      'kubectl-scale',
      {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'account', namespace: LAB_NAMESPACE },
        spec: { replicas: 4 },
      },
      { force: true },
    );
    expect(await main(['up', '--target', 'kind', '--no-build'], cli.io)).toBe(1);
    expect(cli.err()).toContain(
      `apply of Deployment ${LAB_NAMESPACE}/account conflicts with other field managers: .spec.replicas (owned by kubectl-scale)`,
    );
    expect(cli.err()).toContain('hint: npx chaos-lab up --target kind --force-conflicts');

    const again = await main(['up', '--target', 'kind', '--no-build', '--force-conflicts'], cli.io);
    expect(again, cli.err()).toBe(0);
  }, 90_000);

  it('with --context and no CHAOS_LAB_IMAGE, says the image must come from a registry', async () => {
    const cli = await started();
    expect(await main(['up', '--target', 'kind', '--context', 'kind-chaos-lab'], cli.io)).toBe(1);
    expect(cli.err()).toContain('the image cannot be `kind load`ed into it');
    expect(cli.err()).toContain('CHAOS_LAB_IMAGE=<registry>/chaos-lab:<tag>');
    expect(bins.calls()).toEqual([]);
  });

  it('on Ctrl-C during the build, kills it and says what state the lab is in', async () => {
    const cli = await started({ FAKE_BUILD: 'slow' });
    bins.clusterExists(true);
    const abort = new AbortController();
    const kubeconfig = cli.io.env.KUBECONFIG as string;
    const run = processRunner(cli.io.env);
    const code = await kindUp(
      {
        ...cli.io,
        stdout: (text) => {
          cli.io.stdout(text);
          if (text.includes('FROM docker.io/library/node')) abort.abort();
        },
      },
      { home, signal: abort.signal },
      { run, connect: (context) => connectCluster({ context, kubeconfigPath: kubeconfig }) },
    );
    expect(code).toBe(130);
    expect(cli.err()).toContain('interrupted during build: nothing was applied');
    expect(labObjectsHeld(fake as FakeApiServer)).toEqual([]);
  }, 30_000);
});

describe('up --target kind --trust', () => {
  const SERVICE_DEPLOYMENTS = LAB_OBJECTS.filter(
    (o) =>
      o.kind === 'Deployment' &&
      ['backend', 'gateway'].includes(o.metadata.labels?.['app.kubernetes.io/component'] ?? ''),
  ).map((o) => o.metadata.name);

  it('deploys half trust by default, and the --trust the command line is given', async () => {
    const cli = await started();
    const server = fake as FakeApiServer;
    bins.clusterExists(true);
    healthyProbes(server);
    expect(await main(['up', '--target', 'kind', '--no-build'], cli.io), cli.err()).toBe(0);
    expect(Object.keys(deployedTrustModes(server)).sort()).toEqual([...SERVICE_DEPLOYMENTS].sort());
    expect(new Set(Object.values(deployedTrustModes(server)))).toEqual(new Set(['half']));
    expect(cli.out()).toMatch(/chaos-lab is up on kind-chaos-lab in .* \(trust half\)\n/);

    expect(await main(['up', '--target', 'kind', '--no-build', '--trust', 'zero'], cli.io), cli.err()).toBe(
      0,
    );
    expect(new Set(Object.values(deployedTrustModes(server)))).toEqual(new Set(['zero']));
  }, 90_000);

  it('--trust full deploys TRUST_MODE=full and the PKI kept in kind-secrets.json, and status says full', async () => {
    const cli = await started();
    const server = fake as FakeApiServer;
    bins.clusterExists(true);
    healthyProbes(server);
    const up = ['up', '--target', 'kind', '--no-build', '--trust', 'full'];
    expect(await main(up, cli.io), cli.err()).toBe(0);
    const modes = deployedTrustModes(server);
    expect(Object.keys(modes).sort()).toEqual([...SERVICE_DEPLOYMENTS].sort());
    expect(new Set(Object.values(modes))).toEqual(new Set(['full']));
    expect(cli.out()).toContain('; trust full)');
    expect(cli.out()).toContain('(trust full: mutual TLS with the CA in');

    // The Secret holds the PKI that kind-secrets.json keeps, and a second up keeps it.
    const stored = JSON.parse(readFileSync(path.join(home, 'kind-secrets.json'), 'utf8'));
    const secret = heldSecret(server);
    expect(secret.TLS_CA).toBe(stored.pki.ca);
    expect(secret.TLS_CA).toContain('-----BEGIN CERTIFICATE-----');
    expect(secret.TLS_GATEWAY_CERT).toBe(stored.pki.gateway.cert);
    expect(secret.TLS_ACCOUNT_KEY).toBe(stored.pki.backends.account.key);
    expect(await main(up, cli.io), cli.err()).toBe(0);
    expect(heldSecret(server)).toEqual(secret);

    let out = '';
    const statusIo = {
      ...cli.io,
      stdout: (text: string) => {
        out += text;
      },
    };
    expect(await kindDriver.status(statusIo, {}), cli.err()).toBe(0);
    expect(out).toMatch(/^lab on kind-chaos-lab \(namespace chaos-lab\): trust full, 13\/13 pods ready\n/);
    expect(out).toMatch(/ {2}coin-\S+ +full +yes +0\n/);
    out = '';
    expect(await kindDriver.status(statusIo, { json: true }), cli.err()).toBe(0);
    const view = JSON.parse(out);
    expect(view).toMatchObject({ context: 'kind-chaos-lab', namespace: 'chaos-lab', trust: 'full' });
    expect(view.pods).toHaveLength(13);
  }, 120_000);

  it('status on a cluster without the lab says so and how to deploy it', async () => {
    const cli = await started();
    await expect(kindDriver.status(cli.io, {})).rejects.toThrow(
      'the lab is not deployed on kind-chaos-lab (no gateway or backend pod in chaos-lab)',
    );
  });
});

describe('down --target kind', () => {
  it('removes every object up applied, then finds nothing to remove; --delete-cluster deletes the cluster', async () => {
    const cli = await started();
    healthyProbes(fake as FakeApiServer);
    expect(await main(['up', '--target', 'kind', '--no-build'], cli.io), cli.err()).toBe(0);
    expect(labObjectsHeld(fake as FakeApiServer)).toHaveLength(LAB_OBJECTS.length);

    expect(await main(['down', '--target', 'kind'], cli.io), cli.err()).toBe(0);
    expect(labObjectsHeld(fake as FakeApiServer)).toEqual([]);
    expect(fake?.pods(LAB_NAMESPACE)).toEqual([]);
    expect(cli.out()).toContain(`removed the lab from kind-chaos-lab: ${LAB_OBJECTS.length} objects`);

    expect(await main(['down', '--target', 'kind', '--delete-cluster'], cli.io)).toBe(0);
    expect(cli.out()).toContain('the lab is not deployed on kind-chaos-lab');
    expect(bins.calls().at(-1)).toBe('kind delete cluster --name chaos-lab');
  }, 90_000);

  it('waits until the namespace is gone, and an up while it is still Terminating waits for it too', async () => {
    const cli = await started({}, { namespaceTerminationMs: 700 });
    const server = fake as FakeApiServer;
    healthyProbes(server);
    expect(await main(['up', '--target', 'kind', '--no-build'], cli.io), cli.err()).toBe(0);
    expect(await main(['down', '--target', 'kind'], cli.io), cli.err()).toBe(0);
    expect(cli.out()).toContain(`waiting for namespace ${LAB_NAMESPACE} to go`);
    expect(server.object('v1', 'Namespace', undefined, LAB_NAMESPACE)).toBeUndefined();

    // Up again, then delete the namespace behind its back (kubectl delete ns --wait=false) and up at once.
    expect(await main(['up', '--target', 'kind', '--no-build'], cli.io), cli.err()).toBe(0);
    const kubeconfig = cli.io.env.KUBECONFIG as string;
    const cluster = connectCluster({ kubeconfigPath: kubeconfig });
    const namespace = LAB_OBJECTS.find((o) => o.kind === 'Namespace') as (typeof LAB_OBJECTS)[number];
    await cluster.delete([namespace]);
    expect(await cluster.namespacePhase(LAB_NAMESPACE)).toBe('Terminating');
    await cluster.close();
    const before = cli.out().length;
    expect(await main(['up', '--target', 'kind', '--no-build'], cli.io), cli.err()).toBe(0);
    expect(cli.out().slice(before)).toContain(
      `namespace ${LAB_NAMESPACE} is still being deleted (an earlier down): waiting for it to go`,
    );
    expect(server.object('v1', 'Namespace', undefined, LAB_NAMESPACE)?.status).toEqual({ phase: 'Active' });
    expect(labObjectsHeld(server)).toHaveLength(LAB_OBJECTS.length);
  }, 90_000);

  it('without a kind cluster: says so and exits 0', async () => {
    const cli = await started();
    expect(await main(['down', '--target', 'kind'], cli.io)).toBe(0);
    expect(cli.out()).toContain('no kind cluster chaos-lab; nothing to remove');
  });

  it('keeps the local lab as it was: --target kind options are refused without it', async () => {
    const cli = await started();
    expect(await main(['down', '--delete-cluster'], cli.io)).toBe(2);
    expect(cli.err()).toContain('--context and --delete-cluster apply to --target kind only');
    expect(await main(['up', '--no-build'], cli.io)).toBe(2);
  });
});

describe('doctor --target kind (CLI)', () => {
  it('exits 1 when a check fails, and prints JSON with --json', async () => {
    const cli = await started();
    expect(await main(['doctor', '--json'], cli.io)).toBe(1);
    const results = JSON.parse(cli.out()) as { name: string; status: string }[];
    expect(results.find((r) => r.name === 'cluster')?.status).toBe('fail');
  });

  it('with --context, needs neither docker nor kind, and checks the resources', async () => {
    const cli = await started(
      { CHAOS_LAB_IMAGE: 'registry.example/chaos-lab:v7' },
      { context: 'ci-cluster' },
    );
    const noTools = { ...cli.io, env: { ...cli.io.env, PATH: '/nonexistent' } };
    expect(await main(['doctor', '--target', 'kind', '--context', 'ci-cluster', '--json'], noTools)).toBe(0);
    const results = JSON.parse(cli.out()) as { name: string; status: string }[];
    expect(results.map((r) => [r.name, r.status])).toEqual([
      ['image', 'ok'],
      ['context', 'ok'],
      ['resources', 'ok'],
      ['netem', 'skipped'],
      ['network-policy', 'skipped'],
    ]);
    expect(bins.calls()).toEqual([]);
  });
});

describe('helpers', () => {
  it('shows at most four waiting deployments', () => {
    const states = ['a', 'b', 'c', 'd', 'e', 'f'].map((name, i) => ({
      name,
      desired: 2,
      ready: i % 2,
      done: i === 0,
    }));
    expect(rolloutLine(states)).toBe('ready 1/6 deployments (waiting for b 1/2, c 0/2, d 1/2, e 0/2, …)');
  });

  it('puts the Namespace first', () => {
    expect(LAB_OBJECTS[0]?.kind).toBe('Namespace');
  });
});
