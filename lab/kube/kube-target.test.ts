/**
 * The Kubernetes target against the fake API server (real HTTP and WebSocket, the real client):
 * every backend pod is a real backend on loopback reached through a port-forward, and every
 * `fault-sidecar` exec runs the real script with the `tc` stand-in (this kernel has no sch_netem).
 */

import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { find, synthLab, TEST_SECRETS } from '../../charts/__fixtures__/manifests.ts';
import { gatewayNodePort } from '../../charts/gateway.ts';
import { STRATEGIES } from '../../services/topology.ts';
import { startFakeApiServer } from '../../test/fake-kube/fake-api-server.ts';
import { AgentClient } from '../admin-client.ts';
import { faultAddCommand } from '../commands/fault.ts';
import { runCommand } from '../commands/run.ts';
import type { Io } from '../io.ts';
import type { Fault } from '../runner/experiment.ts';
import { faultsOf } from '../runner/faults.ts';
import type { RunResult } from '../runner/result.ts';
import type { Target } from '../runner/target.ts';
import { type FakeLab, startFakeLab } from './__fixtures__/pod-lab.ts';
import { connectCluster } from './client.ts';
import { createKubeTarget, type SidecarStatus } from './kube-target.ts';

let lab: FakeLab;
let target: Target | undefined;
const home = mkdtempSync(path.join(tmpdir(), 'kube-target-home-'));

beforeAll(async () => {
  lab = await startFakeLab({
    nodes: [
      // First in name order, but not Ready: its address is no place to look for the gateways.
      { name: 'node-a', ready: false, addresses: [{ type: 'InternalIP', address: '192.0.2.1' }] },
      {
        name: 'node-b',
        addresses: [
          { type: 'ExternalIP', address: '203.0.113.9' },
          { type: 'InternalIP', address: '127.0.0.1' },
        ],
      },
    ],
  });
}, 60_000);

afterAll(async () => {
  await lab?.close();
  rmSync(home, { recursive: true, force: true });
});

afterEach(async () => {
  if (target) {
    await faultsOf(target).clearAll();
    await target.release();
  }
  target = undefined;
});

async function prepared(): Promise<{ target: Target; lines: string[] }> {
  const lines: string[] = [];
  target = createKubeTarget({ home, cluster: lab.cluster, gatewayUrls: lab.gateways });
  await target.prepare((line) => lines.push(line), new AbortController().signal);
  return { target, lines };
}

async function sidecarStatus(pod: string): Promise<SidecarStatus> {
  const run = await lab.lab.sidecar(pod, ['status']);
  expect(run.exitCode, run.stderr).toBe(0);
  return JSON.parse(run.stdout) as SidecarStatus;
}

/** The tc calls that changed the pod's qdisc (status only shows it). */
function qdiscChanges(pod: string): string[] {
  return lab.lab.tcCalls(pod).filter((call) => !call.startsWith('qdisc show'));
}

function sidecarExecs(pod: string): string[][] {
  return lab.fake.execs
    .filter((e) => e.pod === pod && e.container === 'fault-sidecar')
    .map((e) => [...e.command]);
}

/** Latency by netem, as an experiment's `injector: netem` asks: the proxy would apply it otherwise. */
const latency: Fault = {
  kind: 'latency',
  service: 'coin',
  instances: ['coin-1', 'coin-2'],
  delayMs: 400,
  jitterMs: 20,
  requestShare: 0,
  injector: 'tc-netem',
};

describe('prepare', { timeout: 30_000 }, () => {
  it('finds the deployed lab, its pods and gateways, and reads the token from the Secret', async () => {
    const { target, lines } = await prepared();
    expect(lines.join('\n')).toContain('using the lab in namespace chaos-lab of context kind-chaos-lab');
    expect(lines.join('\n')).toContain('10 backend pods');
    // The token came from the Secret: the agents accept it.
    await faultsOf(target).applySettings({ workerRecovery: true }, 5_000, 'settings-probe');
    const pod = lab.podsOf('account')[0] as string;
    expect(await faultsOf(target).audit()).toContainEqual({
      instance: pod,
      injector: 'fault-agent',
      id: 'settings-probe',
      kind: 'settings (workerRecovery on)',
    });
    await faultsOf(target).clearSettings();
    expect(await faultsOf(target).audit()).toEqual([]);
    expect(
      lab.fake.requests.some((r) => r.path === '/api/v1/namespaces/chaos-lab/secrets/chaos-lab-secrets'),
    ).toBe(true);
  });

  it('names the Deployment that is not ready, and what to do', async () => {
    lab.fake.neverReady('chaos-lab', 'like', { reason: 'CrashLoopBackOff' });
    try {
      const waiting = createKubeTarget({
        home,
        cluster: lab.cluster,
        gatewayUrls: lab.gateways,
        readyTimeoutMs: 300,
      });
      const lines: string[] = [];
      const failure = waiting.prepare((line) => lines.push(line), new AbortController().signal);
      await expect(failure).rejects.toThrow(
        'the lab in namespace chaos-lab of context kind-chaos-lab is not ready after',
      );
      await expect(failure).rejects.toThrow(/like 0\/2 \(pod like-[^:]+: .*CrashLoopBackOff/);
      await expect(failure).rejects.toThrow('or redeploy with npx chaos-lab up --target kind');
      await waiting.release();
    } finally {
      lab.fake.heal('chaos-lab', 'like');
    }
    // Healed: the next test finds the lab ready again.
    await lab.cluster.waitForRollouts('chaos-lab', ['like'], { timeoutMs: 5_000 });
  });

  it("reads the token from the synth's kind-secrets.json when the client cannot read Secrets", async () => {
    const noSecrets = new Proxy(lab.cluster, {
      get: (cluster, key) => {
        if (key === 'readSecret') return undefined;
        const value = Reflect.get(cluster, key);
        return typeof value === 'function' ? value.bind(cluster) : value;
      },
    });
    const secretsHome = mkdtempSync(path.join(tmpdir(), 'kube-target-secrets-'));
    try {
      const missing = createKubeTarget({ home: secretsHome, cluster: noSecrets, gatewayUrls: lab.gateways });
      await expect(missing.prepare(() => {}, new AbortController().signal)).rejects.toThrow(
        `cannot read the admin token: this client cannot read the Secret chaos-lab/chaos-lab-secrets, and ${path.join(secretsHome, 'kind-secrets.json')} gives none`,
      );
      writeFileSync(
        path.join(secretsHome, 'kind-secrets.json'),
        JSON.stringify({ adminToken: TEST_SECRETS.adminToken, trustKey: TEST_SECRETS.trustKey }),
      );
      target = createKubeTarget({ home: secretsHome, cluster: noSecrets, gatewayUrls: lab.gateways });
      await target.prepare(() => {}, new AbortController().signal);
      // The agents take the token read from the file.
      await faultsOf(target).applySettings({ workerRecovery: true }, 5_000, 'file-token');
      await faultsOf(target).clearSettings();
    } finally {
      rmSync(secretsHome, { recursive: true, force: true });
    }
  });

  it('says to run up --target kind when the cluster has no lab', async () => {
    const empty = await startFakeApiServer();
    const dir = mkdtempSync(path.join(tmpdir(), 'kube-empty-'));
    const cluster = connectCluster({ kubeconfigPath: await empty.kubeconfig(path.join(dir, 'kubeconfig')) });
    try {
      const bare = createKubeTarget({ home, cluster, gatewayUrls: lab.gateways });
      await expect(bare.prepare(() => {}, new AbortController().signal)).rejects.toThrow(
        'the lab is not deployed in namespace chaos-lab of context kind-chaos-lab: deploy it first with npx chaos-lab up --target kind',
      );
      await bare.release();
    } finally {
      await cluster.close();
      await empty.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('on a cluster that is not kind (--context)', { timeout: 30_000 }, () => {
  /** The gateways' NodePorts on this machine, as a node would serve them: forwarded to the fake lab's gateways. */
  async function nodePorts(): Promise<{ close(): Promise<void> }> {
    const sockets = new Set<Socket>();
    const servers = await Promise.all(
      STRATEGIES.map(
        (strategy) =>
          new Promise<Server>((resolve, reject) => {
            const upstream = new URL(lab.gateways[strategy]);
            const server = createServer((socket) => {
              const up = connect(Number(upstream.port), upstream.hostname);
              for (const s of [socket, up]) {
                sockets.add(s);
                s.on('close', () => sockets.delete(s));
              }
              socket.pipe(up).pipe(socket);
              up.on('error', () => socket.destroy());
              socket.on('error', () => up.destroy());
            });
            server.once('error', (err) =>
              reject(
                new Error(`NodePort ${gatewayNodePort(strategy)} is taken on 127.0.0.1: ${err.message}`),
              ),
            );
            server.listen(gatewayNodePort(strategy), '127.0.0.1', () => resolve(server));
          }),
      ),
    );
    return {
      async close() {
        for (const socket of sockets) socket.destroy();
        await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
      },
    };
  }

  it("reaches the gateways on their NodePorts at a Ready node's InternalIP", async () => {
    const ports = await nodePorts();
    try {
      const lines: string[] = [];
      target = createKubeTarget({ home, cluster: lab.cluster, context: 'ci-cluster' });
      const info = await target.prepare((line) => lines.push(line), new AbortController().signal);
      expect(info.gateways).toEqual({
        naive: 'http://127.0.0.1:30080',
        parallel: 'http://127.0.0.1:30081',
        resilient: 'http://127.0.0.1:30082',
      });
      expect(lines.at(-1)).toContain('gateways at http://127.0.0.1:30080, http://127.0.0.1:30081');
    } finally {
      await ports.close();
    }
  });
});

describe('latency and loss with injector netem: tc netem through the fault sidecar', {
  timeout: 30_000,
}, () => {
  it('applies, renews and removes the lease in every pod of the service; the audit is clean after', async () => {
    const { target } = await prepared();
    const [first, second] = lab.podsOf('coin') as [string, string];
    const applied = await faultsOf(target).inject(latency, 'f-latency', 10_000);
    expect(applied.map((a) => [a.instance, a.injector, a.id])).toEqual([
      [first, 'tc-netem', 'f-latency'],
      [second, 'tc-netem', 'f-latency'],
    ]);
    for (const pod of [first, second]) {
      expect(sidecarExecs(pod)).toContainEqual([
        'fault-sidecar',
        'apply',
        '--for',
        '10s',
        'delay',
        '400ms',
        '20ms',
      ]);
      expect(lab.lab.tcCalls(pod)).toContain(
        'qdisc replace dev eth0 parent 1:10 handle 10: netem delay 400ms 20ms',
      );
    }
    expect((await sidecarStatus(first)).lease?.remainingSeconds).toBeLessThanOrEqual(10);

    const leftovers = await faultsOf(target).audit();
    expect(leftovers).toEqual(
      expect.arrayContaining([
        { instance: first, injector: 'tc-netem', id: 'f-latency', kind: 'netem (delay 400ms 20ms)' },
        { instance: second, injector: 'tc-netem', id: 'f-latency', kind: 'netem (delay 400ms 20ms)' },
      ]),
    );

    await faultsOf(target).renew(applied, 60_000);
    expect(sidecarExecs(first)).toContainEqual(['fault-sidecar', 'renew', '--for', '60s']);
    expect((await sidecarStatus(first)).lease?.remainingSeconds).toBeGreaterThan(50);

    await faultsOf(target).remove(applied);
    expect(sidecarExecs(second).at(-1)).toEqual(['fault-sidecar', 'clear']);
    for (const pod of [first, second]) {
      const status = await sidecarStatus(pod);
      expect(status.netemQdisc).toBe(false);
      expect(status.lease).toBeNull();
    }
    expect(await faultsOf(target).audit()).toEqual([]);
  });

  it('applies the fault again when the sidecar has nothing to renew (its lease ran out)', async () => {
    const { target } = await prepared();
    const first = lab.podsOf('coin')[0] as string;
    const applied = await faultsOf(target).inject({ ...latency, instances: ['coin-1'] }, 'f-lapsed', 10_000);
    // As if renewals had failed for longer than the lease: the keeper removed the fault.
    expect((await lab.lab.sidecar(first, ['clear'])).exitCode).toBe(0);
    await faultsOf(target).renew(applied, 10_000);
    const execs = sidecarExecs(first);
    expect(execs.at(-2)).toEqual(['fault-sidecar', 'renew', '--for', '10s']);
    expect(execs.at(-1)).toEqual(['fault-sidecar', 'apply', '--for', '10s', 'delay', '400ms', '20ms']);
    expect((await sidecarStatus(first)).netemQdisc).toBe(true);
    await faultsOf(target).remove(applied);
  });

  it('calibrates latency from the gateways without deadlines, against the phase before', async () => {
    const { target } = await prepared();
    const pages = async (n: number) => {
      for (let i = 0; i < n; i++) {
        for (const g of ['naive', 'parallel'] as const) {
          const res = await fetch(`${lab.gateways[g]}/api/video/${i + 1}`);
          expect(res.status).toBe(200);
          await res.arrayBuffer();
        }
      }
    };
    await target.counters();
    await pages(5);
    await target.counters();
    const applied = await faultsOf(target).inject(latency, 'f-calibrated', 10_000);
    // The tc stand-in shapes nothing: the agents delay coin's answers as netem would.
    const agents = new AgentClient(TEST_SECRETS.adminToken);
    const coins = await Promise.all(lab.podsOf('coin').map((pod) => lab.serve(pod)));
    for (const coin of coins) {
      await agents.put({ id: coin.name, url: coin.backend.url }, 'stand-in', {
        kind: 'http-delay',
        params: { delayMs: 150, jitterMs: 0 },
        leaseMs: 10_000,
      });
    }
    await pages(3);
    for (const coin of coins) await agents.remove({ id: coin.name, url: coin.backend.url }, 'stand-in');
    await faultsOf(target).remove(applied);
    const observed = await faultsOf(target).observe(applied);
    expect(observed.samples).toBe(6);
    expect(observed.addedLatencyMs).toBeGreaterThanOrEqual(145);
  });

  it('keeps latency and loss on one pod in one qdisc, and removing one leaves the other', async () => {
    const { target } = await prepared();
    const first = lab.podsOf('coin')[0] as string;
    const slow = await faultsOf(target).inject(latency, 'f-slow', 10_000);
    const lossy = await faultsOf(target).inject(
      { kind: 'loss', service: 'coin', instances: ['coin-1'], percent: 5, injector: 'tc-netem' },
      'f-lossy',
      10_000,
    );
    expect(lossy.map((a) => a.instance)).toEqual([first]);
    expect(lab.lab.tcCalls(first)).toContain(
      'qdisc replace dev eth0 parent 1:10 handle 10: netem delay 400ms 20ms loss 5%',
    );
    await faultsOf(target).remove(slow);
    expect(qdiscChanges(first).at(-1)).toBe('qdisc replace dev eth0 parent 1:10 handle 10: netem loss 5%');
    expect((await sidecarStatus(first)).lease?.netem).toBe('loss 5%');
    await faultsOf(target).remove(lossy);
    expect(await faultsOf(target).audit()).toEqual([]);
  });

  it('a failing tc fails the injection naming the pod, what tc said and sch_netem, and leaves no fault', async () => {
    const { target } = await prepared();
    const [first, second] = lab.podsOf('coin') as [string, string];
    lab.lab.failTc(second, 'Error: Specified qdisc kind is unknown.');
    try {
      const failure = faultsOf(target).inject(latency, 'f-unknown', 10_000);
      await expect(failure).rejects.toThrow(
        `pod ${second}: fault-sidecar apply --for 10s delay 400ms 20ms exited 2`,
      );
      await expect(failure).rejects.toThrow('Specified qdisc kind is unknown');
      await expect(failure).rejects.toThrow("the kernel of the cluster's node has no sch_netem");
      // All or nothing: the pod where it worked was cleared again.
      expect((await sidecarStatus(first)).netemQdisc).toBe(false);
      expect(await faultsOf(target).audit()).toEqual([]);
    } finally {
      lab.lab.failTc(second, undefined);
    }
  });
});

describe('injector netem asked for by name', { timeout: 60_000 }, () => {
  it("is refused before anything starts when the doctor's probe finds no sch_netem, in the doctor's words", async () => {
    const probes: string[] = [];
    lab.fake.onExec((call) => {
      if (!call.pod.startsWith('chaos-lab-doctor') || call.command[0] !== 'tc') return undefined;
      probes.push(call.command.join(' '));
      return { stderr: 'Error: Specified qdisc kind is unknown.\n', exitCode: 2 };
    });
    const target = createKubeTarget({ home, cluster: lab.cluster, gatewayUrls: lab.gateways });
    const execsBefore = lab.fake.execs.length;
    try {
      const signal = new AbortController().signal;
      // Only netem asked for by name runs the probe.
      expect(await target.refusedInjectors!(['fault-proxy'], signal)).toEqual({});
      expect(probes).toEqual([]);
      const refused = await target.refusedInjectors!(['tc-netem'], signal);
      expect(refused['tc-netem']).toContain('tc netem in a pod: Error: Specified qdisc kind is unknown.');
      expect(refused['tc-netem']).toContain('the node kernel has no sch_netem');
      expect(probes).toEqual(['tc qdisc add dev eth0 root netem delay 1ms']);
      // The probe pod is gone, and no fault went anywhere.
      const left = lab.fake.pods('chaos-lab').filter((p) => p.metadata.name.startsWith('chaos-lab-doctor'));
      expect(left.filter((p) => !p.metadata.deletionTimestamp)).toEqual([]);
      expect(lab.fake.execs.slice(execsBefore).filter((e) => e.container === 'fault-sidecar')).toEqual([]);
    } finally {
      await target.release();
    }
  });
});

describe('latency, loss and reset by default: the fault proxy sidecar through a port-forward', {
  timeout: 30_000,
}, () => {
  it('delays every call to the service in every pod, measures it as the local lab does, and leaves nothing', async () => {
    const { target } = await prepared();
    const pods = lab.podsOf('coin');
    // No injector asked for: the first of latency's that the target has, the proxy.
    const fault: Fault = {
      kind: 'latency',
      service: 'coin',
      instances: ['coin-1', 'coin-2'],
      delayMs: 120,
      jitterMs: 0,
      requestShare: 0.5,
    };
    expect(target.unsupported(fault)).toBeUndefined();
    const applied = await faultsOf(target).inject(fault, 'f-proxied', 10_000);
    expect(applied.map((a) => [a.instance, a.injector])).toEqual(pods.map((p) => [p, 'fault-proxy']));
    // The lease is in each pod's proxy, reached through a forward to its admin port; netem is untouched.
    for (const pod of pods) {
      const { proxy } = await lab.serve(pod);
      expect(proxy.faults().map((f) => [f.id, f.kind, f.params.delayMs])).toEqual([
        ['f-proxied', 'latency', 120],
      ]);
      expect((await sidecarStatus(pod)).netemQdisc).toBe(false);
    }
    expect(await faultsOf(target).audit()).toEqual(
      expect.arrayContaining(
        pods.map((pod) =>
          expect.objectContaining({ instance: pod, injector: 'fault-proxy', id: 'f-proxied' }),
        ),
      ),
    );
    // Every page of the naive gateway waits for coin: none comes back sooner than the delay.
    for (let i = 0; i < 4; i++) {
      const began = performance.now();
      const res = await fetch(`${lab.gateways.naive}/api/video/${i + 1}`);
      await res.arrayBuffer();
      expect(res.status).toBe(200);
      expect(performance.now() - began).toBeGreaterThanOrEqual(120);
    }
    await faultsOf(target).remove(applied);
    const observed = await faultsOf(target).observe(applied);
    expect(observed.addedLatencyMs).toBeGreaterThanOrEqual(120);
    for (const pod of pods) expect((await lab.serve(pod)).proxy.faults()).toEqual([]);
    expect(await faultsOf(target).audit()).toEqual([]);
  });

  it('resets connections through the proxy: reset is a kind the Kubernetes target has now', async () => {
    const { target } = await prepared();
    const fault: Fault = { kind: 'reset', service: 'like', instances: ['like-1'], percent: 100 };
    expect(target.unsupported(fault)).toBeUndefined();
    const applied = await faultsOf(target).inject(fault, 'f-reset', 10_000);
    const pod = lab.podsOf('like')[0] as string;
    expect(applied.map((a) => [a.instance, a.injector])).toEqual([[pod, 'fault-proxy']]);
    expect((await lab.serve(pod)).proxy.faults().map((f) => f.kind)).toEqual(['reset']);
    await faultsOf(target).clearAll();
    expect((await lab.serve(pod)).proxy.faults()).toEqual([]);
  });
});

describe('http-error and worker-panic: the fault agent through a port-forward', { timeout: 30_000 }, () => {
  it('injects through the forward, shows in the pod, is observed and removed', async () => {
    const { target } = await prepared();
    const first = lab.podsOf('coin')[0] as string;
    const backend = await lab.serve(first);
    const applied = await faultsOf(target).inject(
      { kind: 'http-error', service: 'coin', instances: ['coin-1'], status: 503, percent: 100 },
      'f-errors',
      10_000,
    );
    expect(applied).toMatchObject([{ instance: first, injector: 'fault-agent', id: 'f-errors' }]);
    // The pod's agent has the lease, and answers its requests with 503.
    const view = await new AgentClient(TEST_SECRETS.adminToken).view({ id: first, url: backend.backend.url });
    expect(view.faults.map((f) => f.id)).toEqual(['f-errors']);
    for (let i = 0; i < 4; i++) {
      const res = await fetch(`${backend.backend.url}/coins/${i + 1}`);
      expect(res.status).toBe(503);
    }
    expect(
      lab.fake.requests.some((r) => r.path === `/api/v1/namespaces/chaos-lab/pods/${first}/portforward`),
    ).toBe(true);
    await faultsOf(target).remove(applied);
    const observed = await faultsOf(target).observe(applied);
    expect(observed).toEqual({ errorRate: 1, samples: 4 });
    expect(await faultsOf(target).audit()).toEqual([]);
  });

  it('counts the panics the pods recovered', async () => {
    const { target } = await prepared();
    const before = await target.counters();
    const applied = await faultsOf(target).inject(
      { kind: 'worker-panic', service: 'like', instances: ['like-1', 'like-2'], percent: 100 },
      'f-panics',
      10_000,
    );
    for (const pod of lab.podsOf('like')) {
      const { backend } = await lab.serve(pod);
      for (let i = 0; i < 3; i++) await (await fetch(`${backend.url}/likes/${i + 1}`)).arrayBuffer();
    }
    await faultsOf(target).remove(applied);
    const after = await target.counters();
    expect(after.like.panicsRecovered - before.like.panicsRecovered).toBe(6);
    expect(after.like.restarts).toBe(before.like.restarts);
  });
});

describe('trust on Kubernetes', () => {
  it('takes a variant’s trust mode on the gateway pods too, and makes rogue calls round-robin through the forwards', async () => {
    const { target } = await prepared();
    const gateways = await target.instances('gateway');
    expect(gateways.map((g) => g.id).sort()).toEqual(
      lab.fake
        .pods('chaos-lab')
        .map((p) => p.metadata.name)
        .filter((name) => name.startsWith('gateway-'))
        .sort(),
    );
    await faultsOf(target).applySettings({ trust: 'zero' }, 10_000, 'v-trust');
    const audit = await faultsOf(target).audit();
    expect(
      audit
        .filter((a) => a.kind === 'settings (trust zero)')
        .map((a) => a.instance)
        .sort(),
    ).toEqual(
      [
        ...gateways.map((g) => g.id),
        ...lab.podsOf('coin'),
        ...lab.podsOf('like'),
        ...lab.podsOf('vip'),
        ...lab.podsOf('account'),
        ...lab.podsOf('archive'),
      ].sort(),
    );
    // The fake lab's backends run in zero trust: a rogue call is served, on each pod in turn.
    const answers = [];
    for (let i = 0; i < 2; i++)
      answers.push(await target.rogueCall?.('coin', '/coins/1', AbortSignal.timeout(5_000)));
    expect(answers).toEqual([{ status: 200 }, { status: 200 }]);
    await faultsOf(target).clearSettings();
    expect(await faultsOf(target).audit()).toEqual([]);
  });
});

describe('kill and restarts', { timeout: 30_000 }, () => {
  /** The main container's restartCount of a pod, as the API server has it. */
  const restartCount = (pod: string, container: string) => {
    const status = lab.fake.pods('chaos-lab').find((p) => p.metadata.name === pod)?.status as
      | { containerStatuses: { name: string; restartCount: number }[] }
      | undefined;
    return status?.containerStatuses.find((c) => c.name === container)?.restartCount;
  };

  it("SIGKILLs the service's process through the fault sidecar: its container restarts in the same pod, counted at once and once", async () => {
    const { target } = await prepared();
    const before = await target.counters();
    const pods = lab.podsOf('vip');
    const victim = pods[0] as string;
    const process = lab.lab.mainPid(victim);
    const applied = await faultsOf(target).inject(
      { kind: 'kill', service: 'vip', instances: ['vip-1'] },
      'f-kill',
      10_000,
    );
    expect(applied).toMatchObject([{ instance: victim, injector: 'fault-sidecar' }]);
    expect(sidecarExecs(victim)).toContainEqual(['fault-sidecar', 'kill-main', 'vip']);
    // A crash, not a replacement: no pod is deleted, the same pods are there.
    expect(
      lab.fake.requests.filter(
        (r) =>
          r.method === 'DELETE' && r.path.includes('/pods/') && !r.path.includes('/pods/chaos-lab-doctor-'),
      ),
    ).toEqual([]);
    expect(lab.podsOf('vip')).toEqual(pods);
    // The phase that killed counts the restart whether or not the kubelet has reported it yet…
    const right = await target.counters();
    expect(right.vip.restarts - before.vip.restarts).toBe(1);
    for (let i = 0; i < 100 && restartCount(victim, 'vip') === 0; i++)
      await new Promise((r) => setTimeout(r, 20));
    expect(restartCount(victim, 'vip')).toBe(1);
    expect(lab.lab.mainPid(victim)).not.toBe(process);
    // …and once the kubelet has, the count does not grow by it again.
    const after = await target.counters();
    expect(after.vip.restarts - before.vip.restarts).toBe(1);
    // A restart nobody caused here is counted from restartCount alone.
    const account = lab.podsOf('account')[0] as string;
    lab.fake.setRestartCount('chaos-lab', account, 'account', 2);
    const later = await target.counters();
    expect(later.account.restarts - before.account.restarts).toBe(2);
    expect(later.vip.restarts - before.vip.restarts).toBe(1);
    // The killed pod is Ready again: the next phase finds the lab settled.
    expect(await target.settle!(() => {}, new AbortController().signal)).toBeDefined();
  });

  it('counts a crash whose restart the kubelet holds back (CrashLoopBackOff) in the phase it happened, and once', async () => {
    // A worker panic without recovery on a pod that crashed a minute ago: the kubelet waits 20 s,
    // 40 s… before the restart, and restartCount says nothing of the crash until then.
    const { target } = await prepared();
    const before = await target.counters();
    const pod = lab.podsOf('archive')[0] as string;
    lab.fake.crashContainer('chaos-lab', pod, 'archive');
    expect(restartCount(pod, 'archive')).toBe(0);
    const during = await target.counters();
    expect(during.archive.restarts - before.archive.restarts).toBe(1);
    // The back-off is over: the kubelet starts it again and restartCount counts the crash now.
    lab.fake.restartContainer('chaos-lab', pod, 'archive', { exitCode: 2 });
    expect(restartCount(pod, 'archive')).toBe(1);
    const after = await target.counters();
    expect(after.archive.restarts - before.archive.restarts).toBe(1);
    // It crashes again and waits again: a second crash.
    lab.fake.crashContainer('chaos-lab', pod, 'archive');
    const again = await target.counters();
    expect(again.archive.restarts - before.archive.restarts).toBe(2);
    // It comes back: the lab is settled for the next test.
    lab.fake.restartContainer('chaos-lab', pod, 'archive', { exitCode: 2 });
    expect(await target.settle!(() => {}, new AbortController().signal)).toBeDefined();
    expect((await target.counters()).archive.restarts - before.archive.restarts).toBe(2);
  });

  it('says so when the sidecar finds no process to kill, naming the pod', async () => {
    const { target } = await prepared();
    const victim = lab.podsOf('coin')[1] as string;
    let refusing = true;
    lab.fake.onExec((call) =>
      refusing && call.pod === victim && call.command[1] === 'kill-main'
        ? {
            stderr:
              "fault-sidecar: no `node … services/main.js coin` process in this pod's PID namespace (/proc): the pod must share one among its containers (shareProcessNamespace: true; …)\n",
            exitCode: 5,
          }
        : undefined,
    );
    try {
      const failure = faultsOf(target).inject(
        { kind: 'kill', service: 'coin', instances: ['coin-2'] },
        'f-nothing',
        10_000,
      );
      await expect(failure).rejects.toThrow(`pod ${victim}: fault-sidecar kill-main coin exited 5`);
      await expect(failure).rejects.toThrow('shareProcessNamespace: true');
    } finally {
      // Answered by the real script again for the tests after.
      refusing = false;
    }
  });
});

describe('settle: every backend pod Ready before a variant or a phase', { timeout: 30_000 }, () => {
  it('waits for a pod that is not Ready, saying which and why, and how long it waited', async () => {
    const { target } = await prepared();
    const signal = new AbortController().signal;
    expect(await target.settle!(() => {}, signal)).toEqual({ waitedMs: 0 });
    lab.fake.neverReady('chaos-lab', 'like', { reason: 'CrashLoopBackOff' });
    const healed = setTimeout(() => lab.fake.heal('chaos-lab', 'like'), 1_200);
    try {
      const lines: string[] = [];
      const settled = await target.settle!((line) => lines.push(line), signal);
      expect(settled.waitedMs).toBeGreaterThanOrEqual(1_000);
      expect(lines[0]).toMatch(
        /^waiting for backend pods to be Ready in namespace chaos-lab \(\d+ms so far\): like-[\w-]+: Ready=False ContainersNotReady; like: CrashLoopBackOff; like-[\w-]+: /,
      );
      expect(lines.at(-1)).toMatch(
        /^every backend pod in namespace chaos-lab is Ready again, after 1\.\d+s$/,
      );
    } finally {
      clearTimeout(healed);
      lab.fake.heal('chaos-lab', 'like');
    }
  });

  it('gives up after its bound, naming every pod not Ready and why', async () => {
    target = createKubeTarget({
      home,
      cluster: lab.cluster,
      gatewayUrls: lab.gateways,
      settleTimeoutMs: 600,
    });
    await target.prepare(() => {}, new AbortController().signal);
    lab.fake.neverReady('chaos-lab', 'archive', { reason: 'CrashLoopBackOff' });
    try {
      const failure = target.settle!(() => {}, new AbortController().signal);
      await expect(failure).rejects.toThrow(
        /^the lab in namespace chaos-lab did not settle: after 600ms, 2 backend pods are still not Ready \(archive-[\w-]+: Ready=False ContainersNotReady; archive: CrashLoopBackOff; archive-/,
      );
      await expect(failure).rejects.toThrow('kubectl -n chaos-lab logs <pod> -c <service> --previous');
    } finally {
      lab.fake.heal('chaos-lab', 'archive');
    }
    await lab.cluster.waitForRollouts('chaos-lab', ['archive'], { timeoutMs: 30_000 });
  });
});

describe('audit and clearAll', { timeout: 30_000 }, () => {
  it('finds a qdisc and an agent fault left by someone else, and clears both', async () => {
    const { target } = await prepared();
    const pod = lab.podsOf('archive')[1] as string;
    const apply = await lab.lab.sidecar(pod, ['apply', '--for', '60s', 'delay', '100ms']);
    expect(apply.exitCode, apply.stderr).toBe(0);
    const { backend } = await lab.serve(pod);
    const agent = new AgentClient(TEST_SECRETS.adminToken);
    await agent.put({ id: pod, url: backend.url }, 'stray', {
      kind: 'http-error',
      params: { status: 500, percent: 10 },
      leaseMs: 60_000,
    });
    expect(await faultsOf(target).audit()).toEqual(
      expect.arrayContaining([
        { instance: pod, injector: 'tc-netem', id: 'tc-netem', kind: 'netem (delay 100ms)' },
        { instance: pod, injector: 'fault-agent', id: 'stray', kind: 'http-error' },
      ]),
    );
    await faultsOf(target).clearAll();
    expect(qdiscChanges(pod).at(-1)).toBe('qdisc del dev eth0 root');
    expect(await faultsOf(target).audit()).toEqual([]);
  });
});

describe('one run per lab, and the lab watched while it runs', { timeout: 60_000 }, () => {
  /** Deletes a Deployment of the lab; the returned function puts it back and waits for it. */
  async function removeDeployment(name: string): Promise<() => Promise<void>> {
    await lab.cluster.delete([
      { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name, namespace: 'chaos-lab' } },
    ]);
    return async () => {
      lab.fake.applyAs('chaos-lab', find(synthLab({ observability: false }), 'Deployment', name));
      await lab.cluster.waitForRollouts('chaos-lab', [name], { timeoutMs: 10_000 });
    };
  }

  function terminal(): Io & { out: () => string; err: () => string } {
    let stdout = '';
    let stderr = '';
    return {
      stdout: (t) => {
        stdout += t;
      },
      stderr: (t) => {
        stderr += t;
      },
      env: { CHAOS_LAB_HOME: home },
      out: () => stdout,
      err: () => stderr,
    };
  }

  it('fault add during a run applies the fault and warns that it will interfere, naming the run', async () => {
    const running = createKubeTarget({ home, cluster: lab.cluster, gatewayUrls: lab.gateways });
    const held = await running.holdLab?.({
      pid: 4242,
      experiment: 'tour',
      startedAt: new Date().toISOString(),
    });
    const during = terminal();
    try {
      target = createKubeTarget({ home, cluster: lab.cluster, gatewayUrls: lab.gateways });
      const code = await faultAddCommand(during, target, 'http-error', 'vip', {
        status: 503,
        percent: 50,
        leaseMs: 5_000,
        id: 'during-a-run',
      });
      expect(code).toBe(0);
    } finally {
      await held?.release();
      await running.release();
    }
    expect(during.err()).toMatch(
      new RegExp(
        `warning: a run of tour \\(pid 4242 on ${hostname()}, since [^)]+\\) holds this lab: this fault will interfere with its measurements and its verdict`,
      ),
    );
    expect(during.out()).toContain('applied http-error during-a-run');
    // No run holds the lab now: no warning.
    const after = terminal();
    expect(
      await faultAddCommand(after, target, 'http-error', 'vip', {
        status: 503,
        percent: 50,
        leaseMs: 5_000,
        id: 'during-a-run',
      }),
    ).toBe(0);
    expect(after.err()).not.toContain('warning');
  });

  it('watch: a gateway Deployment deleted is told within 2 s, naming it; a restarted container is not', async () => {
    const { target } = await prepared();
    const told: string[] = [];
    const stop = target.watch?.((why) => told.push(why));
    expect(stop).toBeDefined();
    let restore: (() => Promise<void>) | undefined;
    try {
      const pod = lab.podsOf('coin')[0] as string;
      lab.fake.restartContainer('chaos-lab', pod, 'coin', { exitCode: 137, readyAfterMs: 200 });
      await new Promise((r) => setTimeout(r, 1_500));
      expect(told).toEqual([]);
      const began = Date.now();
      restore = await removeDeployment('gateway-resilient');
      await expect.poll(() => told.length, { timeout: 2_000, interval: 20 }).toBe(1);
      expect(Date.now() - began).toBeLessThan(2_000);
      expect(told).toEqual(['its Deployment gateway-resilient is gone from namespace chaos-lab']);
    } finally {
      stop?.();
      await restore?.();
    }
  });

  it('a run whose lab goes stops within 2 s, failed, with its partial result, the audit unknown and the lab let go', async () => {
    const file = path.join(home, 'long-baseline.yaml');
    writeFileSync(
      file,
      [
        'name: long-baseline',
        'description: a baseline far longer than the test; the lab goes during it',
        'load: { rate: 5, endpoint: video }',
        'phases:',
        '  - { name: baseline, duration: 2m }',
      ].join('\n'),
    );
    const run = terminal();
    const out = path.join(home, 'out-lost');
    let restore: (() => Promise<void>) | undefined;
    let goneAt = 0;
    const outcome = runCommand(
      run,
      file,
      { out, target: 'kind' },
      {
        isTTY: false,
        createTarget: async () => createKubeTarget({ home, cluster: lab.cluster, gatewayUrls: lab.gateways }),
        run: { timing: { warmupMs: 200 } },
      },
    );
    try {
      await expect
        .poll(() => /phase baseline/.test(run.out()), { timeout: 30_000, interval: 50 })
        .toBe(true)
        .catch((err: unknown) => {
          throw new Error(`${(err as Error).message}\nstdout:\n${run.out()}\nstderr:\n${run.err()}`);
        });
      // The run holds the lab meanwhile.
      expect(await createKubeTarget({ home, cluster: lab.cluster }).labHolder?.()).toMatchObject({
        experiment: 'long-baseline',
        pid: process.pid,
      });
      goneAt = Date.now();
      restore = await removeDeployment('gateway-naive');
      expect(await outcome).toBe(1);
    } finally {
      await restore?.();
    }
    const [folder] = readdirSync(out);
    const result = JSON.parse(
      readFileSync(path.join(out, folder as string, 'result.json'), 'utf8'),
    ) as RunResult;
    expect(result.status).toBe('failed');
    expect(result.error).toBe(
      'the lab stopped during the run: its Deployment gateway-naive is gone from namespace chaos-lab',
    );
    expect(result.leftoverFaults).toBeNull();
    expect(result.auditError).toContain('not audited: the lab stopped during the run');
    expect(result.runs[0]?.phases.map((p) => [p.name, p.partial])).toEqual([['baseline', true]]);
    const rollback = readFileSync(path.join(out, folder as string, 'journal.jsonl'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as { type: string; at?: string; t?: number })
      .find((e) => e.type === 'rollback');
    expect(rollback).toBeDefined();
    expect(Date.parse(rollback?.at ?? '') - goneAt).toBeLessThan(2_000);
    expect(await createKubeTarget({ home, cluster: lab.cluster }).labHolder?.()).toBeUndefined();
  });
});
