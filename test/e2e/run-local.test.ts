/**
 * `chaos-lab run` for real on the local lab: a short experiment whose numbers in result.json
 * must show what the lab is for, and the two ways a run can end early — Ctrl-C (rolled back
 * at once, exit 130, partial result) and SIGKILL (nothing rolls back; the leases run out and
 * the lab is clean again within their length).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../lab/local/state.ts';
import { escapeHtml } from '../../lab/report/html.ts';
import {
  alive,
  cli,
  controlStatus,
  downAndCheck,
  eventually,
  freePortBase,
  makeHome,
  pidsOf,
  removeHome,
  state,
  upDetached,
} from './helpers.ts';

const BIN = path.join(REPO_ROOT, 'bin/chaos-lab.js');

let home: string;
let seenPids: number[] = [];

beforeAll(async () => {
  home = makeHome();
  // One lab for the file: the runner uses a lab that is already up (and leaves it up).
  seenPids = pidsOf(await upDetached(home, await freePortBase(), ['--log-level', 'warn']));
});

afterAll(async () => {
  const down = await downAndCheck(home, seenPids);
  removeHome(home);
  expect(down.survivors).toEqual([]);
});

function experiment(name: string, faultSeconds: number): string {
  const file = path.join(home, `${name}.yaml`);
  writeFileSync(
    file,
    [
      `name: ${name}`,
      'description: a short latency experiment for the tests',
      'load: { rate: 15, endpoint: video }',
      'phases:',
      '  - { name: baseline, duration: 3s }',
      '  - name: fault',
      `    duration: ${faultSeconds}s`,
      '    faults:',
      '      - { kind: latency, service: coin, delay: 300ms }',
      '  - { name: recovery, duration: 3s }',
      'claims:',
      '  - { gateway: resilient, phase: fault, expect: { degradedRate: ">= 0.5" } }',
      '',
    ].join('\n'),
  );
  return file;
}

interface JournalLine {
  readonly type: string;
}

function runDir(out: string): string {
  const dirs = readdirSync(out);
  expect(dirs).toHaveLength(1);
  return path.join(out, dirs[0] as string);
}

function journal(dir: string): JournalLine[] {
  const file = path.join(dir, 'journal.jsonl');
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line.trim().length > 0)
    .map((line) => JSON.parse(line) as JournalLine);
}

async function activeFaults(): Promise<unknown[]> {
  const list = await cli(home, ['fault', 'list', '--json']);
  expect(list.code, list.stderr).toBe(0);
  return (JSON.parse(list.stdout) as { faults: unknown[] }).faults;
}

function startRun(file: string, out: string): ChildProcess {
  return spawn(process.execPath, [BIN, 'run', file, '--out', out], {
    cwd: REPO_ROOT,
    env: { ...process.env, CHAOS_LAB_HOME: home },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

function exitOf(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

async function untilFaultInjected(out: string): Promise<string> {
  return eventually(
    'the run to inject its fault',
    () => {
      if (!existsSync(out) || readdirSync(out).length === 0) return undefined;
      const dir = runDir(out);
      return journal(dir).some((line) => line.type === 'fault-injected') ? dir : undefined;
    },
    60_000,
  );
}

describe('chaos-lab run on the local lab', () => {
  it('runs a short experiment and writes numbers that show the fault, calibrated, with nothing left', async () => {
    const out = path.join(home, 'results-complete');
    const run = await cli(home, ['run', experiment('short-latency', 6), '--out', out], 100_000);
    expect([0, 1], run.stdout + run.stderr).toContain(run.code);
    const dir = runDir(out);
    const result = JSON.parse(readFileSync(path.join(dir, 'result.json'), 'utf8'));
    expect(result).toMatchObject({ status: 'completed', target: 'local', leftoverFaults: [] });
    expect(existsSync(path.join(dir, 'report.html'))).toBe(true);
    expect(journal(dir).at(-1)?.type).toBe('run-finished');

    const [baseline, fault] = result.runs[0].phases;
    expect(fault.faults[0]).toMatchObject({ kind: 'latency', service: 'coin', injector: 'fault-proxy' });
    // Naive waits for coin; resilient gives up on it at its deadline and degrades the page. (No
    // difference of two noisy latencies, no absolute speed: on a shared machine neither is what the
    // fault sets; a page that waited for coin is at least the delay, one that did not is not.)
    expect(fault.gateways.naive.latencyMs.p50).toBeGreaterThanOrEqual(280);
    expect(fault.gateways.resilient.latencyMs.p50).toBeLessThan(fault.gateways.naive.latencyMs.p50);
    expect(fault.gateways.resilient.degradedRate).toBeGreaterThan(0.5);
    expect(fault.gateways.resilient.successRate).toBeGreaterThan(0.9);
    expect(baseline.gateways.resilient.degradedRate).toBeLessThan(fault.gateways.resilient.degradedRate);

    const calibration = result.calibration.find((c: { kind: string }) => c.kind === 'latency');
    expect(calibration.configured.addedLatencyMs).toBe(300);
    expect(calibration.observed.addedLatencyMs).toBeGreaterThan(240);
    expect(calibration.observed.addedLatencyMs).toBeLessThan(400);
    expect(await activeFaults()).toEqual([]);
  });

  it('on Ctrl-C rolls back at once, writes the partial result and exits 130', async () => {
    const out = path.join(home, 'results-sigint');
    const child = startRun(experiment('interrupted', 60), out);
    const exited = exitOf(child);
    const dir = await untilFaultInjected(out);
    expect((await activeFaults()).length).toBeGreaterThan(0);
    child.kill('SIGINT');
    const { code } = await exited;
    expect(code).toBe(130);
    const result = JSON.parse(readFileSync(path.join(dir, 'result.json'), 'utf8'));
    expect(result).toMatchObject({ status: 'aborted', leftoverFaults: [] });
    expect(result.verdict).toBe('no-verdict');
    // Rolled back by the runner itself, long before the lease would have run out.
    expect(await activeFaults()).toEqual([]);
  });

  it('records a fault proxy killed mid-phase: the restart of every proxy, the faults put back by the renewal, and a warning', async () => {
    const out = path.join(home, 'results-proxy-restart');
    const child = startRun(experiment('proxy-restart', 10), out);
    let stdout = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    const exited = exitOf(child);
    let dir = '';
    try {
      dir = await untilFaultInjected(out);
      // As a crash would: SIGKILL through the supervisor, which restarts it after its back-off.
      const lab = state(home);
      const kill = await fetch(`${lab.controlUrl}/instances/coin-1-proxy/kill`, {
        method: 'POST',
        headers: { authorization: `Bearer ${lab.adminToken}` },
      });
      expect(kill.ok).toBe(true);
    } catch (err) {
      // A run left going would hold the lab from the next test.
      child.kill('SIGINT');
      await exited;
      throw err;
    }
    const { code } = await exited;
    // Its restart gave it a new pid: down must find that one gone too.
    seenPids.push(...pidsOf(await controlStatus(home)));
    expect([0, 1], stdout).toContain(code);

    const result = JSON.parse(readFileSync(path.join(dir, 'result.json'), 'utf8'));
    expect(result).toMatchObject({ status: 'completed', leftoverFaults: [] });
    const [baseline, fault, recovery] = result.runs[0].phases;
    expect(baseline.proxyRestarts).toEqual([]);
    expect(recovery.proxyRestarts).toEqual([]);
    // The proxies share one process: all ten restarted with it, coin's two with the fault on them.
    type Restart = { instance: string; restarts: number; faults: string; lastExitAt: string; note: string };
    const restarts = fault.proxyRestarts as Restart[];
    expect(restarts).toHaveLength(10);
    expect(restarts.every((r) => r.restarts === 1)).toBe(true);
    expect(restarts.filter((r) => r.faults !== 'none').map((r) => [r.instance, r.faults])).toEqual([
      ['coin-1', 'reapplied'],
      ['coin-2', 'reapplied'],
    ]);
    // The proxies lost the lease with their process; the renewal found it gone (201) and put it back.
    const back = (instance: string) => ({
      instance,
      injector: 'fault-proxy',
      id: expect.stringMatching(/-p1-f0$/),
      at: expect.any(String),
    });
    expect(fault.reapplied).toEqual(expect.arrayContaining([back('coin-1'), back('coin-2')]));
    expect(fault.reapplied).toHaveLength(2);
    const coin1 = restarts.find((r) => r.instance === 'coin-1') as Restart;
    expect(Date.parse(fault.reapplied[0].at)).toBeGreaterThan(Date.parse(coin1.lastExitAt));
    expect(stdout).toMatch(
      /warning: coin-1's fault proxy had lost \S+-p1-f0 \(its process restarted\): the lease renewal put it back/,
    );
    expect(stdout).toContain(`warning: phase "fault": ${coin1.note}`);
    expect(readFileSync(path.join(dir, 'report.html'), 'utf8')).toContain(escapeHtml(coin1.note));
    expect(await activeFaults()).toEqual([]);
  });

  it('killed with SIGKILL, leaves faults that expire with their lease: the lab is clean within it', async () => {
    const out = path.join(home, 'results-sigkill');
    const child = startRun(experiment('killed', 60), out);
    const exited = exitOf(child);
    await untilFaultInjected(out);
    child.kill('SIGKILL');
    await exited;
    expect(alive([child.pid as number])).toEqual([]);
    // Nobody removed it: the fault is there until its lease (10 s) runs out, then gone.
    expect((await activeFaults()).length).toBeGreaterThan(0);
    await eventually(
      'the killed run’s faults to expire',
      async () => ((await activeFaults()).length === 0 ? true : undefined),
      25_000,
      1_000,
    );
  });
});
