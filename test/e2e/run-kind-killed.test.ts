/**
 * Issue 5's promise for the kind target, end to end: a runner killed with SIGKILL in the middle of a
 * netem fault leaves no qdisc behind once the lease runs out, because the lease is enforced inside
 * the pod. The real CLI runs in a child process against the fake API server (KUBECONFIG), with the
 * gateways found through a kind configuration of the test's own (CHAOS_LAB_KIND_CONFIG); every
 * backend pod's fault sidecar has its lease keeper (`fault-sidecar run`) running for real on the
 * state its execs use. Nothing from the runner clears the fault: only the keeper can.
 *
 * The bounds follow from the runner's lease: DEFAULT_TIMING.leaseMs (the CLI sets no other),
 * passed to the sidecar as whole seconds rounded up (leaseArg), expired by the keeper once the
 * script's whole-second clock is past it, looked at every KEEPER_POLL_SECONDS.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { gatewayNodePort } from '../../charts/gateway.ts';
import { type FakeLab, KEEPER_POLL_SECONDS, startFakeLab } from '../../lab/kube/__fixtures__/pod-lab.ts';
import { KIND_CONFIG_ENV } from '../../lab/kube/kind-config.ts';
import { leaseArg, type SidecarStatus } from '../../lab/kube/kube-target.ts';
import { REPO_ROOT } from '../../lab/local/state.ts';
import { DEFAULT_TIMING } from '../../lab/runner/run.ts';
import { BACKENDS, STRATEGIES } from '../../services/topology.ts';

const BIN = path.join(REPO_ROOT, 'bin', 'chaos-lab.js');

/** The lease the CLI's runner gives the sidecar, in seconds (`--for 10s`). */
const LEASE_SECONDS = Number.parseInt(leaseArg(DEFAULT_TIMING.leaseMs), 10);
/**
 * After the kill, the last lease written runs out within LEASE_SECONDS; the keeper removes it
 * once `date +%s` is past it (up to 1 s more) at its next look (up to a poll more). The rest is
 * slack for a machine whose two cores are busy.
 */
const GONE_WITHIN_MS = (LEASE_SECONDS + 1 + KEEPER_POLL_SECONDS) * 1000 + 3_000;

// The fault phase is far longer than the test: the runner is killed while it is on, and must be.
const EXPERIMENT = `
name: kind-killed
description: netem latency on coin on the kind target; the runner is killed during the fault
load: { rate: 5, endpoint: video }
phases:
  - { name: baseline, duration: 1s }
  - name: fault
    duration: 2m
    faults:
      - { kind: latency, service: coin, delay: 200ms, jitter: 10ms, injector: netem }
  - { name: recovery, duration: 1s }
`;

let lab: FakeLab;
let dir: string;
let runner: ChildProcess | undefined;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'run-kind-killed-'));
  lab = await startFakeLab({ leaseKeepers: true });
});

afterAll(async () => {
  // A runner the test did not get to kill (a failure before it) must not outlive the test.
  if (runner?.pid !== undefined) killGroup(runner.pid);
  await lab?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A kind configuration whose gateway NodePorts map to where the fixture's real gateways listen. */
function writeKindConfig(file: string): void {
  const extraPortMappings = STRATEGIES.map((strategy) => {
    const url = new URL(lab.gateways[strategy]);
    return {
      containerPort: gatewayNodePort(strategy),
      hostPort: Number(url.port),
      listenAddress: url.hostname,
    };
  });
  writeFileSync(
    file,
    stringify({
      kind: 'Cluster',
      apiVersion: 'kind.x-k8s.io/v1alpha4',
      name: 'chaos-lab',
      nodes: [{ role: 'control-plane', extraPortMappings }],
    }),
  );
}

async function status(pod: string): Promise<SidecarStatus> {
  const run = await lab.lab.sidecar(pod, ['status']);
  if (run.exitCode !== 0)
    throw new Error(`fault-sidecar status in ${pod} exited ${run.exitCode}: ${run.stderr}`);
  return JSON.parse(run.stdout) as SidecarStatus;
}

/** Polls `check` until it holds, for at most `ms`; `what` (read at the end) says what was awaited and what was seen. */
async function until(
  what: string | (() => string),
  ms: number,
  check: () => Promise<boolean> | boolean,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${ms} ms waiting for ${typeof what === 'string' ? what : what()}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Whether any process of the group is alive (the runner leads its own group: detached). */
function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw err;
  }
}

function killGroup(pgid: number): void {
  try {
    process.kill(-pgid, 'SIGKILL');
  } catch {
    // Gone already.
  }
}

const applied = (pod: string) =>
  lab.fake.execs.some((e) => e.pod === pod && e.command[0] === 'fault-sidecar' && e.command[1] === 'apply');

describe('a runner killed during a netem fault on the kind target', () => {
  it('leaves the qdisc only until the lease runs out: the keeper in each pod removes it', async () => {
    const experiment = path.join(dir, 'kind-killed.yaml');
    writeFileSync(experiment, EXPERIMENT);
    const kindConfig = path.join(dir, 'kind-cluster.yaml');
    writeKindConfig(kindConfig);
    const kubeconfig = await lab.fake.kubeconfig(path.join(dir, 'kubeconfig'));
    const coin = lab.podsOf('coin');
    expect(coin.length).toBeGreaterThan(0);
    expect(lab.lab.keepersRunning().sort()).toEqual(BACKENDS.flatMap((b) => lab.podsOf(b)).sort());

    let output = '';
    const child = spawn(
      process.execPath,
      [BIN, 'run', experiment, '--target', 'kind', '--no-live', '--out', path.join(dir, 'out')],
      {
        cwd: REPO_ROOT,
        env: {
          ...process.env,
          CHAOS_LAB_HOME: path.join(dir, 'home'),
          KUBECONFIG: kubeconfig,
          [KIND_CONFIG_ENV]: kindConfig,
        },
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    runner = child;
    child.stdout?.setEncoding('utf8').on('data', (t: string) => {
      output += t;
    });
    child.stderr?.setEncoding('utf8').on('data', (t: string) => {
      output += t;
    });
    const exited = new Promise<NodeJS.Signals | number | null>((resolve) =>
      child.once('exit', (code, signal) => resolve(signal ?? code)),
    );
    let exitedEarly = false;
    void exited.then(() => {
      exitedEarly = true;
    });

    // The fault phase is on once every coin pod's sidecar was asked to apply and the qdisc is in.
    await until('the runner to apply the latency fault in every coin pod', 25_000, async () => {
      if (exitedEarly) throw new Error(`the runner exited before the fault phase:\n${output}`);
      if (!coin.every(applied)) return false;
      const now = await Promise.all(coin.map(status));
      return now.every((s) => s.netemQdisc);
    });
    expect(output).toContain('gateways at');
    for (const strategy of STRATEGIES) expect(output).toContain(lab.gateways[strategy]);

    const pid = child.pid as number;
    process.kill(pid, 'SIGKILL');
    const killedAt = Date.now();
    expect(await exited).toBe('SIGKILL');
    // Nothing of the runner is left: not it, and nothing it started in its process group.
    await until('every process of the runner to be gone', 5_000, () => !groupAlive(pid));
    runner = undefined;

    // Right after the kill the fault is still in: the lease has not run out.
    const after = await Promise.all(coin.map(status));
    for (const s of after) {
      expect(s.netemQdisc, JSON.stringify(s)).toBe(true);
      expect(s.lease?.netem).toBe('delay 200ms 10ms');
      expect(s.lease?.remainingSeconds).toBeGreaterThan(0);
      expect(s.lease?.remainingSeconds).toBeLessThanOrEqual(LEASE_SECONDS);
    }
    const execsAtKill = lab.fake.execs.length;

    // Within the lease and the keeper's look, every pod is clean: no qdisc, no lease.
    const expiresAt = new Map(coin.map((pod, i) => [pod, after[i]?.lease?.expiresAt ?? 0]));
    const goneAt = new Map<string, number>();
    let left: string[] = [];
    const pods = BACKENDS.flatMap((b) => lab.podsOf(b));
    await until(
      () =>
        `every pod's fault and lease to be gone (lease ${LEASE_SECONDS} s); still there: ${left.join('; ')}\n${pods.map((p) => `${p} keeper: ${lab.lab.keeperLog(p) || '(no output)'}`).join('\n')}`,
      GONE_WITHIN_MS,
      async () => {
        const now = await Promise.all(pods.map(status));
        left = now.flatMap((s, i) =>
          s.netemQdisc || s.lease !== null ? [`${pods[i]}: ${JSON.stringify(s)}`] : [],
        );
        now.forEach((s, i) => {
          const pod = pods[i] as string;
          if (s.lease && s.lease.expiresAt > (expiresAt.get(pod) ?? 0)) expiresAt.set(pod, s.lease.expiresAt);
          if (!s.netemQdisc && s.lease === null && !goneAt.has(pod)) goneAt.set(pod, Date.now());
        });
        return now.every((s) => !s.netemQdisc && s.lease === null);
      },
    );
    expect(Date.now() - killedAt).toBeLessThanOrEqual(GONE_WITHIN_MS);

    for (const pod of coin) {
      // The keeper removed it, when the lease had run out and not before.
      expect(lab.lab.keeperLog(pod)).toContain('lease expired: removing netem delay 200ms 10ms from eth0');
      expect(goneAt.get(pod)).toBeGreaterThanOrEqual((expiresAt.get(pod) ?? 0) * 1000);
      expect(lab.lab.tcCalls(pod)).toContain('qdisc del dev eth0 root');
      // The runner never cleared it: no `clear` reached the pod.
      const asked = lab.fake.execs.filter((e) => e.pod === pod).map((e) => e.command[1]);
      expect(asked).toContain('apply');
      expect(asked).not.toContain('clear');
    }
    // No one else touched the sidecars after the kill (the statuses above are not execs).
    expect(lab.fake.execs.length).toBe(execsAtKill);
    // The keepers go on running: they are the pods' main processes, not the runner's.
    expect(lab.lab.keepersRunning().sort()).toEqual(pods.sort());
  });

  it('the CLI reads the gateways from the kind configuration CHAOS_LAB_KIND_CONFIG names, and says which file it could not read', async () => {
    const kubeconfig = await lab.fake.kubeconfig(path.join(dir, 'kubeconfig-missing'));
    const missing = path.join(dir, 'no-such-kind.yaml');
    const run = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        [
          BIN,
          'run',
          'weak-dependency-latency',
          '--target',
          'kind',
          '--no-live',
          '--out',
          path.join(dir, 'out2'),
        ],
        {
          cwd: REPO_ROOT,
          env: {
            ...process.env,
            CHAOS_LAB_HOME: path.join(dir, 'home'),
            KUBECONFIG: kubeconfig,
            [KIND_CONFIG_ENV]: missing,
          },
          timeout: 30_000,
        },
        (error, _stdout, stderr) => resolve({ code: error ? (error.code as number) : 0, stderr }),
      );
    });
    expect(run.code, run.stderr).toBe(1);
    expect(run.stderr).toContain(`cannot read the kind configuration ${missing}`);
  });
});
