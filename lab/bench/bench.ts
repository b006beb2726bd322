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
import { measureProxyOverhead } from '../../services/fault-proxy/overhead.ts';
import { STRATEGIES } from '../../services/topology.ts';
import { ENDPOINT_PATHS } from '../load/endpoints.ts';
import { createLoadGenerator, type TargetStats } from '../load/generator.ts';
import { findK6 } from '../load/k6-binary.ts';
import { createK6Generator } from '../load/k6-driver.ts';
import { findFreePortBase } from '../local/port-check.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CLI = join(ROOT, 'bin/chaos-lab.js');
const run = promisify(execFile);

/** The rate the catalog's experiments drive each gateway at. */
export const CATALOG_RATE = 30;

interface Args {
  readonly quick: boolean;
  readonly out: string;
}

function parseArgs(argv: readonly string[]): Args {
  let quick = false;
  let out = join(ROOT, 'results/bench.json');
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--quick') quick = true;
    else if (arg === '--out' && argv[i + 1]) out = argv[++i] as string;
    else throw new Error(`unknown argument ${JSON.stringify(arg)}: expected --quick or --out FILE`);
  }
  return { quick, out };
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

/** Starts a local lab of its own, hands `fn` the gateways' URLs, and always stops the lab. */
async function withLab<T>(fn: (gateways: Record<string, string>) => Promise<T>): Promise<T> {
  const home = mkdtempSync(join(tmpdir(), 'chaos-lab-bench-'));
  const env = { ...process.env, CHAOS_LAB_HOME: home };
  const portBase = await findFreePortBase();
  log(`  starting a local lab (port base ${portBase}) …`);
  await run(
    process.execPath,
    [CLI, 'up', '--detach', '--port-base', String(portBase), '--log-level', 'warn'],
    {
      env,
      timeout: 120_000,
    },
  );
  try {
    const { stdout } = await run(process.execPath, [CLI, 'status', '--json'], { env });
    return await fn((JSON.parse(stdout) as { gateways: Record<string, string> }).gateways);
  } finally {
    await run(process.execPath, [CLI, 'down'], { env, timeout: 60_000 }).catch((err: Error) =>
      log(`  warning: chaos-lab down failed: ${err.message}`),
    );
    rmSync(home, { recursive: true, force: true });
  }
}

async function resilientBaseline(quick: boolean): Promise<{ rate: number; seconds: number; stats: object }> {
  return withLab(async (gateways) => {
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
  return withLab(async (gateways) => {
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

  log('load generator: achieved vs asked rate (open model, trivial server in another process)');
  const generator = await generatorCeiling(args.quick);
  log(
    generator.reached
      ? `  ceiling: ${generator.ceilingRps} rps`
      : `  ceiling: at least ${generator.ceilingRps} rps (the highest rate tried; it never fell behind)`,
  );

  log('fault proxy: added latency with no fault in force');
  const proxy = await measureProxyOverhead({ requests: args.quick ? 300 : 2_000 });
  log(
    `  direct p50 ${proxy.direct.p50Ms} ms p99 ${proxy.direct.p99Ms} ms · proxied p50 ${proxy.proxied.p50Ms} ms p99 ${proxy.proxied.p99Ms} ms · added p50 ${proxy.addedMs.p50} ms p99 ${proxy.addedMs.p99} ms`,
  );

  log('resilient gateway: baseline on a real local lab');
  const gateway = await resilientBaseline(args.quick);

  log(`driver agreement: the built-in generator and k6 at ${CATALOG_RATE} rps to each gateway, at baseline`);
  const drivers = await driverAgreement(args.quick);

  const figures = {
    at: new Date().toISOString(),
    quick: args.quick,
    machine,
    node: process.version,
    generator,
    proxy,
    gateway,
    drivers,
  };
  mkdirSync(dirname(args.out), { recursive: true });
  writeFileSync(args.out, `${JSON.stringify(figures, null, 2)}\n`);
  log(`figures written to ${args.out}`);
}

await main();
