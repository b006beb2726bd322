/**
 * `npm run bench`: the lab's speed figures on this machine, printed and written to
 * `results/bench.json`. Tests check behaviour; this is where speed is measured.
 *
 * - the load generator's achieved rate against the asked one, step by step, and its ceiling
 *   (the highest asked rate it kept up with) against a trivial server in another process;
 * - the fault proxy's own added latency at p50/p99, with no fault in force;
 * - the resilient gateway's baseline p50/p99 at the catalog's rate, on a real local lab.
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
import { ENDPOINT_PATHS } from '../load/endpoints.ts';
import { createLoadGenerator, type TargetStats } from '../load/generator.ts';
import { findFreePortBase } from '../port-check.ts';

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

async function resilientBaseline(quick: boolean): Promise<{ rate: number; seconds: number; stats: object }> {
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
    const url = (JSON.parse(stdout) as { gateways: Record<string, string> }).gateways.resilient;
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
  } finally {
    await run(process.execPath, [CLI, 'down'], { env, timeout: 60_000 }).catch((err: Error) =>
      log(`  warning: chaos-lab down failed: ${err.message}`),
    );
    rmSync(home, { recursive: true, force: true });
  }
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

  const figures = {
    at: new Date().toISOString(),
    quick: args.quick,
    machine,
    node: process.version,
    generator,
    proxy,
    gateway,
  };
  mkdirSync(dirname(args.out), { recursive: true });
  writeFileSync(args.out, `${JSON.stringify(figures, null, 2)}\n`);
  log(`figures written to ${args.out}`);
}

await main();
