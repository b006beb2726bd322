/**
 * `npm run bench`: the lab's speed figures on this machine, printed and written to
 * `results/bench.json`. Tests check behaviour; this is where speed is measured.
 *
 * - the load generator's achieved rate against the asked one, step by step, and its ceiling
 *   (the highest asked rate it kept up with) against a trivial server in another process;
 * - the fault proxy's own added latency at p50/p99, with no fault in force;
 * - the resilient gateway's baseline p50/p99 at the catalog's rate, on a real local lab;
 * - the two load drivers (built-in and k6) on one real lab at baseline: p50/p99 of each and the differences
 *   (skipped, and said so, when k6 is not installed).
 *
 * Options: `--quick` (shorter steps, for a smoke run), `--out FILE`.
 */

import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Pool } from 'undici';
import { measureProxyOverhead, type ProxyOverhead } from '../../services/fault-proxy/overhead.ts';
import { STRATEGIES } from '../../services/topology.ts';
import { ensureLabBuild } from '../build/lab-build.ts';
import { ENDPOINT_PATHS } from '../load/endpoints.ts';
import { createLoadGenerator, type TargetStats } from '../load/generator.ts';
import { findK6 } from '../load/k6-binary.ts';
import { createK6Generator } from '../load/k6-driver.ts';
import { findFreePortBase } from '../local/port-check.ts';
import { cpuSeconds, cpuShareOver, type LabMemory, labMemory } from './lab-figures.ts';
import { measureOverload, ONSET_MS, type OverloadFigures, type OverloadRun } from './overload.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CLI = join(ROOT, 'bin/chaos-lab.js');
const run = promisify(execFile);

/** The rate the catalog's experiments drive each gateway at. */
export const CATALOG_RATE = 30;

/** The bench's parts, in the order they run; `--only` picks some. */
const PARTS = ['generator', 'proxy', 'lab', 'overload', 'gateway', 'drivers'] as const;
type Part = (typeof PARTS)[number];

interface Args {
  readonly quick: boolean;
  readonly out: string;
  readonly only: ReadonlySet<Part>;
}

class UsageError extends Error {}

function parseArgs(argv: readonly string[]): Args {
  let quick = false;
  let out = join(ROOT, 'results/bench.json');
  let only = new Set<Part>(PARTS);
  const usage = `expected --quick, --out FILE or --only PART[,PART…] (parts: ${PARTS.join(', ')})`;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--quick') quick = true;
    else if (arg === '--out' && argv[i + 1]) out = argv[++i] as string;
    else if (arg === '--only' && argv[i + 1]) {
      const names = (argv[++i] as string).split(',');
      const unknown = names.filter((n) => !(PARTS as readonly string[]).includes(n));
      if (unknown.length > 0) throw new UsageError(`--only: unknown part ${unknown.join(', ')}: ${usage}`);
      only = new Set(names as Part[]);
    } else throw new UsageError(`unknown argument ${JSON.stringify(arg)}: ${usage}`);
  }
  return { quick, out, only };
}

const log = (line: string) => process.stdout.write(`${line}\n`);

/** A server that answers every request at once, in its own process so it does not share the generator's loop. */
async function startTrivialServer(): Promise<{ url: string; stop(): void }> {
  const source = `
    const http = require('node:http');
    const server = http.createServer((req, res) => { res.setHeader('content-type', 'application/json'); res.end('{}'); });
    server.keepAliveTimeout = 10000;
    server.listen(0, '127.0.0.1', () => process.send(server.address().port));
    process.on('disconnect', () => process.exit(0));`;
  const child: ChildProcess = spawn(process.execPath, ['-e', source], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (message) => resolve(Number(message)));
    child.once('exit', (code) => reject(new Error(`trivial server exited with ${code}`)));
  });
  return { url: `http://127.0.0.1:${port}`, stop: () => child.kill('SIGTERM') };
}

interface RateStep {
  readonly askedRps: number;
  readonly achievedRps: number;
  readonly p50Ms: number | null;
  readonly p99Ms: number | null;
  readonly late: number;
  readonly dropped: number;
  readonly fellBehind: boolean;
}

async function drive(url: string, rate: number, seconds: number): Promise<TargetStats> {
  const gen = createLoadGenerator({
    targets: [{ name: 'target', url }],
    rate,
    path: () => '/',
    timeoutMs: 2_000,
  });
  gen.start('warmup');
  await sleep(500);
  gen.mark('measure');
  await sleep(seconds * 1_000);
  const summary = await gen.stop();
  const window = summary.windows.find((w) => w.name === 'measure');
  const stats = window?.targets.target;
  if (!stats) throw new Error('the generator recorded no measurement window');
  return stats;
}

/** `ceilingRps` is the highest asked rate kept up with; `reached` says whether a higher one failed. */
async function generatorCeiling(
  quick: boolean,
): Promise<{ steps: RateStep[]; ceilingRps: number; reached: boolean }> {
  const server = await startTrivialServer();
  const steps: RateStep[] = [];
  try {
    for (const askedRps of quick ? [100, 500, 1_000] : [100, 250, 500, 1_000, 2_000, 4_000, 6_000, 8_000]) {
      const stats = await drive(server.url, askedRps, quick ? 2 : 4);
      const step: RateStep = {
        askedRps,
        achievedRps: round(stats.achievedRps),
        p50Ms: stats.latencyMs ? round(stats.latencyMs.p50) : null,
        p99Ms: stats.latencyMs ? round(stats.latencyMs.p99) : null,
        late: stats.late,
        dropped: stats.dropped,
        fellBehind: stats.fellBehind,
      };
      steps.push(step);
      log(
        `  generator asked ${askedRps} rps → achieved ${step.achievedRps} rps, p50 ${step.p50Ms} ms, p99 ${step.p99Ms} ms, late ${step.late}, dropped ${step.dropped}${step.fellBehind ? '  FELL BEHIND' : ''}`,
      );
      if (step.fellBehind) break;
    }
  } finally {
    server.stop();
  }
  const keptUp = (s: RateStep) => !s.fellBehind && s.achievedRps >= 0.95 * s.askedRps;
  const kept = steps.filter(keptUp);
  return { steps, ceilingRps: kept.at(-1)?.askedRps ?? 0, reached: steps.some((s) => !keptUp(s)) };
}

interface LabHandle {
  readonly gateways: Record<string, string>;
  /** The supervisor: every process of the lab is under it. */
  readonly pid: number;
  /** How long `chaos-lab up --detach` took, until it returned with the lab ready. */
  readonly upSeconds: number;
}

/**
 * Starts a local lab of its own (as a user would: `up --detach`, the default log level), hands `fn`
 * its gateways and supervisor, and always stops the lab.
 */
async function withLab<T>(fn: (lab: LabHandle) => Promise<T>): Promise<T> {
  const home = mkdtempSync(join(tmpdir(), 'chaos-lab-bench-'));
  const env = { ...process.env, CHAOS_LAB_HOME: home };
  const portBase = await findFreePortBase();
  log(`  starting a local lab (port base ${portBase}) …`);
  const began = performance.now();
  await run(process.execPath, [CLI, 'up', '--detach', '--port-base', String(portBase)], {
    env,
    timeout: 120_000,
  });
  const upSeconds = round((performance.now() - began) / 1_000);
  try {
    const { stdout } = await run(process.execPath, [CLI, 'status', '--json'], { env });
    const status = JSON.parse(stdout) as { gateways: Record<string, string>; pid: number };
    return await fn({ gateways: status.gateways, pid: status.pid, upSeconds });
  } finally {
    await run(process.execPath, [CLI, 'down'], { env, timeout: 60_000 }).catch((err: Error) =>
      log(`  warning: chaos-lab down failed: ${err.message}`),
    );
    rmSync(home, { recursive: true, force: true });
  }
}

async function resilientBaseline(quick: boolean): Promise<{ rate: number; seconds: number; stats: object }> {
  return withLab(async ({ gateways }) => {
    const url = gateways.resilient;
    if (!url) throw new Error('the lab reported no resilient gateway');
    const seconds = quick ? 5 : 20;
    const gen = createLoadGenerator({
      targets: [{ name: 'resilient', url }],
      rate: CATALOG_RATE,
      path: ENDPOINT_PATHS.video,
    });
    gen.start('warmup');
    await sleep(2_000);
    gen.mark('measure');
    await sleep(seconds * 1_000);
    const summary = await gen.stop();
    const stats = summary.windows.find((w) => w.name === 'measure')?.targets.resilient;
    if (!stats) throw new Error('no measurement window');
    const figures = {
      requests: stats.requests,
      achievedRps: round(stats.achievedRps),
      successRate: stats.successRate,
      degradedRate: stats.degradedRate,
      p50Ms: stats.latencyMs ? round(stats.latencyMs.p50) : null,
      p99Ms: stats.latencyMs ? round(stats.latencyMs.p99) : null,
      fellBehind: stats.fellBehind,
    };
    log(
      `  resilient at ${CATALOG_RATE} rps for ${seconds}s: p50 ${figures.p50Ms} ms, p99 ${figures.p99Ms} ms, success ${figures.successRate}`,
    );
    return { rate: CATALOG_RATE, seconds, stats: figures };
  });
}

interface DriverFigures {
  readonly requests: number;
  readonly achievedRps: number;
  readonly successRate: number | null;
  readonly p50Ms: number | null;
  readonly p99Ms: number | null;
  readonly fellBehind: boolean;
}

/**
 * The built-in generator and k6 (experiments/load/video-page.ts, as `--driver k6` runs it) on the same lab
 * at baseline: p50 and p99 per gateway, and the differences (k6 minus built-in). Two set-ups:
 *   - `threeGateways`: as a run drives them, the three gateways at once at the catalog's rate;
 *   - `resilientOnly`: the resilient gateway alone, so the built-in generator's habit of sending to every
 *     gateway at the same instant (three fan-outs hitting the same backends together) plays no part.
 * Each set-up runs builtin, k6, k6, builtin after an unmeasured warm-up, so neither driver always meets the
 * colder lab; a driver's figure is the mean of its two runs. k6 measures from the actual send, the built-in
 * generator from the intended send time.
 */
async function driverAgreement(quick: boolean): Promise<object> {
  const k6 = await findK6().catch((error: Error) => error);
  if (k6 instanceof Error) {
    log(`  skipped: ${k6.message}`);
    return { skipped: k6.message };
  }
  const seconds = quick ? 5 : 20;
  return withLab(async ({ gateways }) => {
    const targetsOf = (names: readonly string[]) =>
      names.map((name) => ({ name, url: gateways[name] as string }));
    const measure = async (
      driver: 'builtin' | 'k6',
      names: readonly string[],
      measuredSeconds: number,
    ): Promise<Record<string, DriverFigures>> => {
      const options = {
        targets: targetsOf(names),
        rate: CATALOG_RATE,
        path: ENDPOINT_PATHS.video,
        timeoutMs: 2_000,
      };
      const gen =
        driver === 'builtin'
          ? createLoadGenerator(options)
          : createK6Generator({ ...options, k6, plannedDurationMs: (measuredSeconds + 3) * 1_000 });
      gen.start('warmup');
      // k6 takes about half a second to send its first request; the warm-up covers it.
      await sleep(3_000);
      gen.mark('measure');
      await sleep(measuredSeconds * 1_000);
      const summary = await gen.stop();
      const window = summary.windows.find((w) => w.name === 'measure');
      if (!window) throw new Error(`the ${driver} driver recorded no measurement window`);
      return Object.fromEntries(
        names.map((name) => {
          const stats = window.targets[name] as TargetStats;
          return [
            name,
            {
              requests: stats.requests,
              achievedRps: round(stats.achievedRps),
              successRate: stats.successRate,
              p50Ms: stats.latencyMs ? round(stats.latencyMs.p50) : null,
              p99Ms: stats.latencyMs ? round(stats.latencyMs.p99) : null,
              fellBehind: stats.fellBehind,
            },
          ];
        }),
      );
    };
    const mean = (runs: readonly Record<string, DriverFigures>[], name: string) => {
      const of = (pick: (f: DriverFigures) => number | null) => {
        const values = runs.map((r) => (r[name] ? pick(r[name]) : null));
        return values.some((v) => v === null)
          ? null
          : round((values as number[]).reduce((a, b) => a + b, 0) / values.length);
      };
      return {
        p50Ms: of((f) => f.p50Ms),
        p99Ms: of((f) => f.p99Ms),
        fellBehind: runs.some((r) => r[name]?.fellBehind),
      };
    };
    await measure('builtin', STRATEGIES, quick ? 2 : 5);
    const setups = { threeGateways: STRATEGIES, resilientOnly: ['resilient'] } as const;
    const results: Record<string, object> = {};
    for (const [setup, names] of Object.entries(setups)) {
      log(`  ${setup}: builtin, k6, k6, builtin — ${seconds}s measured each`);
      const b1 = await measure('builtin', names, seconds);
      const k1 = await measure('k6', names, seconds);
      const k2 = await measure('k6', names, seconds);
      const b2 = await measure('builtin', names, seconds);
      const perGateway = Object.fromEntries(
        names.map((name) => {
          const a = mean([b1, b2], name);
          const b = mean([k1, k2], name);
          const diff = (x: number | null, y: number | null) =>
            x === null || y === null ? null : round(y - x);
          const d = { p50Ms: diff(a.p50Ms, b.p50Ms), p99Ms: diff(a.p99Ms, b.p99Ms) };
          log(
            `    ${name.padEnd(9)} builtin p50 ${a.p50Ms} ms p99 ${a.p99Ms} ms · k6 p50 ${b.p50Ms} ms p99 ${b.p99Ms} ms · k6 − builtin p50 ${d.p50Ms} ms p99 ${d.p99Ms} ms${a.fellBehind || b.fellBehind ? '  FELL BEHIND' : ''}`,
          );
          return [name, { builtin: a, k6: b, difference: d }];
        }),
      );
      results[setup] = { runs: { builtin: [b1, b2], k6: [k1, k2] }, perGateway };
    }
    return { rate: CATALOG_RATE, seconds, k6Version: k6.version, ...results };
  });
}

/**
 * Issue 14's figures, measured on this kind of machine (two cores) before the lab was made light:
 * the bench prints and writes today's beside them.
 */
export const BEFORE_LIGHT_LAB = {
  upSeconds: 24.5,
  idleCpuShareOfCore: 0.59,
  rssMiB: 2_560,
  processes: 24,
  cpuPerPageMs: 15,
  proxyAddedP99Ms: 2.27,
} as const;

/** What issue 14 asks of the lab on two cores. */
export const LIGHT_LAB_TARGETS = {
  upSeconds: 5,
  idleCpuShareOfCore: 0.03,
  memoryMiB: 700,
  cpuPerPageMs: 4,
  proxyAddedP99Ms: 1,
} as const;

/**
 * What the lab costs: the first build of its processes, `up` until ready, the CPU it uses idle and
 * per page, and its memory (at rest and after load). CPU per page is the lab's CPU over a window of
 * steady load at the catalog's rate spread over the three gateways, less what it uses idle, over the
 * pages served: every hop counted (gateway, proxies, backends), the generator not.
 */
export interface LabCost {
  readonly firstBuildSeconds: number;
  readonly upSeconds: number;
  readonly idle: {
    readonly seconds: number;
    /** Over the first seconds after ready. */
    readonly justStartedShareOfCore: number;
    /** Once settled: what a lab left running costs. */
    readonly cpuShareOfCore: number;
    readonly memory: LabMemory;
  };
  /** Pages asked one after another (the "sequential load"): the lab's CPU over the pages. */
  readonly sequential: SequentialCost;
  readonly perPage: {
    readonly seconds: number;
    readonly rate: number;
    readonly pages: number;
    readonly labCpuSeconds: number;
    readonly cpuPerPageMs: number | null;
  };
  readonly memoryAfterLoad: LabMemory;
}

export interface SequentialCost {
  readonly pages: number;
  readonly ok: number;
  readonly seconds: number;
  /**
   * The lab's CPU per page once warm: the median of the last three windows. A page costs its
   * processes more while V8 is still compiling their hot code, which takes thousands of pages.
   */
  readonly cpuPerPageMs: number;
  /** Pages in each window. */
  readonly windowPages: number;
  /** CPU per page in each window, in order: the first is a fresh lab's, warming up. */
  readonly windowsMs: readonly number[];
}

/**
 * CPU per page with one page asked at a time, round-robin over the three gateways: every process
 * of the lab counted, the bench's client not. Measured in `windows` windows of `windowPages` pages
 * after a short warm-up (connections made), so the figures show the lab warming up as V8 compiles
 * its hot code, and the last ones what a page costs a warm lab. Bounded by the pages asked.
 */
async function cpuPerSequentialPage(
  pid: number,
  gateways: Record<string, string>,
  windowPages: number,
  windows: number,
): Promise<SequentialCost> {
  const pools = STRATEGIES.map((name) => new Pool(gateways[name] as string, { connections: 1 }));
  const ask = async (i: number): Promise<boolean> => {
    const res = await (pools[i % pools.length] as Pool).request({
      method: 'GET',
      path: `/api/video/${1 + (i % 50)}`,
      headersTimeout: 5_000,
      bodyTimeout: 5_000,
    });
    await res.body.dump();
    return res.statusCode === 200;
  };
  try {
    for (let i = 0; i < Math.min(300, windowPages); i++) await ask(i);
    const began = performance.now();
    const windowsMs: number[] = [];
    let ok = 0;
    for (let w = 0; w < windows; w++) {
      const before = cpuSeconds(pid);
      for (let i = 0; i < windowPages; i++) if (await ask(i)) ok++;
      windowsMs.push(round(((cpuSeconds(pid) - before) / windowPages) * 1_000));
    }
    return {
      pages: windowPages * windows,
      ok,
      seconds: round((performance.now() - began) / 1_000),
      cpuPerPageMs: median(windowsMs.slice(-3)),
      windowPages,
      windowsMs,
    };
  } finally {
    await Promise.all(pools.map((p) => p.close()));
  }
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : round(((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2);
}

async function labCost(quick: boolean): Promise<LabCost> {
  const scratch = mkdtempSync(join(tmpdir(), 'chaos-lab-bench-build-'));
  let firstBuildSeconds: number;
  try {
    const cold = await ensureLabBuild({ buildRoot: scratch });
    firstBuildSeconds = round(cold.tookMs / 1_000);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  log(`  first build of the lab's processes (once per change of the sources): ${firstBuildSeconds} s`);
  await ensureLabBuild();
  return withLab(async ({ gateways, pid, upSeconds }) => {
    log(`  up until ready: ${upSeconds} s`);
    const idleSeconds = quick ? 5 : 20;
    // Just started (connections made, code compiled on first use), then settled: what a lab
    // left running costs.
    const justStarted = await cpuShareOver(pid, idleSeconds);
    await sleep(quick ? 5_000 : 20_000);
    const idleCpu = await cpuShareOver(pid, idleSeconds);
    const atRest = labMemory(pid);
    log(
      `  idle: ${(justStarted * 100).toFixed(2)}% of a core over the ${idleSeconds}s after ready, ${(idleCpu * 100).toFixed(2)}% over ${idleSeconds}s once settled · ${atRest.processes} processes, RSS ${atRest.rssMiB} MiB (summed), PSS ${atRest.pssMiB} MiB`,
    );
    const sequential = await cpuPerSequentialPage(pid, gateways, quick ? 300 : 1_000, quick ? 3 : 12);
    log(
      `  ${sequential.pages} pages one after another over the three gateways (${sequential.ok} ok), CPU per page of every process of the lab in windows of ${sequential.windowPages}: ${sequential.windowsMs.join(', ')} ms → ${sequential.cpuPerPageMs} ms once warm (the last three's median)`,
    );
    const seconds = quick ? 5 : 20;
    const gen = createLoadGenerator({
      targets: STRATEGIES.map((name) => ({ name, url: gateways[name] as string })),
      rate: CATALOG_RATE / STRATEGIES.length,
      path: ENDPOINT_PATHS.video,
      timeoutMs: 2_000,
    });
    gen.start('warmup');
    await sleep(3_000);
    gen.mark('measure');
    const cpuBefore = cpuSeconds(pid);
    const began = performance.now();
    await sleep(seconds * 1_000);
    const cpuAfter = cpuSeconds(pid);
    const elapsed = (performance.now() - began) / 1_000;
    const summary = await gen.stop();
    const window = summary.windows.find((w) => w.name === 'measure');
    const pages = Object.values(window?.targets ?? {}).reduce((sum, t) => sum + t.requests, 0);
    const loadCpu = cpuAfter - cpuBefore;
    const cpuPerPageMs = pages > 0 ? round(((loadCpu - idleCpu * elapsed) / pages) * 1_000) : null;
    const afterLoad = labMemory(pid);
    log(
      `  ${pages} pages over ${round(elapsed)}s (${CATALOG_RATE} rps over the three gateways): the lab used ${round(loadCpu)} CPU s → ${cpuPerPageMs} ms of CPU per page · after the load RSS ${afterLoad.rssMiB} MiB, PSS ${afterLoad.pssMiB} MiB`,
    );
    return {
      firstBuildSeconds,
      upSeconds,
      idle: {
        seconds: idleSeconds,
        justStartedShareOfCore: justStarted,
        cpuShareOfCore: idleCpu,
        memory: atRest,
      },
      sequential,
      perPage: {
        seconds: round(elapsed),
        rate: CATALOG_RATE,
        pages,
        labCpuSeconds: round(loadCpu),
        cpuPerPageMs,
      },
      memoryAfterLoad: afterLoad,
    };
  });
}

/** Issue 14's overload targets: the resilient gateway's admitted pages and refusals at 5× capacity. */
function overloadRows(overload: OverloadFigures): LightLabRow[] {
  const resilient = overload.runs.find((r) => r.strategy === 'resilient');
  if (!resilient) return [];
  const at = `at ${overload.askedRps} rps (5× ${overload.capacity.rps})`;
  const okShare = resilient.admitted.successShare;
  const okPct = okShare === null ? null : round(okShare * 100);
  return [
    {
      figure: `resilient ${at}: admitted pages ok (%)`,
      before: null,
      now: okPct,
      target: '≥ 99',
      met: okPct !== null && okPct >= 99,
    },
    {
      figure: `resilient ${at}: admitted p99 (ms)`,
      before: null,
      now: resilient.admitted.p99Ms,
      target: `≤ ${overload.budgetMs} (its budget)`,
      met: resilient.admitted.p99Ms !== null && resilient.admitted.p99Ms <= overload.budgetMs,
    },
    {
      figure: `resilient ${at}: refusals p99 from send (ms), ${resilient.shed.count} shed`,
      before: null,
      now: resilient.shed.fromSendMs.p99,
      target: '≤ 5',
      met:
        resilient.shed.count > 0 &&
        resilient.shed.fromSendMs.p99 !== null &&
        resilient.shed.fromSendMs.p99 <= 5,
    },
    {
      figure: `resilient ${at}: refusals answered within 5 ms of being read, by its own histogram (%)`,
      before: null,
      now: resilient.refusedWithin.ms5 === null ? null : round(resilient.refusedWithin.ms5 * 100),
      target: 'none: the rest of a refusal is its wait to be read',
      met: null,
    },
    ...afterOnsetRows(resilient.afterOnset, at, overload.budgetMs),
    ...refusalFloorRows(overload.refusalFloor),
  ];
}

/** Load at a bare server refusing everything, once the onset is past: how fast a refusal can be on this machine. */
function refusalFloorRows(floor: OverloadFigures['refusalFloor']): LightLabRow[] {
  const target = "none: the floor under the gateway's refusals";
  const onset = `after the first ${ONSET_MS / 1_000} s`;
  const { idle, besideLab } = floor;
  return [
    {
      figure: `a bare node:http server refusing ${idle.askedRps} rps, the lab idle, ${onset}: p99 from send (ms)`,
      before: null,
      now: idle.afterOnset.fromSendMs.p99,
      target,
      met: null,
    },
    {
      figure: `the same refusing ${besideLab.askedRps} rps beside the lab serving ${besideLab.lab.askedRps} rps, ${onset}: p99 from send (ms)`,
      before: null,
      now: besideLab.afterOnset.fromSendMs.p99,
      target,
      met: null,
    },
  ];
}

/** The same targets once the overload stands: the requests meant to leave after its first second. */
function afterOnsetRows(after: OverloadRun['afterOnset'], at: string, budgetMs: number): LightLabRow[] {
  const okPct = after.admitted.successShare === null ? null : round(after.admitted.successShare * 100);
  const onset = `after the first ${ONSET_MS / 1_000} s`;
  return [
    {
      figure: `resilient ${at}, ${onset}: admitted pages ok (%)`,
      before: null,
      now: okPct,
      target: '≥ 99',
      met: okPct !== null && okPct >= 99,
    },
    {
      figure: `resilient ${at}, ${onset}: admitted p99 (ms)`,
      before: null,
      now: after.admitted.p99Ms,
      target: `≤ ${budgetMs} (its budget)`,
      met: after.admitted.p99Ms !== null && after.admitted.p99Ms <= budgetMs,
    },
    {
      figure: `resilient ${at}, ${onset}: refusals p99 from send (ms), ${after.shed.count} shed`,
      before: null,
      now: after.shed.fromSendMs.p99,
      target: '≤ 5',
      met: after.shed.count > 0 && after.shed.fromSendMs.p99 !== null && after.shed.fromSendMs.p99 <= 5,
    },
  ];
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const machine = {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryGiB: round(totalmem() / 2 ** 30),
  };
  log(
    `chaos-lab bench on ${machine.cpus} × ${machine.cpuModel}, ${machine.memoryGiB} GiB, node ${process.version}`,
  );

  const figures: Record<string, unknown> = {
    at: new Date().toISOString(),
    quick: args.quick,
    machine,
    node: process.version,
  };
  const want = (part: Part) => args.only.has(part);

  if (want('generator')) {
    log('load generator: achieved vs asked rate (open model, trivial server in another process)');
    const generator = await generatorCeiling(args.quick);
    log(
      generator.reached
        ? `  ceiling: ${generator.ceilingRps} rps`
        : `  ceiling: at least ${generator.ceilingRps} rps (the highest rate tried; it never fell behind)`,
    );
    figures.generator = generator;
  }

  let proxy: ProxyOverhead | undefined;
  if (want('proxy')) {
    log('fault proxy: added latency with no fault in force');
    proxy = await measureProxyOverhead({ requests: args.quick ? 300 : 5_000 });
    log(
      `  direct p50 ${proxy.direct.p50Ms} ms p99 ${proxy.direct.p99Ms} ms · proxied p50 ${proxy.proxied.p50Ms} ms p99 ${proxy.proxied.p99Ms} ms · added p50 ${proxy.addedMs.p50} ms p99 ${proxy.addedMs.p99} ms`,
    );
    figures.proxy = proxy;
  }

  let lab: LabCost | undefined;
  if (want('lab')) {
    log("the lab's cost: start, idle CPU, CPU per page, memory");
    lab = await labCost(args.quick);
    figures.lab = lab;
  }

  let overload: OverloadFigures | undefined;
  if (want('overload')) {
    log('the gateways at five times the resilient gateway’s capacity');
    overload = await measureOverload({ seconds: args.quick ? 5 : 10, log: (line) => log(`  ${line}`) });
    figures.overload = overload;
  }

  if (want('gateway')) {
    log('resilient gateway: baseline on a real local lab');
    figures.gateway = await resilientBaseline(args.quick);
  }

  if (want('drivers')) {
    log(
      `driver agreement: the built-in generator and k6 at ${CATALOG_RATE} rps to each gateway, at baseline`,
    );
    figures.drivers = await driverAgreement(args.quick);
  }

  const light = lightLabSummary({ proxy, lab, overload });
  if (light.length > 0) {
    log('');
    log('a light lab (issue 14): before · now · target');
    for (const row of light) {
      log(
        `  ${/^[≤≥]/.test(row.target) ? (row.met ? 'met ' : 'MISS') : '    '}  ${row.figure.padEnd(44)} ${String(row.before ?? '-').padStart(8)}  ${String(row.now ?? '-').padStart(8)}  ${row.target}`,
      );
    }
    log(`  the tour run ten times in a row: npm run bench:tours (writes results/bench-tours.json)`);
    figures.lightLab = { before: BEFORE_LIGHT_LAB, targets: LIGHT_LAB_TARGETS, rows: light };
  }

  mkdirSync(dirname(args.out), { recursive: true });
  writeFileSync(args.out, `${JSON.stringify(figures, null, 2)}\n`);
  log(`figures written to ${args.out}`);
}

export interface LightLabRow {
  readonly figure: string;
  readonly before: number | null;
  readonly now: number | null;
  /** As asked, e.g. "≤ 5". */
  readonly target: string;
  /** Null for a row that is a reference, not a target. */
  readonly met: boolean | null;
}

/** Today's figures beside issue 14's before-figures and targets. */
function lightLabSummary(of: {
  proxy?: ProxyOverhead;
  lab?: LabCost;
  overload?: OverloadFigures;
}): LightLabRow[] {
  const rows: LightLabRow[] = [];
  const atMost = (figure: string, before: number | null, now: number | null, target: number) =>
    rows.push({ figure, before, now, target: `≤ ${target}`, met: now !== null && now <= target });
  const { lab, proxy, overload } = of;
  if (lab) {
    atMost('up until ready (s)', BEFORE_LIGHT_LAB.upSeconds, lab.upSeconds, LIGHT_LAB_TARGETS.upSeconds);
    atMost(
      'idle lab CPU (% of one core)',
      BEFORE_LIGHT_LAB.idleCpuShareOfCore * 100,
      round(lab.idle.cpuShareOfCore * 100),
      LIGHT_LAB_TARGETS.idleCpuShareOfCore * 100,
    );
    atMost('lab memory after load, PSS (MiB)', null, lab.memoryAfterLoad.pssMiB, LIGHT_LAB_TARGETS.memoryMiB);
    rows.push({
      figure: 'lab memory after load, RSS summed (MiB)',
      before: BEFORE_LIGHT_LAB.rssMiB,
      now: lab.memoryAfterLoad.rssMiB,
      target: 'shared pages counted once per process: PSS is the lab’s share',
      met: null,
    });
    atMost(
      'CPU per page, sequential, every process, warm (ms)',
      BEFORE_LIGHT_LAB.cpuPerPageMs,
      lab.sequential.cpuPerPageMs,
      LIGHT_LAB_TARGETS.cpuPerPageMs,
    );
    rows.push({
      figure: `… while warming up: a fresh lab’s first window of ${lab.sequential.windowPages} pages (ms)`,
      before: null,
      now: lab.sequential.windowsMs[0] ?? null,
      target: 'for comparison: V8 still compiling the hot code',
      met: null,
    });
    rows.push({
      figure: `CPU per page at ${CATALOG_RATE} rps, less idle (ms)`,
      before: null,
      now: lab.perPage.cpuPerPageMs,
      target: 'for comparison: a page every 100 ms per gateway',
      met: null,
    });
  }
  if (proxy) {
    atMost(
      'fault proxy added latency p99 (ms)',
      BEFORE_LIGHT_LAB.proxyAddedP99Ms,
      proxy.addedMs.p99,
      LIGHT_LAB_TARGETS.proxyAddedP99Ms,
    );
  }
  if (overload) rows.push(...overloadRows(overload));
  return rows;
}

try {
  await main();
} catch (err) {
  if (!(err instanceof UsageError)) throw err;
  process.stderr.write(`bench: ${err.message}\n`);
  process.exitCode = 2;
}
