/**
 * What stands behind the fake API server's pods in the Kubernetes target's tests: a real backend
 * service per pod (in this process, on loopback, with its fault agent) behind a real fault proxy
 * (the pod's proxy sidecar, which the gateways call as the Service sends them), a real gateway per
 * strategy over them, and the real fault sidecar script per pod — run by /bin/sh with the `tc`
 * stand-in of services/fault-sidecar/__fixtures__ first on PATH (this kernel has no sch_netem),
 * each pod with its own lease state and qdisc. With `leaseKeepers`, each pod's sidecar also runs its
 * main process, the lease keeper (`fault-sidecar run`), on that same state, as the container does.
 *
 * Each pod also has a main process for `fault-sidecar kill-main` to kill: a stand-in whose command
 * line is the main container's (`… services/main.js <service>`), alone in the pod's FAULT_PROC_DIR
 * as it would be in the pod's shared PID namespace. When it is killed, the pod's kubelet part
 * starts another and calls `onMainRestart` (the fake API server's restartContainer: restartCount
 * up, the pod not Ready for a moment). The backend behind the pod's port stays up meanwhile.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { synthLab, TEST_SECRETS } from '../../../charts/__fixtures__/manifests.ts';
import { FAULT_SIDECAR_CONTAINER } from '../../../charts/fault-sidecar.ts';
import { LABELS } from '../../../charts/lab-pod.ts';
import { type RunningBackend, startBackend } from '../../../services/backends/server.ts';
import { type RunningFaultProxy, startFaultProxy } from '../../../services/fault-proxy/proxy.ts';
import {
  type MainStandIn,
  startMainStandIn,
} from '../../../services/fault-sidecar/__fixtures__/main-process.ts';
import { type RunningGateway, startGateway } from '../../../services/gateway/server.ts';
import { FAULT_PROXY_POD_PORTS } from '../../../services/names.ts';
import {
  BACKENDS,
  type BackendName,
  STRATEGIES,
  type Strategy,
  topology,
} from '../../../services/topology.ts';
import {
  type FakeApiServer,
  type FakeNode,
  startFakeApiServer,
} from '../../../test/fake-kube/fake-api-server.ts';
import { connectCluster } from '../client.ts';
import type { Cluster, ExecResult } from '../cluster.ts';

const SIDECAR = path.join(
  import.meta.dirname,
  '..',
  '..',
  '..',
  'services',
  'fault-sidecar',
  'fault-sidecar.sh',
);
const TC_SHIM = path.join(
  import.meta.dirname,
  '..',
  '..',
  '..',
  'services',
  'fault-sidecar',
  '__fixtures__',
  'tc',
);

export interface LabPod {
  readonly name: string;
  readonly service: BackendName;
  /** The backend behind the pod's service port. */
  readonly backend: RunningBackend;
  /** `host:port` of that backend, for a port-forward. */
  readonly address: { readonly host: string; readonly port: number };
  /** The pod's fault proxy sidecar in front of the backend: the gateways call it, as the Service sends them. */
  readonly proxy: RunningFaultProxy;
  /** `host:port` of the proxy's admin API, for a port-forward to FAULT_PROXY_POD_PORTS.admin. */
  readonly proxyAdmin: { readonly host: string; readonly port: number };
}

/** How often the pods' lease keepers look at their lease (the script's FAULT_POLL_SECONDS). */
export const KEEPER_POLL_SECONDS = 1;

export interface PodLabOptions {
  /**
   * Run each pod's lease keeper (`fault-sidecar run`, the sidecar container's CMD) as a child
   * process from the pod's first backend on, until close(). @default false: only the execs run
   */
  readonly leaseKeepers?: boolean;
  /** Called when a pod's main process was killed and another started (the kubelet's restart). */
  readonly onMainRestart?: (pod: string, service: BackendName) => void;
}

export interface PodLab {
  /** The backend behind a pod, started on first ask. */
  backendFor(pod: string, service: BackendName): Promise<LabPod>;
  /** One gateway per strategy over the backends started so far; their URLs. */
  startGateways(): Promise<Record<Strategy, string>>;
  /** Runs `fault-sidecar <args>` as an exec in the pod's sidecar container would. */
  sidecar(pod: string, args: readonly string[]): Promise<ExecResult>;
  /** Every tc call the pod's sidecar made, one line each (`qdisc replace dev eth0 parent 1:10 handle 10: netem delay 400ms`). */
  tcCalls(pod: string): string[];
  /** From now, `tc qdisc replace` in the pod fails with this message (undefined: works again). */
  failTc(pod: string, message: string | undefined): void;
  /** What the pod's lease keeper wrote to stderr so far (its log); '' without leaseKeepers. */
  keeperLog(pod: string): string;
  /** Pods whose lease keeper is running now. */
  keepersRunning(): string[];
  /** The pid of the pod's main process now (a new one after each kill). */
  mainPid(pod: string): number | undefined;
  close(): Promise<void>;
}

// Recovered panics log at error level; the tests count them instead.
const quiet = pino({ level: 'fatal' });

/** `adminToken`: the token the backends' fault agents take, as the lab's Secret gives it to the pods. */
export async function startPodLab(adminToken: string, options: PodLabOptions = {}): Promise<PodLab> {
  const work = mkdtempSync(path.join(tmpdir(), 'pod-lab-'));
  const bin = path.join(work, 'bin');
  mkdirSync(bin);
  copyFileSync(TC_SHIM, path.join(bin, 'tc'));
  chmodSync(path.join(bin, 'tc'), 0o755);
  const failing = new Map<string, string>();
  const pods = new Map<string, Promise<LabPod>>();
  const gateways: RunningGateway[] = [];
  const keepers = new Map<string, { child: ChildProcess; log: string[] }>();
  const mains = new Map<string, MainStandIn>();
  let closing = false;
  const dirOf = (pod: string) => {
    const dir = path.join(work, pod);
    mkdirSync(dir, { recursive: true });
    return dir;
  };
  // The sidecar container's environment: execs and the keeper share the lease state and the qdisc.
  const envOf = (pod: string): NodeJS.ProcessEnv => {
    const dir = dirOf(pod);
    return {
      PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}`,
      FAULT_STATE_DIR: path.join(dir, 'state'),
      FAULT_POLL_SECONDS: String(KEEPER_POLL_SECONDS),
      TC_SHIM_LOG: path.join(dir, 'tc.log'),
      TC_SHIM_STATE: path.join(dir, 'qdisc'),
      FAULT_PROC_DIR: path.join(dir, 'proc'),
    };
  };
  /** The pod's main process, alone in its proc directory; started again after it is killed. */
  const startMain = (pod: string, service: BackendName) => {
    const procDir = path.join(dirOf(pod), 'proc');
    mkdirSync(procDir, { recursive: true });
    const main = startMainStandIn(service);
    main.linkInto(procDir);
    mains.set(pod, main);
    void main.ended.then(({ signal }) => {
      rmSync(path.join(procDir, String(main.pid)), { force: true });
      if (closing || signal !== 'SIGKILL') return;
      startMain(pod, service);
      options.onMainRestart?.(pod, service);
    });
  };
  const startKeeper = (pod: string) => {
    const child = spawn('/bin/sh', ['-c', KEEPER_WRAPPER, SIDECAR], {
      env: envOf(pod),
      stdio: ['pipe', 'ignore', 'pipe'],
      detached: true,
    });
    const log: string[] = [];
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => log.push(chunk));
    keepers.set(pod, { child, log });
  };
  return {
    backendFor(pod, service) {
      let started = pods.get(pod);
      if (!started) {
        if (options.leaseKeepers) startKeeper(pod);
        startMain(pod, service);
        started = startBackend(
          {
            name: service,
            instanceId: pod,
            port: 0,
            host: '127.0.0.1',
            adminToken,
            trustMode: 'zero',
            workerRecovery: true,
          },
          { log: quiet },
        ).then(async (backend) => {
          const proxy = await startFaultProxy(
            {
              instanceId: pod,
              listenHost: '127.0.0.1',
              listenPort: 0,
              upstream: { host: '127.0.0.1', port: backend.port },
              adminPort: 0,
              adminToken,
            },
            { log: quiet },
          );
          return {
            name: pod,
            service,
            backend,
            address: { host: '127.0.0.1', port: backend.port },
            proxy,
            proxyAdmin: { host: '127.0.0.1', port: proxy.adminPort },
          };
        });
        pods.set(pod, started);
      }
      return started;
    },
    async startGateways() {
      const started = await Promise.all(pods.values());
      const upstreams = Object.fromEntries(
        BACKENDS.map((b) => [
          b,
          started.filter((p) => p.service === b).map((p) => `http://127.0.0.1:${p.proxy.dataPort}`),
        ]),
      ) as Record<BackendName, string[]>;
      for (const strategy of STRATEGIES) {
        gateways.push(
          await startGateway(
            {
              strategy,
              instanceId: `gateway-${strategy}`,
              port: 0,
              host: '127.0.0.1',
              upstreams,
              budgetMs: topology.gateway.defaultBudgetMs,
              maxConcurrency: 128,
              acceptors: 1,
              // Off: every fake pod shares this one event loop, whose delay is not a gateway's own.
              loopDelayTargetMs: 0,
              loopDelayIntervalMs: 100,
              loopDelayMinInFlight: 0,
              loopDelayHoldMs: 0,
              probeIntervalMs: 250,
              trustMode: 'zero',
              // Their fault agents take a variant's settings, as the pods' do.
              adminToken,
            },
            { log: quiet },
          ),
        );
      }
      return Object.fromEntries(STRATEGIES.map((s, i) => [s, gateways[i]?.url ?? ''])) as Record<
        Strategy,
        string
      >;
    },
    sidecar(pod, args) {
      const fail = failing.get(pod);
      const env: NodeJS.ProcessEnv = { ...envOf(pod), ...(fail ? { TC_SHIM_FAIL: fail } : {}) };
      return new Promise((resolve) => {
        execFile('/bin/sh', [SIDECAR, ...args], { env, timeout: 20_000 }, (err, stdout, stderr) => {
          const exitCode = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
          resolve({ stdout, stderr, exitCode });
        });
      });
    },
    tcCalls(pod) {
      const log = path.join(work, pod, 'tc.log');
      return existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n').filter(Boolean) : [];
    },
    failTc(pod, message) {
      if (message === undefined) failing.delete(pod);
      else failing.set(pod, message);
    },
    keeperLog(pod) {
      return keepers.get(pod)?.log.join('') ?? '';
    },
    mainPid(pod) {
      return mains.get(pod)?.pid;
    },
    keepersRunning() {
      return [...keepers]
        .filter(([, k]) => k.child.exitCode === null && k.child.signalCode === null)
        .map(([pod]) => pod);
    },
    async close() {
      closing = true;
      await Promise.all([...keepers.values()].map((k) => stopKeeper(k.child)));
      await Promise.all([...mains.values()].map((m) => m.stop()));
      const started = await Promise.allSettled(pods.values());
      await Promise.allSettled([
        ...gateways.map((g) => g.close()),
        ...started.flatMap((p) =>
          p.status === 'fulfilled' ? [p.value.proxy.close(), p.value.backend.close()] : [],
        ),
      ]);
      rmSync(work, { recursive: true, force: true });
    },
  };
}

/**
 * The keeper runs under a shell that stops it with SIGTERM, as the kubelet stops the container (the
 * keeper then removes any fault), once its stdin closes: at close(), and also when the test process
 * dies in any way, so that no keeper outlives the tests polling forever.
 */
const KEEPER_WRAPPER = '/bin/sh "$0" run & keeper=$!; cat >/dev/null; kill -TERM "$keeper"; wait "$keeper"';

/** Closes the keeper's stdin (see KEEPER_WRAPPER); its process group is killed if it is not gone in 5 s. */
async function stopKeeper(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((resolve) => child.once('exit', resolve));
  child.stdin?.end();
  const timer = setTimeout(() => {
    if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
  }, 5_000);
  await gone;
  clearTimeout(timer);
}

/**
 * The lab as `chaos-lab up --target kind` leaves it, on the fake API server: the synthesized
 * manifests applied (the Secret stored with `data`, as the real API server turns `stringData`
 * into it), every backend pod Running with its service port forwarded to a backend of its own and
 * its fault-sidecar execs answered by the real script, and real gateways over those backends.
 */
export interface FakeLab {
  readonly fake: FakeApiServer;
  readonly lab: PodLab;
  readonly cluster: Cluster;
  readonly gateways: Record<Strategy, string>;
  /** Backend pods now, by service, in name order. */
  podsOf(service: BackendName): string[];
  /** Gives a pod that appeared since (a replacement) its backend and forward. */
  serve(pod: string): Promise<LabPod>;
  close(): Promise<void>;
}

export interface FakeLabOptions extends Omit<PodLabOptions, 'onMainRestart'> {
  /** The fake cluster's nodes. @default the fake API server's one kind node */
  readonly nodes?: readonly FakeNode[];
}

/** How long a restarted main container stays not Ready in the fake lab. */
export const RESTART_READY_MS = 200;

export async function startFakeLab(options: FakeLabOptions = {}): Promise<FakeLab> {
  const fake = await startFakeApiServer({
    readyDelayMs: 20,
    ...(options.nodes ? { nodes: options.nodes } : {}),
  });
  const work = mkdtempSync(path.join(tmpdir(), 'fake-lab-'));
  const cluster = connectCluster({ kubeconfigPath: await fake.kubeconfig(path.join(work, 'kubeconfig')) });
  const { nodes: _nodes, ...podLabOptions } = options;
  const lab = await startPodLab(TEST_SECRETS.adminToken, {
    ...podLabOptions,
    // The kubelet's part: the killed container restarts in its pod, and the API says so.
    onMainRestart: (pod, service) => {
      if (fake.pods('chaos-lab').some((p) => p.metadata.name === pod)) {
        fake.restartContainer('chaos-lab', pod, service, { readyAfterMs: RESTART_READY_MS });
      }
    },
  });
  const manifests = synthLab({ observability: false });
  for (const manifest of manifests) fake.applyAs('chaos-lab', asStored(manifest));
  const podsOf = (service: BackendName) =>
    fake
      .pods('chaos-lab')
      .filter((p) => p.metadata.labels?.[LABELS.name] === service && !p.metadata.deletionTimestamp)
      .map((p) => p.metadata.name)
      .sort();
  const replicas = manifests
    .filter((m) => m.kind === 'Deployment')
    .reduce((n, m) => n + (m.spec.replicas as number), 0);
  const running = () =>
    fake.pods('chaos-lab').filter((p) => (p.status as { phase?: string } | undefined)?.phase === 'Running');
  for (let i = 0; i < 500 && running().length < replicas; i++) await new Promise((r) => setTimeout(r, 20));
  const serve = async (pod: string) => {
    const service = BACKENDS.find((b) => pod.startsWith(`${b}-`));
    if (!service) throw new Error(`${pod} is not a backend pod`);
    const served = await lab.backendFor(pod, service);
    fake.forwardPodPort(pod, topology.backends[service].port, served.address);
    fake.forwardPodPort(pod, FAULT_PROXY_POD_PORTS.admin, served.proxyAdmin);
    return served;
  };
  for (const service of BACKENDS) for (const pod of podsOf(service)) await serve(pod);
  fake.onExec((call) =>
    call.container === FAULT_SIDECAR_CONTAINER && call.command[0] === 'fault-sidecar'
      ? lab.sidecar(call.pod, call.command.slice(1))
      : undefined,
  );
  // The doctor's netem probe (a run whose fault asks for `injector: netem` runs it first): the tc
  // stand-in has netem, so the probe pod's tc succeeds. A test that needs a kernel without it
  // answers otherwise in a handler of its own.
  fake.onExec((call) =>
    call.pod.startsWith('chaos-lab-doctor-') && call.command[0] === 'tc'
      ? { stdout: '', stderr: '', exitCode: 0 }
      : undefined,
  );
  const gateways = await lab.startGateways();
  // Each gateway pod's port reaches the real gateway of its strategy (its fault agent).
  for (const pod of fake.pods('chaos-lab')) {
    const strategy = pod.metadata.labels?.[LABELS.strategy] as Strategy | undefined;
    if (strategy && gateways[strategy]) {
      const url = new URL(gateways[strategy]);
      fake.forwardPodPort(pod.metadata.name, topology.gateway.port, {
        host: url.hostname,
        port: Number(url.port),
      });
    }
  }
  return {
    fake,
    lab,
    cluster,
    gateways,
    podsOf,
    serve,
    async close() {
      await cluster.close();
      await fake.close();
      await lab.close();
      rmSync(work, { recursive: true, force: true });
    },
  };
}

/** A manifest as the API server stores it: a Secret's `stringData` becomes base64 `data`. */
function asStored(manifest: Record<string, unknown>): Record<string, unknown> {
  if (manifest.kind !== 'Secret' || !manifest.stringData) return manifest;
  const { stringData, ...rest } = manifest as { stringData: Record<string, string> };
  return {
    ...rest,
    data: Object.fromEntries(
      Object.entries(stringData).map(([k, v]) => [k, Buffer.from(v, 'utf8').toString('base64')]),
    ),
  };
}
