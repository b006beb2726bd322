/**
 * The cluster tier: the lab on a real Kubernetes — the test cluster that tools/cluster/ builds and
 * starts (`npm run test:cluster` does both, runs this file, and stops the cluster). Everything goes
 * through the CLI as a user runs it, `--target kind --context chaos-lab-test` on the cluster's
 * kubeconfig; kubectl (built with the cluster) only looks.
 *
 * One file, in order: doctor and up, the gateways through their NodePorts, NetworkPolicy, Prometheus'
 * discovery, experiments with each fault this cluster can inject, a second run refused while one
 * holds the lab, a runner SIGKILLed mid-fault (its run Lease is left to expire: nothing runs after it
 * but down), down.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatewayNodePort } from '../../charts/gateway.ts';
import { REPO_ROOT } from '../../lab/local/state.ts';
import { sampleResult } from '../../lab/report/__fixtures__/sample-result.ts';
import type { ClaimResult, RunResult } from '../../lab/runner/result.ts';
import { ACCEPTORS_RESILIENT } from '../../services/gateway/server.ts';
import { backend, STRATEGIES } from '../../services/topology.ts';
import { type CliRun, cli, eventually } from '../e2e/helpers.ts';

const CONTEXT = process.env.CHAOS_LAB_TEST_CLUSTER ?? '';
const KUBECTL = path.join(REPO_ROOT, '.tools', 'cluster', 'bin', 'kubectl');
const NAMESPACE = 'chaos-lab';
const TARGET = ['--target', 'kind', '--context', CONTEXT];
/** The test cluster's node (tools/cluster/lib.sh): NodePorts answer on its bridge address. */
const NODE_IP = '10.250.0.1';
const BIN = path.join(REPO_ROOT, 'bin', 'chaos-lab.js');
/** Requests per second to each gateway in the cluster tier's runs (see atClusterRate). */
const CLUSTER_RATE = 10;

if (!CONTEXT) {
  throw new Error(
    'the cluster tier needs the test cluster: run `npm run test:cluster` (it builds, starts and stops it)',
  );
}

function kubectl(args: readonly string[], timeoutMs = 60_000): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(KUBECTL, ['--context', CONTEXT, ...args], { timeout: timeoutMs }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr });
    });
  });
}

/** `kubectl port-forward pod/<pod> <local>:<remote>` in the lab's namespace; kill it when done. */
function portForward(pod: string, local: number, remote: number): ChildProcess {
  return spawn(KUBECTL, [
    '--context',
    CONTEXT,
    '-n',
    NAMESPACE,
    'port-forward',
    `pod/${pod}`,
    `${local}:${remote}`,
  ]);
}

/** One field of each pod of a component (`account`, `gateway-naive`), by a kubectl jsonpath. */
async function podFields(component: string, jsonpath: string): Promise<string[]> {
  const out = await kubectl([
    '-n',
    NAMESPACE,
    'get',
    'pods',
    '-l',
    `app.kubernetes.io/instance=${component}`,
    '-o',
    `jsonpath={range .items[*]}${jsonpath}{" "}{end}`,
  ]);
  expect(out.code, out.stderr).toBe(0);
  return out.stdout.split(/\s+/).filter(Boolean);
}

async function podsOf(component: string): Promise<string[]> {
  return (await podFields(component, '{.metadata.name}')).sort();
}

/** Key paths of a result, two levels into runs and phases: the shape, not the figures. */
function shapeOf(result: RunResult): string[] {
  const keys = (prefix: string, value: unknown) =>
    value && typeof value === 'object' ? Object.keys(value).map((k) => `${prefix}${k}`) : [];
  const run = result.runs[0];
  const phase = run?.phases[0];
  const optional = new Set(['k6Version', 'error', 'auditError', 'rollbackProblems', 'verdictReason']);
  return [
    ...keys('', result).filter((k) => !optional.has(k)),
    ...keys('runs[].', run),
    // A phase's optional parts (a rogue client, a proxy restart, a settle) are there only when they happened.
    ...keys('phases[].', phase).filter(
      (k) => !k.endsWith('faults') && !/\.(rogue|proxyRestarts|reapplied|settledMs)$/.test(k),
    ),
    ...keys(
      'gateways.naive.',
      (phase as { gateways?: Record<string, unknown> } | undefined)?.gateways?.naive,
    ),
  ].sort();
}

let dir: string;
let home: string;

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'cluster-tier-'));
  home = path.join(dir, 'home');
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/**
 * An experiment of the catalog, as a file in the test's folder, at CLUSTER_RATE: the whole cluster
 * (control plane, kubelet, 13 pods) shares two cores with the load generator here, and at the
 * catalog's 30 rps per gateway the generator fell behind (6–9% of sends over 50 ms late), which
 * withholds the verdict. Everything else is the catalog's, claims included.
 */
function atClusterRate(name: string): string {
  const text = readFileSync(path.join(REPO_ROOT, 'experiments', `${name}.yaml`), 'utf8');
  const slower = text.replace(/load: \{ rate: \d+,/, `load: { rate: ${CLUSTER_RATE},`);
  expect(slower, `experiments/${name}.yaml names its rate as the test expects`).not.toBe(text);
  const file = path.join(dir, `${name}.yaml`);
  writeFileSync(file, slower);
  return file;
}

/**
 * Runs an experiment of the catalog on the cluster; returns its result.json and report.html.
 *
 * A run whose load generator fell behind gives no verdict by design (its figures would not describe
 * the gateways at the asked rate). On this shared two-core VM that is the machine's doing, not the
 * lab's — a fresh-clone CI run had 7.3% of the worker-panics' sends over 50 ms late while the
 * hypervisor stole up to a quarter of the CPU — so such a run is run once more, saying why; a second
 * run that falls behind fails the test.
 */
async function runExperiment(name: string): Promise<{ run: CliRun; result: RunResult; report: string }> {
  const first = await runExperimentOnce(name, 1);
  if (!first.result.generator.fellBehind) return first;
  console.log(
    `run ${name}: ${first.result.generator.reason ?? 'the load generator fell behind'} — the machine was too busy to keep the asked rate, so the run gives no verdict; running it once more`,
  );
  return runExperimentOnce(name, 2);
}

async function runExperimentOnce(
  name: string,
  attempt: number,
): Promise<{ run: CliRun; result: RunResult; report: string }> {
  const out = path.join(dir, `out-${name}-${attempt}`);
  const run = await cli(
    home,
    ['run', atClusterRate(name), ...TARGET, '--no-live', '--out', out],
    10 * 60_000,
  );
  console.log(
    `run ${name} on ${CONTEXT}, attempt ${attempt} (exit ${run.code}):\n${run.stdout}${run.stderr}`,
  );
  const [runDir] = readdirSync(out);
  const folder = path.join(out, runDir as string);
  return {
    run,
    result: JSON.parse(readFileSync(path.join(folder, 'result.json'), 'utf8')) as RunResult,
    report: readFileSync(path.join(folder, 'report.html'), 'utf8'),
  };
}

/**
 * An upper bound on latency (`p99 < 200ms`): a speed figure of this shared two-core VM, which carries
 * the cluster, the lab and the runner at once — a cluster tier run once read 463 ms for a p99 < 200ms
 * that read 142, 197 and 136 ms in the runs before, from two pages caught in a stall of the machine.
 * Speed is for benchmarks, not tests: such a claim is printed with its verdict, not asserted. Every
 * other claim (success and degraded shares, restarts, recovered panics, rogue calls served, and the
 * lower bounds a fault's delay guarantees) is a mechanism's, and must hold.
 */
function isSpeedBound(claim: ClaimResult): boolean {
  return ['p50', 'p95', 'p99', 'max'].includes(claim.metric) && /^\s*<=?\s/.test(claim.expected);
}

function expectCompleteRun(name: string, outcome: { run: CliRun; result: RunResult; report: string }) {
  const { run, result, report } = outcome;
  expect(result.experiment.name).toBe(name);
  expect(result.target).toBe('kind');
  expect(result.status).toBe('completed');
  expect(result.generator.fellBehind, result.generator.reason ?? '').toBe(false);
  expect(result.leftoverFaults).toEqual([]);
  expect(result.auditError).toBeUndefined();
  // The same shape as a local run's result (the report's fixture is one).
  expect(shapeOf(result)).toEqual(shapeOf(sampleResult));
  expect(report).toMatch(/^<!doctype html>/i);
  expect(report).toContain(name);
  expect(run.stdout).toContain('audit: no fault left in the lab');
  const speed = result.claims.filter(isSpeedBound);
  for (const claim of speed) {
    console.log(
      `speed claim of ${name} on ${CONTEXT} (printed, not asserted): ${claim.gateway ?? claim.service} ${claim.metric} ${claim.expected} in ${claim.phase} (${claim.variant}): ${claim.actual} ms, ${claim.holds ? 'held' : 'did not hold'}`,
    );
    expect(claim.holds, JSON.stringify(claim)).not.toBeNull();
  }
  const failedClaims = result.claims
    .filter((c) => !isSpeedBound(c) && c.holds !== true)
    .map((c) => JSON.stringify(c));
  expect(failedClaims, `claims that did not hold on ${CONTEXT}`).toEqual([]);
  const allHeld = speed.every((c) => c.holds === true);
  expect(result.verdict).toBe(allHeld ? 'held' : 'violated');
  expect(run.code, run.stderr).toBe(allHeld ? 0 : 1);
}

/**
 * Latency and loss went through the fault proxy sidecars (this kernel has no sch_netem), named so in
 * the result, and calibration is the proxies' own, as on the local target: the latency they added
 * within 5% of the configured one, in all and on each direction.
 */
function expectByTheProxies(result: RunResult): void {
  const network = result.runs.flatMap((r) =>
    r.phases.flatMap((p) => p.faults.filter((f) => f.kind === 'latency' || f.kind === 'loss')),
  );
  expect(network.length).toBeGreaterThan(0);
  for (const fault of network) expect(fault.injector, JSON.stringify(fault)).toBe('fault-proxy');
  const entries = result.calibration.filter((c) => c.kind === 'latency' || c.kind === 'loss');
  expect(entries).toHaveLength(network.length);
  for (const entry of entries) {
    console.log(`calibration on ${CONTEXT}: ${JSON.stringify(entry)}`);
    expect(entry.note, JSON.stringify(entry)).toBeUndefined();
    if (entry.kind === 'loss') {
      expect(entry.observed.lossRate, JSON.stringify(entry)).toBeGreaterThan(0);
      continue;
    }
    for (const key of ['addedLatencyMs', 'requestLatencyMs', 'responseLatencyMs']) {
      const configured = entry.configured[key] as number;
      const observed = entry.observed[key] as number;
      expect(observed, `${key} of ${JSON.stringify(entry)}`).toBeGreaterThanOrEqual(configured * 0.95);
      expect(observed, `${key} of ${JSON.stringify(entry)}`).toBeLessThanOrEqual(configured * 1.05);
    }
  }
}

describe.sequential(`the lab on the real cluster ${CONTEXT}`, () => {
  it('up applies the chart, waits for the rollouts, and says where the gateways answer', async () => {
    const up = await cli(home, ['up', ...TARGET, '--no-grafana'], 10 * 60_000);
    console.log(`up:\n${up.stdout}${up.stderr}`);
    expect(up.code, up.stderr).toBe(0);
    expect(up.stdout).toContain(`chaos-lab is up on ${CONTEXT}`);
    for (const strategy of STRATEGIES) {
      expect(up.stdout).toContain(`http://${NODE_IP}:${gatewayNodePort(strategy)}`);
    }
    // Every Deployment of the lab is rolled out for real.
    const deployments = await kubectl([
      '-n',
      NAMESPACE,
      'get',
      'deployments',
      '-o',
      'jsonpath={range .items[*]}{.metadata.name}={.status.readyReplicas}/{.spec.replicas}{"\\n"}{end}',
    ]);
    const rows = deployments.stdout.trim().split('\n');
    expect(rows.length).toBeGreaterThanOrEqual(8);
    for (const row of rows) {
      const [, ready, desired] = /=(\d*)\/(\d+)$/.exec(row) ?? [];
      expect(ready, row).toBe(desired);
    }
    expect(rows.some((r) => r.startsWith('grafana='))).toBe(false);
  });

  it('doctor passes every check this machine can pass, and warns of the one it cannot: no sch_netem', async () => {
    const doctor = await cli(home, ['doctor', ...TARGET], 5 * 60_000);
    console.log(`doctor:\n${doctor.stdout}${doctor.stderr}`);
    // Without sch_netem the lab still works (the fault proxy sidecar applies latency and loss): a
    // warning, and the doctor passes.
    expect(doctor.code, doctor.stderr).toBe(0);
    const lines = doctor.stdout.split('\n').filter((l) => /^\s*[✓✗!-]/.test(l));
    expect(lines.filter((l) => l.trim().startsWith('✗'))).toEqual([]);
    const warning = lines.filter((l) => l.trim().startsWith('!'));
    expect(warning).toHaveLength(1);
    expect(warning[0]).toMatch(/netem/);
    expect(doctor.stdout).toMatch(/no sch_netem/);
    expect(doctor.stdout).toMatch(/✓ network-policy/);
  });

  it('the gateways answer the video page through their NodePorts', async () => {
    for (const strategy of STRATEGIES) {
      const url = `http://${NODE_IP}:${gatewayNodePort(strategy)}/api/video/42`;
      const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
      expect(res.status, url).toBe(200);
      const page = (await res.json()) as { aid?: number; owner?: unknown; strategy?: string };
      expect(page.aid, url).toBe(42);
      expect(page.owner, url).toBeDefined();
      expect(page.strategy, url).toBe(strategy);
    }
  });

  it("the resilient gateway's port accepts on 8 descriptors in its pod (the helper process ran there), the others on 1", async () => {
    for (const strategy of STRATEGIES) {
      const [pod] = await podsOf(`gateway-${strategy}`);
      const logs = await kubectl(['-n', NAMESPACE, 'logs', pod as string, '-c', 'gateway']);
      expect(logs.code, logs.stderr).toBe(0);
      const listening = logs.stdout
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as { msg?: string; acceptors?: number })
        .find((line) => line.msg === 'gateway listening');
      expect(listening?.acceptors, `${pod}: ${logs.stdout.slice(0, 2_000)}`).toBe(
        strategy === 'resilient' ? ACCEPTORS_RESILIENT : 1,
      );
    }
  });

  it('NetworkPolicies are enforced: a pod that is not a gateway cannot reach a backend, a gateway can', async () => {
    const port = backend('account').port;
    const probe = `node -e "fetch('http://account:${port}/healthz',{signal:AbortSignal.timeout(4000)}).then(r=>{console.log('status',r.status)},e=>{console.log('refused',e.cause?.code??e.name);process.exit(3)})"`;
    const [gateway] = await podsOf('gateway-naive');
    expect(gateway).toBeDefined();
    const allowed = await kubectl(['-n', NAMESPACE, 'exec', gateway as string, '--', 'sh', '-c', probe]);
    expect(allowed.stdout, allowed.stderr).toMatch(/^status 200/);

    const outsider = await kubectl([
      '-n',
      NAMESPACE,
      'run',
      'outsider',
      `--image=${process.env.CHAOS_LAB_IMAGE}`,
      '--image-pull-policy=Never',
      '--restart=Never',
      '--labels=app.kubernetes.io/name=outsider',
      '--command',
      '--',
      'sleep',
      '600',
    ]);
    expect(outsider.code, outsider.stderr).toBe(0);
    try {
      const ready = await kubectl([
        '-n',
        NAMESPACE,
        'wait',
        '--for=condition=Ready',
        'pod/outsider',
        '--timeout=90s',
      ]);
      expect(ready.code, ready.stderr).toBe(0);
      const denied = await kubectl(['-n', NAMESPACE, 'exec', 'outsider', '--', 'sh', '-c', probe]);
      expect(denied.stdout, denied.stderr).toMatch(/^refused/);
    } finally {
      await kubectl(['-n', NAMESPACE, 'delete', 'pod', 'outsider', '--grace-period=0', '--wait=false']);
    }
  });

  it("Prometheus finds the lab's pods through the API server and scrapes them", async () => {
    const [prometheus] = await podsOf('prometheus');
    expect(prometheus).toBeDefined();
    const forward = portForward(prometheus as string, 19090, 9090);
    try {
      const backendPods = (
        await Promise.all(['account', 'archive', 'vip', 'like', 'coin'].map(podsOf))
      ).flat();
      const up = await eventually(
        'every backend and gateway pod, and every fault proxy sidecar, as an up target of Prometheus',
        async () => {
          const res = await fetch('http://127.0.0.1:19090/api/v1/targets?state=active', {
            signal: AbortSignal.timeout(5_000),
          });
          const body = (await res.json()) as {
            data: { activeTargets: { labels: Record<string, string>; health: string }[] };
          };
          const healthy = body.data.activeTargets.filter((t) => t.health === 'up');
          const proxies = healthy.filter((t) => t.labels.service === 'fault-proxy');
          return healthy.length - proxies.length >= 13 && proxies.length === backendPods.length
            ? { healthy, proxies }
            : undefined;
        },
        120_000,
        2_000,
      );
      // The proxies carry the labels the dashboards' fault-proxy panels select on, as locally.
      expect(up.proxies.map((t) => t.labels.instance).sort()).toEqual([...backendPods].sort());
      for (const t of up.proxies) {
        expect(t.labels.backend, JSON.stringify(t.labels)).toBe(
          ['account', 'archive', 'vip', 'like', 'coin'].find((b) => t.labels.instance?.startsWith(`${b}-`)),
        );
      }
      console.log(`prometheus: ${up.healthy.length} targets up, ${up.proxies.length} of them fault proxies`);
    } finally {
      forward.kill();
    }
  });

  it('exec into the fault sidecar and port-forward to a fault agent work', async () => {
    const [pod] = await podsOf('coin');
    const status = await kubectl([
      '-n',
      NAMESPACE,
      'exec',
      pod as string,
      '-c',
      'fault-sidecar',
      '--',
      'fault-sidecar',
      'status',
    ]);
    expect(status.code, status.stderr).toBe(0);
    const port = backend('coin').port;
    const forward = portForward(pod as string, 19081, port);
    try {
      const res = await eventually(
        'the agent through the port-forward',
        async () => {
          const r = await fetch('http://127.0.0.1:19081/healthz', { signal: AbortSignal.timeout(3_000) });
          return r.status === 200 ? r : undefined;
        },
        30_000,
        500,
      );
      expect(res.status).toBe(200);
    } finally {
      forward.kill();
    }
  });

  // weak-dependency-latency first of the experiments: the load generator asks for the same pages
  // in every run, and for 60 s the resilient gateway keeps coin's answers to serve stale when coin
  // is slow — a run less than a minute after another serves them stale instead of degrading the
  // page, and its degradedRate claim misses (see the note on issue 13).
  for (const [name, kind] of [
    ['weak-dependency-latency', 'latency'],
    ['strong-dependency-latency', 'latency'],
    ['weak-dependency-loss', 'loss'],
  ] as const) {
    it(`${kind} (${name}) by the fault proxy sidecars, with no netem on this kernel: a verdict, calibrated`, async () => {
      const outcome = await runExperiment(name);
      expectCompleteRun(name, outcome);
      expectByTheProxies(outcome.result);
    });
  }

  it('http-error (weak-dependency-errors): a verdict, the same result and report as a local run', async () => {
    expectCompleteRun('weak-dependency-errors', await runExperiment('weak-dependency-errors'));
  });

  it('the tour: latency, http-error and a kill, every claim held, calibrated as on the local target', async () => {
    const outcome = await runExperiment('tour');
    expectCompleteRun('tour', outcome);
    expectByTheProxies(outcome.result);
  });

  it("a fault that asks for injector netem is refused before anything starts, in the doctor's words", async () => {
    const file = path.join(dir, 'netem-latency.yaml');
    const text = readFileSync(atClusterRate('weak-dependency-latency'), 'utf8');
    const netem = text.replace(
      '{ kind: latency, service: coin, delay: 400ms, jitter: 20ms }',
      '{ kind: latency, service: coin, delay: 400ms, jitter: 20ms, injector: netem }',
    );
    expect(netem).not.toBe(text);
    writeFileSync(file, netem);
    const out = path.join(dir, 'out-netem');
    const run = await cli(home, ['run', file, ...TARGET, '--no-live', '--out', out], 5 * 60_000);
    console.log(`run with injector netem on ${CONTEXT} (exit ${run.code}):\n${run.stdout}${run.stderr}`);
    expect(run.code).not.toBe(0);
    expect(run.stderr).toContain('nothing was started');
    expect(run.stderr).toContain('injector netem cannot work on the kind target');
    expect(run.stderr).toContain('Specified qdisc kind is unknown');
    expect(run.stderr).toContain('the node kernel has no sch_netem');
    expect(existsSync(out) ? readdirSync(out) : []).toEqual([]);
    // The doctor's probe pod is gone, and no fault is anywhere.
    const pods = await kubectl(['-n', NAMESPACE, 'get', 'pods', '-o', 'name']);
    expect(pods.stdout).not.toContain('chaos-lab-doctor');
    const list = await cli(home, ['fault', 'list', '--json', ...TARGET]);
    expect(list.code, list.stderr).toBe(0);
    expect((JSON.parse(list.stdout) as { faults: unknown[] }).faults).toEqual([]);
  });

  it('worker-panic, both variants (worker-panics): restarts without recovery, none with it', async () => {
    const outcome = await runExperiment('worker-panics');
    expectCompleteRun('worker-panics', outcome);
    expect(outcome.result.runs.map((r) => r.variant)).toEqual(['recovery-off', 'recovery-on']);
  });

  it('trust modes (trust-modes): a rogue call is served in zero trust, refused in half and full (mutual TLS), pages fine in each', async () => {
    const outcome = await runExperiment('trust-modes');
    expectCompleteRun('trust-modes', outcome);
    const { runs } = outcome.result;
    expect(runs.map((r) => [r.variant, r.trust])).toEqual([
      ['zero', 'zero'],
      ['half', 'half'],
      ['full', 'full'],
    ]);
    const rogue = (variant: string) => runs.find((r) => r.variant === variant)?.phases[0]?.rogue;
    console.log(
      `rogue calls on ${CONTEXT}: ${JSON.stringify(runs.map((r) => [r.variant, r.phases[0]?.rogue]))}`,
    );
    console.log(
      `page latency by trust mode on ${CONTEXT}: ${JSON.stringify(runs.map((r) => [r.variant, Object.fromEntries(Object.entries(r.phases[0]?.gateways ?? {}).map(([g, s]) => [g, s?.latencyMs]))]))}`,
    );
    expect(rogue('zero')).toMatchObject({ served: 20, calls: 20 });
    expect(rogue('half')).toMatchObject({ served: 0, refused: { TRUST_MISSING: 20 } });
    expect(rogue('full')).toMatchObject({ served: 0, refused: { TRUST_NEEDS_MTLS: 20 } });
  });

  it('fault add|list|clear by hand through the kind target: http-error on vip, seen at the gateway, then gone', async () => {
    const pods = await podsOf('vip');
    const add = await cli(home, [
      'fault',
      'add',
      'http-error',
      'vip',
      '--status',
      '503',
      '--percent',
      '100',
      '--for',
      '60s',
      '--id',
      'by-hand',
      ...TARGET,
    ]);
    console.log(`fault add on ${CONTEXT}:\n${add.stdout}${add.stderr}`);
    expect(add.code, add.stderr).toBe(0);
    expect(add.stdout).toContain(
      `applied http-error by-hand (status=503 percent=100) on ${pods.join(', ')} for 1m`,
    );
    // Every vip call fails now: the resilient gateway serves the page without vip (degraded) or with
    // an earlier answer of vip from its cache (stale), and says so in the page.
    const resilient = `http://${NODE_IP}:${gatewayNodePort('resilient')}`;
    let aid = 100;
    await eventually(
      'the resilient gateway serving pages without a fresh vip',
      async () => {
        const res = await fetch(`${resilient}/api/video/${aid++}`, { signal: AbortSignal.timeout(5_000) });
        const page = (await res.json()) as { degraded?: string[]; stale?: string[] };
        return res.status === 200 && [...(page.degraded ?? []), ...(page.stale ?? [])].includes('vip')
          ? true
          : undefined;
      },
      30_000,
      500,
    );
    const list = await cli(home, ['fault', 'list', 'vip', '--json', ...TARGET]);
    expect(list.code, list.stderr).toBe(0);
    const listed = JSON.parse(list.stdout) as {
      faults: { instance: string; injector: string; id: string }[];
    };
    expect(listed.faults.map((f) => `${f.instance} ${f.injector} ${f.id}`)).toEqual(
      pods.map((p) => `${p} fault-agent by-hand`),
    );
    const clear = await cli(home, ['fault', 'clear', 'vip', '--id', 'by-hand', ...TARGET]);
    expect(clear.code, clear.stderr).toBe(0);
    expect(clear.stdout).toBe(`cleared by-hand on ${pods.join(', ')}\n`);
    const after = await cli(home, ['fault', 'list', '--json', ...TARGET]);
    expect(JSON.parse(after.stdout).faults).toEqual([]);
    // reset and latency by hand go to the fault proxy sidecars (a kind target without them could not).
    const coins = await podsOf('coin');
    const latency = await cli(home, [
      'fault',
      'add',
      'latency',
      'coin',
      '--delay',
      '50ms',
      '--direction',
      'requests',
      '--id',
      'slow-requests',
      '--for',
      '30s',
      ...TARGET,
    ]);
    console.log(`fault add latency on ${CONTEXT}:\n${latency.stdout}${latency.stderr}`);
    expect(latency.code, latency.stderr).toBe(0);
    expect(latency.stdout).toContain(
      `applied latency slow-requests (delayMs=50 jitterMs=0 requestShare=1) on ${coins.join(', ')}`,
    );
    const proxied = JSON.parse((await cli(home, ['fault', 'list', 'coin', '--json', ...TARGET])).stdout) as {
      faults: { instance: string; injector: string; id: string }[];
    };
    expect(proxied.faults.map((f) => `${f.instance} ${f.injector} ${f.id}`)).toEqual(
      coins.map((p) => `${p} fault-proxy slow-requests`),
    );
    const cleared = await cli(home, ['fault', 'clear', 'coin', '--id', 'slow-requests', ...TARGET]);
    expect(cleared.code, cleared.stderr).toBe(0);
    // What the kind target cannot do is refused before anything is touched: faults on the gateways.
    const gateway = await cli(home, ['fault', 'add', 'http-error', 'gateway', ...TARGET]);
    expect(gateway.code).not.toBe(0);
    expect(gateway.stderr).toContain('faults by hand on the gateways are for the local lab');
  });

  it('kill (instance-crash): a crash of the main process, counted as a container restart', async () => {
    const restarts = async () =>
      (await podFields('archive', '{.status.containerStatuses[?(@.name=="archive")].restartCount}'))
        .map(Number)
        .reduce((a, b) => a + b, 0);
    const podsBefore = await podsOf('archive');
    const restartsBefore = await restarts();
    const outcome = await runExperiment('instance-crash');
    expectCompleteRun('instance-crash', outcome);
    // A crash restarts the container in the same pod: no pod was replaced, and the kubelet counted it.
    expect(await podsOf('archive')).toEqual(podsBefore);
    expect(await restarts()).toBeGreaterThan(restartsBefore);
  });

  it('one run per lab: a second run is refused with exit 1, naming the first; the first lets the lab go at Ctrl-C', async () => {
    const first: ChildProcess = spawn(
      process.execPath,
      [
        BIN,
        'run',
        atClusterRate('weak-dependency-errors'),
        ...TARGET,
        '--no-live',
        '--out',
        path.join(dir, 'out-holding'),
      ],
      { cwd: REPO_ROOT, env: { ...process.env, CHAOS_LAB_HOME: home }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    for (const stream of [first.stdout, first.stderr]) {
      stream?.on('data', (chunk) => {
        output += chunk;
      });
    }
    const exited = new Promise<number | null>((resolve) => first.once('exit', (code) => resolve(code)));
    const refusedOut = path.join(dir, 'out-refused');
    try {
      await eventually(
        'the first run to hold the lab and start its load',
        () => (/phase baseline/.test(output) ? true : undefined),
        180_000,
        250,
      );
      const lease = await kubectl([
        '-n',
        NAMESPACE,
        'get',
        'lease',
        'chaos-lab-run',
        '-o',
        'jsonpath={.spec.holderIdentity}',
      ]);
      expect(lease.code, lease.stderr).toBe(0);
      expect(lease.stdout).toMatch(new RegExp(`^${hostname()}/${first.pid}/`));
      const second = await cli(
        home,
        ['run', atClusterRate('weak-dependency-latency'), ...TARGET, '--no-live', '--out', refusedOut],
        120_000,
      );
      console.log(`second run (exit ${second.code}):\n${second.stdout}${second.stderr}`);
      expect(second.code, second.stderr).toBe(1);
      expect(second.stderr).toMatch(
        new RegExp(
          `the lab is busy: a run of weak-dependency-errors \\(pid ${first.pid} on ${hostname()}, since `,
        ),
      );
      // Nothing of it started: no run folder.
      expect(existsSync(refusedOut)).toBe(false);
    } finally {
      // Ctrl-C: the first run rolls back, writes its partial result and lets the lab go.
      first.kill('SIGINT');
      const forced = setTimeout(() => first.kill('SIGKILL'), 60_000);
      await exited;
      clearTimeout(forced);
      console.log(`first run's output:\n${output}`);
    }
    expect(await exited).toBe(130);
    const gone = await kubectl(['-n', NAMESPACE, 'get', 'lease', 'chaos-lab-run']);
    expect(gone.code).not.toBe(0);
    expect(gone.stderr).toMatch(/NotFound/);
  });

  it('a runner SIGKILLed while a fault is on leaves nothing once the lease runs out', async () => {
    const out = path.join(dir, 'out-killed');
    const runner: ChildProcess = spawn(
      process.execPath,
      [BIN, 'run', atClusterRate('weak-dependency-errors'), ...TARGET, '--no-live', '--out', out],
      { cwd: REPO_ROOT, env: { ...process.env, CHAOS_LAB_HOME: home }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    runner.stdout?.on('data', (chunk) => {
      output += chunk;
    });
    runner.stderr?.on('data', (chunk) => {
      output += chunk;
    });
    await eventually(
      'the fault phase to start',
      () => (/phase fault/.test(output) ? true : undefined),
      180_000,
      250,
    );
    // A moment for the injection to land on every pod.
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    const vip = await podsOf('vip');
    runner.kill('SIGKILL');
    await new Promise((resolve) => runner.once('exit', resolve));
    console.log(`killed runner's output:\n${output}`);
    // Each vip pod's agent, asked through a port-forward of its own, with the lab's admin token.
    const { adminToken } = JSON.parse(readFileSync(path.join(home, 'kind-secrets.json'), 'utf8')) as {
      adminToken: string;
    };
    const port = backend('vip').port;
    const forwards = vip.map((pod, i) => portForward(pod, 19100 + i, port));
    const agentFaults = async () => {
      let count = 0;
      for (let i = 0; i < vip.length; i++) {
        const res = await fetch(`http://127.0.0.1:${19100 + i}/__chaos/faults`, {
          headers: { authorization: `Bearer ${adminToken}` },
          signal: AbortSignal.timeout(3_000),
        });
        expect(res.status).toBe(200);
        count += ((await res.json()) as { faults: unknown[] }).faults.length;
      }
      return count;
    };
    try {
      // The agents still hold the fault: nothing took it off…
      expect(
        await eventually('the agents through their port-forwards', agentFaults, 30_000, 500),
      ).toBeGreaterThan(0);
      // …until the lease (10 s) runs out by itself.
      await eventually(
        'the leases to run out',
        async () => ((await agentFaults()) === 0 ? true : undefined),
        30_000,
        1_000,
      );
    } finally {
      for (const forward of forwards) forward.kill();
    }
  });

  it('down removes everything and waits for the namespace to be gone', async () => {
    const down = await cli(home, ['down', ...TARGET], 5 * 60_000);
    console.log(`down:\n${down.stdout}${down.stderr}`);
    expect(down.code, down.stderr).toBe(0);
    expect(down.stdout).toMatch(/namespace chaos-lab gone/);
    const ns = await kubectl(['get', 'namespace', NAMESPACE]);
    expect(ns.code).not.toBe(0);
    expect(ns.stderr).toMatch(/NotFound/);
  });
});
