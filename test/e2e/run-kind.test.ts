/**
 * `chaos-lab run --target kind` as far as this machine allows (no Docker, no cluster): a whole run
 * of a short experiment through the Kubernetes target against the fake API server, with real
 * backends behind the pods' port-forwards, the real fault-sidecar script answering the execs (tc
 * stood in for: this kernel has no sch_netem) and real gateways under the runner's load; and the
 * CLI itself, pointed by KUBECONFIG at a cluster without the lab.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCommand } from '../../lab/commands/run.ts';
import type { Io } from '../../lab/io.ts';
import { type FakeLab, startFakeLab } from '../../lab/kube/__fixtures__/pod-lab.ts';
import { createKubeTarget } from '../../lab/kube/kube-target.ts';
import { REPO_ROOT } from '../../lab/local/state.ts';
import type { RunResult } from '../../lab/runner/result.ts';
import { startFakeApiServer } from '../fake-kube/fake-api-server.ts';

const BIN = path.join(REPO_ROOT, 'bin', 'chaos-lab.js');

/** The real CLI, with the kubeconfig given (helpers.ts's cli() keeps the test's environment). */
function cliWithKubeconfig(
  home: string,
  kubeconfig: string,
  args: readonly string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      {
        cwd: REPO_ROOT,
        env: { ...process.env, CHAOS_LAB_HOME: home, KUBECONFIG: kubeconfig },
        timeout: 60_000,
      },
      (error, stdout, stderr) => {
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr });
      },
    );
  });
}

let lab: FakeLab;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'run-kind-'));
  lab = await startFakeLab();
});

afterAll(async () => {
  await lab?.close();
  rmSync(dir, { recursive: true, force: true });
});

const EXPERIMENT = `
name: kind-short
description: netem latency on coin and every vip call failing, on the kind target
load: { rate: 10, endpoint: video }
phases:
  - { name: baseline, duration: 3s }
  - name: fault
    duration: 5s
    faults:
      - { kind: latency, service: coin, delay: 300ms, jitter: 10ms, injector: netem }
      - { kind: http-error, service: vip, status: 503, percent: 100 }
  - { name: recovery, duration: 2s }
claims:
  - { gateway: parallel, phase: fault, expect: { successRate: "<= 0.2" } }
  - { gateway: resilient, phase: fault, expect: { successRate: ">= 0.9" } }
`;

describe('chaos-lab run --target kind', () => {
  it('runs an experiment on the cluster: faults through the sidecars and agents, claims held, nothing left', async () => {
    const file = path.join(dir, 'kind-short.yaml');
    writeFileSync(file, EXPERIMENT);
    let stdout = '';
    let stderr = '';
    const io: Io = {
      stdout: (t) => {
        stdout += t;
      },
      stderr: (t) => {
        stderr += t;
      },
      env: { CHAOS_LAB_HOME: path.join(dir, 'home') },
    };
    const out = path.join(dir, 'out');
    const code = await runCommand(
      io,
      file,
      { out, target: 'kind' },
      {
        isTTY: false,
        createTarget: async (name, options) => {
          expect(name).toBe('kind');
          return createKubeTarget({ ...options, cluster: lab.cluster, gatewayUrls: lab.gateways });
        },
      },
    );
    expect(stderr).toBe('');
    expect(code, stdout).toBe(0);
    expect(stdout).toContain('using the lab in namespace chaos-lab of context kind-chaos-lab');
    expect(stdout).toContain('audit: no fault left in the lab');

    const [runDir] = readdirSync(out);
    const result = JSON.parse(
      readFileSync(path.join(out, runDir as string, 'result.json'), 'utf8'),
    ) as RunResult;
    expect(result.target).toBe('kind');
    expect(result.status).toBe('completed');
    expect(result.leftoverFaults).toEqual([]);
    const faults = result.runs[0]?.phases.find((p) => p.name === 'fault')?.faults ?? [];
    expect(faults.map((f) => [f.kind, f.injector, f.instances])).toEqual([
      ['latency', 'tc-netem', lab.podsOf('coin')],
      ['http-error', 'fault-agent', lab.podsOf('vip')],
    ]);
    // The netem lease was applied, renewed while the phase ran, and cleared at its end.
    const coin = lab.podsOf('coin')[0] as string;
    const commands = lab.fake.execs.filter((e) => e.pod === coin).map((e) => e.command.slice(1, 2)[0]);
    expect(commands).toEqual(expect.arrayContaining(['apply', 'renew', 'clear', 'status']));
    expect(commands.indexOf('apply')).toBeLessThan(commands.indexOf('renew'));
    expect(commands.lastIndexOf('renew')).toBeLessThan(commands.lastIndexOf('clear'));
    // The agents' own figures calibrate http-error, read once the leases are on: every vip call
    // answered since failed, but for one or two in flight at the reading (the load does not stop).
    const errors = result.calibration.find((c) => c.kind === 'http-error');
    expect(errors?.observed.errorRate).toBeGreaterThan(0.97);
    expect(errors?.observed.errorRate).toBeLessThanOrEqual(1);
    // Latency is calibrated from the gateways' side, whatever shaped it: here the tc stand-in shaped
    // nothing, and the figure is what the gateways saw, not the 300 ms configured.
    const slow = result.calibration.find((c) => c.kind === 'latency');
    expect(slow?.observed.samples).toBeGreaterThan(0);
    expect(slow?.observed).toHaveProperty('addedLatencyMs');
    expect(result.verdict).toBe('held');
  });

  it('the CLI refuses --context without --target kind, and names the contexts there are for an unknown one', async () => {
    const empty = await startFakeApiServer();
    try {
      const kubeconfig = await empty.kubeconfig(path.join(dir, 'contexts-kubeconfig'));
      const home = path.join(dir, 'cli-home');
      const local = await cliWithKubeconfig(home, kubeconfig, ['run', 'tour', '--context', 'kind-chaos-lab']);
      expect(local.code, local.stderr).toBe(2);
      expect(local.stderr).toContain('chaos-lab: --context applies to --target kind only');
      const unknown = await cliWithKubeconfig(home, kubeconfig, [
        'run',
        'weak-dependency-errors',
        '--target',
        'kind',
        '--context',
        'kind-other',
        '--no-live',
      ]);
      expect(unknown.code, unknown.stderr).toBe(1);
      expect(unknown.stderr).toContain('has no context "kind-other" (contexts there: kind-chaos-lab)');
    } finally {
      await empty.close();
    }
  });

  it('the CLI says to deploy the lab first when the cluster has none, and exits 1', async () => {
    const empty = await startFakeApiServer();
    try {
      const kubeconfig = await empty.kubeconfig(path.join(dir, 'empty-kubeconfig'));
      const home = path.join(dir, 'cli-home');
      const run = await cliWithKubeconfig(home, kubeconfig, [
        'run',
        'weak-dependency-errors',
        '--target',
        'kind',
        '--no-live',
      ]);
      expect(run.code, run.stderr).toBe(1);
      expect(run.stderr).toContain(
        'the lab is not deployed in namespace chaos-lab of context kind-chaos-lab: deploy it first with npx chaos-lab up --target kind',
      );
    } finally {
      await empty.close();
    }
  });
});
