/**
 * The k6 scripts and the k6 driver with the real k6 binary (no fake k6) against a real local lab: each
 * script run on its own as the README shows, a broken SLO making k6 exit 99, `chaos-lab run --driver k6`
 * writing result.json, k6 never outliving a runner killed with SIGKILL, and the two drivers agreeing at
 * baseline.
 *
 * k6 is found as the CLI finds it (CHAOS_LAB_K6, PATH, .tools/bin/k6 — `npm run tools:k6` builds it).
 * Without it this file is skipped with the reason printed, except in CI (`CI` set), where that is a failure.
 */
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RampDigest, VideoPageDigest } from '../../experiments/load/summary.ts';
import { findK6, type K6Binary } from '../../lab/load/k6-binary.ts';
import { pidAlive, REPO_ROOT } from '../../lab/local/state.ts';
import type { RunResult } from '../../lab/runner/result.ts';
import { backend } from '../../services/topology.ts';
import {
  cli,
  downAndCheck,
  eventually,
  freePortBase,
  makeHome,
  pidsOf,
  removeHome,
  upDetached,
} from './helpers.ts';

const found = await findK6().catch((error: Error) => error);
const missing = found instanceof Error ? found.message : undefined;
if (missing !== undefined && !process.env.CI) {
  console.warn(`test/e2e/k6.test.ts skipped: ${missing}`);
}

const BIN = path.join(REPO_ROOT, 'bin/chaos-lab.js');
/**
 * The latency the drivers' agreement test puts on account, and the request timeout of its load. How
 * close the two drivers' figures come is a difference of two noisy samples, so `npm run bench`
 * (`--only drivers`) measures it; the test asserts what the fault guarantees instead.
 */
const AGREEMENT = { delayMs: 150, timeoutMs: 2_000 } as const;

let home: string;
let base: number;
let gateways: Record<string, string>;
let seenPids: number[] = [];
let k6: K6Binary;

interface Exec {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** `k6 run …` as a user runs it, from the repository's root. */
function k6Run(args: readonly string[], timeoutMs = 60_000): Promise<Exec> {
  return new Promise((resolve) => {
    execFile(
      k6.path,
      ['run', '--no-usage-report', ...args],
      { cwd: REPO_ROOT, timeout: timeoutMs, maxBuffer: 16 << 20 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

function gatewaysEnv(names: readonly string[] = ['naive', 'parallel', 'resilient']): string {
  return `GATEWAYS=${names.map((name) => `${name}=${gateways[name]}`).join(',')}`;
}

/** What the resilient gateway's /metrics says it served of `dependency` from the stale cache. */
async function staleServes(dependency: string): Promise<number> {
  const text = await (await fetch(`${gateways.resilient}/metrics`)).text();
  return text
    .split('\n')
    .filter(
      (l) => l.startsWith('gateway_cache_stale_serves_total{') && l.includes(`dependency="${dependency}"`),
    )
    .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}

function experiment(name: string, lines: readonly string[]): string {
  const file = path.join(home, `${name}.yaml`);
  writeFileSync(file, [`name: ${name}`, `description: ${name} for the k6 tests`, ...lines, ''].join('\n'));
  return file;
}

function resultOf(out: string): RunResult {
  const dirs = readdirSync(out);
  expect(dirs).toHaveLength(1);
  return JSON.parse(readFileSync(path.join(out, dirs[0] as string, 'result.json'), 'utf8')) as RunResult;
}

/** Pids of k6 processes driving this test's lab (their command line names its gateways). */
function k6Pids(): number[] {
  try {
    return execFileSync('pgrep', ['-f', `GATEWAYS=naive=${gateways.naive}`], { encoding: 'utf8' })
      .split('\n')
      .filter(Boolean)
      .map(Number);
  } catch {
    return []; // pgrep exits 1 when nothing matches
  }
}

describe.skipIf(missing !== undefined && !process.env.CI)('k6 against a real local lab', () => {
  beforeAll(async () => {
    if (missing !== undefined) throw new Error(`CI is set, so k6 must be there: ${missing}`);
    k6 = found as K6Binary;
    home = makeHome();
    base = await freePortBase();
    const status = await upDetached(home, base, ['--log-level', 'warn']);
    seenPids = pidsOf(status);
    gateways = status.gateways;
  });

  afterAll(async () => {
    if (!home) return;
    const down = await downAndCheck(home, seenPids);
    removeHome(home);
    expect(down.survivors).toEqual([]);
    expect(k6Pids()).toEqual([]);
  });

  it(`finds k6 v2`, () => {
    expect(k6.version).toMatch(/^v2\./);
  });

  it('video-page.ts on its own: exit 0 at baseline, and a JSON summary per gateway with its checks', async () => {
    const summary = path.join(home, 'video-page.json');
    const run = await k6Run([
      '-e',
      gatewaysEnv(),
      '-e',
      'RATE=10',
      '-e',
      'DURATION=5s',
      '-e',
      `SUMMARY=${summary}`,
      'experiments/load/video-page.ts',
    ]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain('video page · 10 rps to each gateway');
    expect(run.stdout).toMatch(
      /\n {2}GATEWAY +SENT +RPS +SUCCESS +DEGRADED +P50 +P95 +P99 +MAX +ERRORS +SLO\n/,
    );
    expect(run.stdout).toContain('SLO held by every gateway');
    const digest = JSON.parse(readFileSync(summary, 'utf8')) as VideoPageDigest & {
      k6: { metrics: Record<string, unknown> };
    };
    expect(Object.keys(digest.gateways)).toEqual(['naive', 'parallel', 'resilient']);
    for (const [name, g] of Object.entries(digest.gateways)) {
      expect(g.sent, name).toBeGreaterThanOrEqual(40);
      expect(g.pages, name).toBe(g.sent);
      expect(g.checks['status is 200']?.passes, name).toBe(g.pages);
      expect(g.slo.ok, name).toBe(true);
      expect(g.latencyMs?.p50, name).toBeGreaterThan(0);
      // Tagged per gateway in k6's own data too.
      expect(digest.k6.metrics).toHaveProperty(`page_duration{gateway:${name}}`);
    }
    expect(digest.sloHeld).toBe(true);
  });

  it('a gateway breaking the SLO makes k6 exit 99, and the summary says which', async () => {
    const fault = await cli(home, [
      'fault',
      'add',
      'http-error',
      'like',
      '--status',
      '503',
      '--percent',
      '100',
      '--for',
      '30s',
    ]);
    expect(fault.code, fault.stderr).toBe(0);
    try {
      // Like answers the earlier tests cached turn stale after its TTL: from then on, every like the
      // resilient gateway serves is a stale one, counted.
      await new Promise((resolve) => setTimeout(resolve, backend('like').cacheTtlMs + 100));
      const staleBefore = await staleServes('like');
      const summary = path.join(home, 'broken.json');
      const run = await k6Run([
        '-e',
        gatewaysEnv(),
        '-e',
        'RATE=10',
        '-e',
        'DURATION=3s',
        '-e',
        `SUMMARY=${summary}`,
        'experiments/load/video-page.ts',
      ]);
      expect(run.code, run.stderr.slice(-2_000)).toBe(99);
      expect(run.stdout).toContain('SLO broken: k6 exits 99');
      const digest = JSON.parse(readFileSync(summary, 'utf8')) as VideoPageDigest;
      // Naive and parallel fail the page with like; resilient serves it without like (degraded).
      expect(digest.gateways.naive?.slo.successRate.ok).toBe(false);
      expect(digest.gateways.parallel?.slo.successRate.ok).toBe(false);
      expect(digest.gateways.resilient?.slo.ok).toBe(true);
      // Every resilient page is served: without like (degraded), or — for a video the earlier tests
      // asked for within the cache's staleness limit — with a stale like, which the page does not
      // flag. So the complete pages are exactly the stale serves.
      const resilient = digest.gateways.resilient as NonNullable<typeof digest.gateways.resilient>;
      expect(resilient.successRate).toBe(1);
      expect(resilient.classes.degraded).toBeGreaterThan(0);
      expect(resilient.checks['page complete']?.fails).toBe(resilient.classes.degraded);
      expect(resilient.classes.ok ?? 0).toBe((await staleServes('like')) - staleBefore);
    } finally {
      await cli(home, ['fault', 'clear']);
    }
  });

  it('video-page-ramp.ts on its own: steps judged against the SLO, the knee named, exit 0', async () => {
    const summary = path.join(home, 'ramp.json');
    const run = await k6Run([
      '-e',
      gatewaysEnv(['resilient']),
      '-e',
      'START_RPS=10',
      '-e',
      'STEP_RPS=10',
      '-e',
      'STEPS=2',
      '-e',
      'STEP_DURATION=2s',
      '-e',
      `SUMMARY=${summary}`,
      'experiments/load/video-page-ramp.ts',
    ]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain('video page ramp · steps of 2s at 10, 20 rps');
    expect(run.stdout).toMatch(/knee: /);
    const digest = JSON.parse(readFileSync(summary, 'utf8')) as RampDigest;
    expect(digest.rates).toEqual([10, 20]);
    const steps = digest.gateways.resilient?.steps ?? [];
    expect(steps.map((s) => s.rate)).toEqual([10, 20]);
    // Two seconds per step, give or take a request at the boundaries.
    expect(steps[0]?.sent).toBeGreaterThanOrEqual(15);
    expect(steps[1]?.sent).toBeGreaterThanOrEqual(35);
    expect(steps[1]?.sent).toBeGreaterThan(steps[0]?.sent ?? 0);
  });

  it('chaos-lab run --driver k6: result.json from k6’s samples, and no k6 left', async () => {
    const file = experiment('k6-driver', [
      'load: { rate: 10, endpoint: video }',
      'phases:',
      '  - { name: baseline, duration: 4s }',
      '  - name: fault',
      '    duration: 4s',
      '    faults: [{ kind: http-error, service: like, status: 503, percent: 100 }]',
      'claims:',
      '  - { gateway: resilient, phase: fault, expect: { successRate: ">= 0.99" } }',
    ]);
    const out = path.join(home, 'results-k6');
    const run = await cli(home, ['run', file, '--driver', 'k6', '--out', out]);
    expect(run.stderr).not.toMatch(/the run failed/);
    expect(run.stdout).toContain(`load driver: k6 ${k6.version}`);
    expect(run.stdout).toContain(`measured by k6 ${k6.version} (latency from the actual send)`);
    const result = resultOf(out);
    expect(result).toMatchObject({ driver: 'k6', k6Version: k6.version, status: 'completed' });
    const [variant] = result.runs;
    const [baseline, fault] = variant?.phases ?? [];
    for (const gateway of ['naive', 'parallel', 'resilient'] as const) {
      const calm = baseline?.gateways[gateway];
      // 10 rps for the 4 s the phase's window lasts, give or take the boundaries.
      expect(calm?.requests, gateway).toBeGreaterThanOrEqual(30);
      expect(calm?.requests, gateway).toBeLessThanOrEqual(50);
      expect(calm?.successRate, gateway).toBe(1);
      expect(calm?.latencyMs?.p50, gateway).toBeGreaterThan(0);
      expect(calm?.latencyMs?.p99, gateway).toBeGreaterThanOrEqual(calm?.latencyMs?.p50 ?? 0);
      expect(calm?.fellBehind, gateway).toBe(false);
    }
    expect(Object.keys(fault?.gateways.naive?.errors ?? {})).toContain('5xx:503');
    expect(fault?.gateways.resilient?.successRate).toBe(1);
    // Without like, or with its answer from the cache while it lasts.
    expect(fault?.gateways.resilient?.degradedRate).toBeGreaterThan(0.5);
    // The per-second series: warm-up and both phases, every second with k6's rate in it.
    const series = variant?.timeseries ?? [];
    expect(series.length).toBeGreaterThanOrEqual(10);
    const busy = series.filter((point) => (point.gateways.resilient?.rps ?? 0) >= 8);
    expect(busy.length).toBeGreaterThanOrEqual(8);
    expect(result.claims[0]?.holds).toBe(true);
    expect(run.code).toBe(0);
    expect(k6Pids()).toEqual([]);
  });

  it('k6 does not outlive a runner killed with SIGKILL', async () => {
    const file = experiment('k6-sigkill', [
      'load: { rate: 5, endpoint: video }',
      'phases:',
      '  - { name: long, duration: 60s }',
    ]);
    const runner: ChildProcess = spawn(
      process.execPath,
      [BIN, 'run', file, '--driver', 'k6', '--out', path.join(home, 'results-kill')],
      {
        cwd: REPO_ROOT,
        env: { ...process.env, CHAOS_LAB_HOME: home },
        stdio: 'ignore',
      },
    );
    try {
      const [pid] = await eventually(
        'k6 to be driving the lab',
        () => {
          const pids = k6Pids();
          return pids.length > 0 ? pids : undefined;
        },
        30_000,
      );
      runner.kill('SIGKILL');
      await eventually('k6 to be gone', () => (k6Pids().length === 0 ? true : undefined), 10_000);
      // Gone, or a zombie waiting for whoever adopted it to reap it: not running either way.
      expect(pidAlive(pid as number)).toBe(false);
    } finally {
      runner.kill('SIGKILL');
    }
  });

  it(`the two drivers see the same fault: with ${AGREEMENT.delayMs} ms on account, every naive page waits for it in both`, async () => {
    // Naive asks account for every page and waits for it, without a deadline: each of its pages took
    // at least the delay, measured from the send by either driver, and none took longer than the
    // request timeout, or it would be an error (a summary has no minimum: its median stands for
    // the lower bound). A driver that lost its units, timed something else
    // than the send-to-answer, or missed requests fails here; how close the two drivers come at
    // baseline is a figure of `npm run bench -- --only drivers`.
    const file = experiment('agreement', [
      `load: { rate: 10, endpoint: video, timeout: ${AGREEMENT.timeoutMs}ms }`,
      'gateways: [naive]',
      'phases:',
      '  - name: slow',
      '    duration: 5s',
      `    faults: [{ kind: latency, service: account, delay: ${AGREEMENT.delayMs}ms }]`,
    ]);
    const figures: Record<string, unknown> = {};
    for (const driver of ['builtin', 'k6']) {
      const out = path.join(home, `results-agreement-${driver}`);
      const run = await cli(home, ['run', file, '--driver', driver, '--out', out]);
      expect(run.code, `${driver}: ${run.stderr}`).toBe(0);
      const stats = resultOf(out).runs[0]?.phases[0]?.gateways.naive;
      figures[driver] = { requests: stats?.requests, latencyMs: stats?.latencyMs };
      expect(stats?.fellBehind, driver).toBe(false);
      // 10 rps for the 5 s of the phase, give or take the boundaries.
      expect(stats?.requests, driver).toBeGreaterThanOrEqual(40);
      expect(stats?.requests, driver).toBeLessThanOrEqual(60);
      expect(stats?.successRate, driver).toBe(1);
      expect(stats?.latencyMs?.p50, driver).toBeGreaterThanOrEqual(AGREEMENT.delayMs);
      expect(stats?.latencyMs?.max, driver).toBeLessThanOrEqual(AGREEMENT.timeoutMs);
    }
    console.info(
      `the two drivers with ${AGREEMENT.delayMs} ms on account (this machine, now): ${JSON.stringify(figures)}`,
    );
  });
});
