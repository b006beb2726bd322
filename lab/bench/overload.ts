/**
 * The gateways under more load than the machine can serve: a real local lab, the resilient gateway's
 * capacity found step by step, then that rate times `multiple` (5 by default) for a few seconds at the
 * resilient gateway, and the same asked rate at the naive one for contrast. Each request is classed by
 * what the client saw: shed (503 OVERLOADED, a refusal it can act on at once) or admitted (anything else:
 * a page, an error, a timeout, a reset), with latencies from the intended send time (open model, so a
 * late generator hides nothing), the gateway's RSS before and after, and its shed counter by cause.
 * Before the gateways, the same load goes to a bare server that refuses everything: the floor under
 * a refusal's latency on this machine.
 *
 * Figures, not verdicts: speed on a shared two-core machine is measured here, never asserted in tests.
 *
 * `node --import tsx lab/bench/overload.ts [--port-base N] [--seconds S] [--multiple M] [--capacity RPS]
 * [--json]` prints them; `measureOverload(options)` returns them.
 */

import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Pool } from 'undici';
import { SERVICE_ENV } from '../../services/names.ts';
import { type Strategy, topology } from '../../services/topology.ts';
import { DURATION_BUCKET, VIDEO_ROUTE } from '../live/lab-feed.ts';
import { classifyResponse, type ResponseClass } from '../load/classify.ts';
import { ENDPOINT_PATHS } from '../load/endpoints.ts';
import { createLoadGenerator, type TargetStats } from '../load/generator.ts';
import type { SendRequest, SendResult, Transport } from '../load/http-transport.ts';
import { Tally } from '../load/tally.ts';
import { findFreePortBase } from '../local/port-check.ts';
import { parsePromText, type Sample } from '../prom-text.ts';
import { processCpuSeconds, processTree, runQueueSeconds } from './lab-figures.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CLI = join(ROOT, 'bin/chaos-lab.js');
const run = promisify(execFile);

export interface OverloadOptions {
  /** The overload is this many times the resilient gateway's capacity. @default 5 */
  readonly multiple?: number;
  /** How long each gateway is overloaded. @default 10 */
  readonly seconds?: number;
  /** Requests per overload run at most; fewer seconds are driven when the rate would send more. @default 30000 */
  readonly maxRequests?: number;
  /** A client gives up on a request after this long (a `timeout`). @default 2000 */
  readonly timeoutMs?: number;
  /** Skips the capacity search and takes this rate as the resilient gateway's capacity. @default measured */
  readonly capacityRps?: number;
  /** The asked rates of the capacity search, lowest first; it stops at the first one not kept up with. */
  readonly capacitySteps?: readonly number[];
  /** Gateways overloaded, in this order, each alone. @default resilient, then naive */
  readonly strategies?: readonly Strategy[];
  /** The lab's first port. @default a free range, as the bench finds one */
  readonly portBase?: number;
  /**
   * The lab's processes on the first CPU and this one (the load generator) on the others, so the
   * generator never competes with what it measures: at five times the lab's capacity, sharing two
   * cores, it would be the bottleneck itself. Needs Linux, `taskset` and at least two CPUs; else
   * nothing is pinned, and the run says so.
   * @default true
   */
  readonly pin?: boolean;
  /** Extra environment for the lab's processes (the gateways' tuning knobs pass through). @default none */
  readonly env?: Readonly<Record<string, string>>;
  /** Progress lines. @default none */
  readonly log?: (line: string) => void;
}

export interface LatencyFigures {
  readonly count: number;
  /** From the intended send time: what a client of an open-model load waited. */
  readonly p50Ms: number | null;
  readonly p99Ms: number | null;
  readonly maxMs: number | null;
  /** From the moment the request actually left: without the generator's own lateness. */
  readonly fromSendMs: { readonly p50: number | null; readonly p99: number | null };
}

export interface CapacityStep {
  readonly askedRps: number;
  readonly achievedRps: number;
  readonly successRate: number | null;
  readonly p99Ms: number | null;
  readonly fellBehind: boolean;
  readonly keptUp: boolean;
}

export interface OverloadRun {
  readonly strategy: Strategy;
  readonly askedRps: number;
  readonly seconds: number;
  /** Sends per second the generator achieved. */
  readonly achievedRps: number;
  /** Sends the generator could not make because its in-flight cap was full (it says so rather than wait). */
  readonly dropped: number;
  /** Share of sends more than 50 ms after their intended time: the generator's own lateness. */
  readonly lateShare: number;
  /** Everything but a refusal: pages, errors, timeouts and connection failures. */
  readonly admitted: LatencyFigures & {
    /** 2xx pages (complete or degraded) / admitted. */
    readonly successShare: number | null;
    readonly errors: Readonly<Record<string, number>>;
  };
  /** 503 OVERLOADED. */
  readonly shed: LatencyFigures;
  /**
   * The same, for the requests meant to leave after the first `ONSET_MS` only: the overload once
   * it stands, without its onset (every request of the first second opens a new connection, and
   * the gateway has not yet seen its loop run late for an interval).
   */
  readonly afterOnset: {
    readonly admitted: LatencyFigures & { readonly successShare: number | null };
    readonly shed: LatencyFigures;
  };
  readonly clientTimeouts: number;
  readonly rssMiB: {
    readonly before: number | null;
    readonly after: number | null;
    readonly peak: number | null;
  };
  /**
   * CPU time the gateway process used during the run, and per request that had an outcome; and
   * how long its main thread waited for a CPU meanwhile (what the lab's other processes held).
   */
  readonly gatewayCpu: {
    readonly seconds: number | null;
    readonly msPerRequest: number | null;
    readonly runQueueSeconds: number | null;
  };
  /**
   * CPU seconds each of the lab's processes used during the run, by instance id: where the lab's
   * CPU went, so that a run says which process was the bottleneck.
   */
  readonly labCpuSeconds: Readonly<Record<string, number>>;
  /** `gateway_shed_total` by cause, counted during the run. */
  readonly shedByCause: Readonly<Record<string, number>>;
  /**
   * The gateway's own time for its refusals (503 on the page route, from its request histogram):
   * the share answered within 1 ms and within 5 ms of reading the request. What a client waits
   * beyond that, the request waited before the gateway read it.
   */
  readonly refusedWithin: {
    readonly count: number;
    readonly ms1: number | null;
    readonly ms5: number | null;
  };
}

export interface OverloadFigures {
  /** The resilient gateway's page budget: what its admitted pages' p99 is held to. */
  readonly budgetMs: number;
  /** Whether the lab ran on a CPU of its own and the generator on the others (see `pin`). */
  readonly pinned: boolean;
  readonly capacity: {
    readonly rps: number;
    readonly measured: boolean;
    readonly steps: readonly CapacityStep[];
  };
  readonly askedRps: number;
  readonly runs: readonly OverloadRun[];
  /** Load at a bare server that refuses everything: the floor under a refusal's latency. */
  readonly refusalFloor: {
    /** The overload's rate, the lab idle. */
    readonly idle: RefusalFloor;
    /**
     * The overload's rate less the capacity, while the lab serves its capacity of pages at the
     * resilient gateway: a refuser in a process of its own, beside a busy lab on the same CPU.
     */
    readonly besideLab: RefusalFloor;
  };
}

/**
 * Load at a bare `node:http` server that answers every request 503 OVERLOADED at once and does
 * nothing else, on the lab's CPU: what the generator, the kernel and Node's HTTP alone take for a
 * refusal, measured as the gateway's are.
 */
export interface RefusalFloor {
  readonly askedRps: number;
  /** Pages asked of the resilient gateway meanwhile, and the share of them served (null: none asked). */
  readonly lab: { readonly askedRps: number; readonly successRate: number | null };
  readonly seconds: number;
  readonly achievedRps: number;
  readonly lateShare: number;
  readonly shed: LatencyFigures;
  readonly afterOnset: LatencyFigures;
  /** Anything but a refusal (a timeout, a failed connection): none when the floor holds. */
  readonly other: number;
}

const DEFAULT_STEPS = [25, 50, 75, 100, 150, 200, 300, 400, 600, 800, 1_200, 1_600];

export async function measureOverload(options: OverloadOptions = {}): Promise<OverloadFigures> {
  const log = options.log ?? (() => {});
  const multiple = options.multiple ?? 5;
  const timeoutMs = options.timeoutMs ?? 2_000;
  const budgetMs = Number(
    options.env?.[SERVICE_ENV.gatewayBudgetMs] ??
      process.env[SERVICE_ENV.gatewayBudgetMs] ??
      topology.gateway.defaultBudgetMs,
  );
  return withLab(options, log, async (lab) => {
    const resilientUrl = lab.gateways.resilient;
    if (!resilientUrl) throw new Error('the lab reported no resilient gateway');
    let steps: CapacityStep[] = [];
    let capacityRps = options.capacityRps;
    if (capacityRps === undefined) {
      log(
        `capacity of the resilient gateway (kept up: ≥ 99% pages, p99 ≤ ${budgetMs} ms, generator on time)`,
      );
      const measure = (rps: number) => steady(resilientUrl, rps, timeoutMs);
      ({ steps, capacityRps } = await findCapacity(measure, options.capacitySteps ?? DEFAULT_STEPS, {
        budgetMs,
        log,
      }));
      log(`  capacity: ${capacityRps} rps`);
    }
    const askedRps = Math.max(1, Math.round(capacityRps * multiple));
    const seconds = Math.min(options.seconds ?? 10, (options.maxRequests ?? 30_000) / askedRps);
    // First, before the gateways' runs: the naive gateway works through its backlog for seconds after its own.
    const floor = async (rps: number, labRps: number): Promise<RefusalFloor> => {
      await sleep(3_000);
      log(
        `a bare node:http server refusing everything: ${rps} rps for ${round(seconds)} s, ${labRps ? `the lab serving ${labRps} rps of pages meanwhile` : 'the lab idle'}`,
      );
      const figures = await measureRefusalFloor({
        askedRps: rps,
        seconds,
        timeoutMs,
        pinned: lab.pinned,
        ...(labRps ? { lab: { url: resilientUrl, rps: labRps } } : {}),
      });
      log(
        `  shed ${figures.shed.count} (other ${figures.other}): p50 ${figures.shed.fromSendMs.p50} ms, p99 ${figures.shed.fromSendMs.p99} ms from the send; after the first ${ONSET_MS / 1_000} s p99 ${figures.afterOnset.fromSendMs.p99} ms${labRps ? `; pages ${percent(figures.lab.successRate)} served` : ''}`,
      );
      return figures;
    };
    const refusalFloor = {
      idle: await floor(askedRps, 0),
      besideLab: await floor(Math.max(1, askedRps - capacityRps), capacityRps),
    };
    const runs: OverloadRun[] = [];
    for (const strategy of options.strategies ?? (['resilient', 'naive'] as const)) {
      const url = lab.gateways[strategy];
      const pid = lab.pids[`gateway-${strategy}`];
      if (!url || pid === undefined) throw new Error(`the lab reported no ${strategy} gateway`);
      await sleep(3_000); // what the previous run left in flight ends by its timeouts
      log(`${strategy}: ${askedRps} rps (${multiple}× capacity) for ${round(seconds)} s`);
      const figures = await overload({ strategy, url, pid, labPids: lab.pids, askedRps, seconds, timeoutMs });
      runs.push(figures);
      log(describeRun(figures, budgetMs));
    }
    return {
      budgetMs,
      pinned: lab.pinned,
      capacity: { rps: capacityRps, measured: options.capacityRps === undefined, steps },
      askedRps,
      runs,
      refusalFloor,
    };
  });
}

interface Lab {
  readonly gateways: Readonly<Record<string, string>>;
  /** By instance id (`gateway-resilient`); the supervisor and the fault proxies' host by what they run. */
  readonly pids: Readonly<Record<string, number>>;
  /** Whether the lab and the generator run on CPUs of their own. */
  readonly pinned: boolean;
}

/** Starts a local lab of its own (no live page), hands `fn` its gateways and pids, and always stops it. */
async function withLab<T>(
  options: OverloadOptions,
  log: (line: string) => void,
  fn: (lab: Lab) => Promise<T>,
): Promise<T> {
  const home = mkdtempSync(join(tmpdir(), 'chaos-lab-overload-'));
  const env = { ...process.env, ...options.env, CHAOS_LAB_HOME: home };
  const portBase = options.portBase ?? (await findFreePortBase());
  log(`starting a local lab (port base ${portBase}) …`);
  try {
    await run(
      process.execPath,
      [CLI, 'up', '--detach', '--no-live', '--port-base', String(portBase), '--log-level', 'warn'],
      { env, timeout: 120_000 },
    );
    const { stdout } = await run(process.execPath, [CLI, 'status', '--json'], { env });
    const status = JSON.parse(stdout) as {
      pid: number;
      gateways: Record<string, string>;
      instances: { id: string; pid: number | null }[];
    };
    const pids: Record<string, number> = Object.fromEntries(
      status.instances.flatMap((i) => (i.pid === null ? [] : [[i.id, i.pid] as const])),
    );
    // The processes that are no instance (the host of every fault proxy), by their entry point.
    const known = new Set(Object.values(pids));
    for (const pid of processTree(status.pid).filter((p) => p !== status.pid))
      if (!known.has(pid)) pids[scriptOf(pid) ?? `pid ${pid}`] = pid;
    pids.supervisor = status.pid;
    const unpin = options.pin === false ? undefined : await pinApart(status.pid, log);
    try {
      return await fn({ gateways: status.gateways, pids, pinned: unpin !== undefined });
    } finally {
      await unpin?.();
    }
  } finally {
    await run(process.execPath, [CLI, 'down'], { env, timeout: 60_000 }).catch((err: Error) =>
      log(`warning: chaos-lab down failed: ${err.message}`),
    );
    rmSync(home, { recursive: true, force: true });
  }
}

/**
 * Pins the supervisor and every process under it to CPU 0 (instances it restarts inherit it), and
 * this process to the other CPUs; returns how to give this process every CPU back.
 */
async function pinApart(
  supervisorPid: number,
  log: (line: string) => void,
): Promise<(() => Promise<void>) | undefined> {
  const count = cpus().length;
  if (count < 2) {
    log('not pinned: one CPU only (the generator shares it with the lab)');
    return undefined;
  }
  const taskset = (list: string, pid: number) => run('taskset', ['-a', '-p', '-c', list, String(pid)]);
  try {
    for (const pid of processTree(supervisorPid)) await taskset('0', pid);
    await taskset(`1-${count - 1}`, process.pid);
  } catch (err) {
    log(`not pinned: ${(err as Error).message.split('\n')[0]} (the generator shares the CPUs with the lab)`);
    return undefined;
  }
  log(`pinned: the lab on CPU 0, the load generator on CPU${count > 2 ? `s 1-${count - 1}` : ' 1'}`);
  return async () => {
    await taskset(`0-${count - 1}`, process.pid).catch(() => {});
  };
}

/** `fault-proxy/host-main`: the entry point a node process runs, from /proc; undefined when unknown. */
function scriptOf(pid: number): string | undefined {
  try {
    // The first argument that is not a Node flag (`--max-semi-space-size=2`).
    const script = readFileSync(`/proc/${pid}/cmdline`, 'utf8')
      .split('\0')
      .slice(1)
      .find((arg) => !arg.startsWith('-'));
    return script
      ?.split('/')
      .slice(-2)
      .join('/')
      .replace(/\.[cm]?[jt]s$/, '');
  } catch {
    return undefined;
  }
}

/**
 * @internal The capacity search: `rates` in order until one is not kept up with, then one step
 * between the last kept and that one when there is room. A rate not kept up with is measured
 * once more before the search stops there: one stall of a shared machine (a step at 75 rps once
 * came out 89% good, p99 322 ms, on a gateway that keeps up with 250) is not the gateway's
 * capacity, and the overload is five times whatever this finds.
 */
export async function findCapacity(
  measure: (
    rps: number,
  ) => Promise<Pick<TargetStats, 'achievedRps' | 'successRate' | 'fellBehind' | 'latencyMs'>>,
  rates: readonly number[],
  limits: {
    readonly budgetMs: number;
    readonly log: (line: string) => void;
    /** A pause after each step, so that one step's tail does not spill into the next. @default 1500 */
    readonly pauseMs?: number;
  },
): Promise<{ steps: CapacityStep[]; capacityRps: number }> {
  const steps: CapacityStep[] = [];
  const once = async (askedRps: number, again: boolean): Promise<CapacityStep> => {
    const stats = await measure(askedRps);
    const p99Ms = stats.latencyMs?.p99 ?? null;
    const keptUp =
      !stats.fellBehind &&
      (stats.successRate ?? 0) >= 0.99 &&
      p99Ms !== null &&
      p99Ms <= limits.budgetMs &&
      stats.achievedRps >= 0.95 * askedRps;
    const result = {
      askedRps,
      achievedRps: round(stats.achievedRps),
      successRate: stats.successRate,
      p99Ms,
      fellBehind: stats.fellBehind,
      keptUp,
    };
    steps.push(result);
    limits.log(
      `  ${askedRps} rps${again ? ' (again)' : ''} → success ${percent(result.successRate)}, p99 ${p99Ms} ms${result.fellBehind ? ', generator fell behind' : ''}: ${keptUp ? 'kept up' : 'did not'}`,
    );
    await sleep(limits.pauseMs ?? 1_500);
    return result;
  };
  const step = async (askedRps: number): Promise<boolean> =>
    (await once(askedRps, false)).keptUp || (await once(askedRps, true)).keptUp;
  let kept = 0;
  let failed: number | undefined;
  for (const rate of rates) {
    if (await step(rate)) kept = rate;
    else {
      failed = rate;
      break;
    }
  }
  // One more step between the last rate kept up with and the first one not, when there is room.
  if (failed !== undefined && kept > 0 && failed - kept >= 20) {
    const middle = Math.round((kept + failed) / 2);
    if (await step(middle)) kept = middle;
  }
  if (kept === 0)
    throw new Error(`the resilient gateway kept up with none of the rates tried (${rates.join(', ')} rps)`);
  return { steps, capacityRps: kept };
}

/** One rate for a second of warm-up and three measured ones. */
async function steady(url: string, rate: number, timeoutMs: number): Promise<TargetStats> {
  const gen = plainLoad(url, rate, timeoutMs);
  gen.start('warmup');
  await sleep(1_000);
  gen.mark('measure');
  await sleep(3_000);
  const summary = await gen.stop();
  const stats = summary.windows.find((w) => w.name === 'measure')?.targets.gateway;
  if (!stats) throw new Error('the generator recorded no measurement window');
  return stats;
}

async function overload(target: {
  readonly strategy: Strategy;
  readonly url: string;
  readonly pid: number;
  readonly labPids: Readonly<Record<string, number>>;
  readonly askedRps: number;
  readonly seconds: number;
  readonly timeoutMs: number;
}): Promise<OverloadRun> {
  const { askedRps, timeoutMs } = target;
  const before = rssOf(target.pid);
  const cpuBefore = processCpuSeconds(target.pid);
  const waitedBefore = runQueueSeconds(target.pid);
  const labCpuBefore = cpuByInstance(target.labPids);
  const scrapedBefore = await scrape(target.url);
  const shedBefore = shedByCause(scrapedBefore);
  const refusedBefore = refusalTimes(scrapedBefore);
  const { recorder, gen } = drive(target.strategy, target.url, askedRps, timeoutMs);
  let peakRss = before;
  const sampler = setInterval(() => {
    const rss = rssOf(target.pid);
    if (rss !== null && (peakRss === null || rss > peakRss)) peakRss = rss;
  }, 250);
  try {
    await sleep(target.seconds * 1_000);
    const summary = await gen.stop();
    const stats = summary.targets[target.strategy] as TargetStats;
    const after = rssOf(target.pid);
    const cpuAfter = processCpuSeconds(target.pid);
    const waitedAfter = runQueueSeconds(target.pid);
    const labCpuAfter = cpuByInstance(target.labPids);
    const cpuSeconds = cpuBefore === null || cpuAfter === null ? null : cpuAfter - cpuBefore;
    const outcomes = recorder.admitted.intended.requests + recorder.shed.intended.requests;
    const scrapedAfter = await scrape(target.url).catch(() => []);
    const shedAfter = shedByCause(scrapedAfter);
    const refusedAfter = refusalTimes(scrapedAfter);
    const refused = refusedAfter.count - refusedBefore.count;
    const refusedWithin = (le: string) =>
      refused > 0 ? round(((refusedAfter.le[le] ?? 0) - (refusedBefore.le[le] ?? 0)) / refused, 4) : null;
    const admitted = recorder.admitted.intended.stats();
    return {
      strategy: target.strategy,
      askedRps,
      seconds: round(target.seconds),
      achievedRps: round(stats.achievedRps),
      dropped: stats.dropped,
      lateShare: round(stats.lateShare, 4),
      admitted: {
        ...latencyOf(recorder.admitted),
        successShare: admitted.successRate === null ? null : round(admitted.successRate, 4),
        errors: admitted.errors,
      },
      shed: latencyOf(recorder.shed),
      afterOnset: {
        admitted: {
          ...latencyOf(recorder.afterOnset.admitted),
          successShare: successShareOf(recorder.afterOnset.admitted.intended),
        },
        shed: latencyOf(recorder.afterOnset.shed),
      },
      clientTimeouts: recorder.admitted.intended.count('timeout'),
      rssMiB: { before: mib(before), after: mib(after), peak: mib(peakRss) },
      gatewayCpu: {
        seconds: cpuSeconds === null ? null : round(cpuSeconds),
        msPerRequest:
          cpuSeconds === null || outcomes === 0 ? null : round((cpuSeconds * 1_000) / outcomes, 3),
        runQueueSeconds:
          waitedBefore === null || waitedAfter === null ? null : round(waitedAfter - waitedBefore),
      },
      labCpuSeconds: Object.fromEntries(
        Object.entries(labCpuAfter).flatMap(([id, after]) => {
          const cpuBefore = labCpuBefore[id];
          return cpuBefore === undefined ? [] : [[id, round(after - cpuBefore)]];
        }),
      ),
      shedByCause: Object.fromEntries(
        Object.entries(shedAfter).map(([cause, n]) => [cause, n - (shedBefore[cause] ?? 0)]),
      ),
      refusedWithin: { count: refused, ms1: refusedWithin('0.001'), ms5: refusedWithin('0.005') },
    };
  } finally {
    clearInterval(sampler);
  }
}

/** Requests in flight at once for `rate`: every one the timeout lets wait, and a few more. */
function roomFor(rate: number, timeoutMs: number): number {
  return Math.ceil((rate * timeoutMs) / 1000) + 8;
}

/** Pages at `rate` from one gateway, as target `gateway`, with room for every request the timeout lets wait. */
function plainLoad(url: string, rate: number, timeoutMs: number) {
  return createLoadGenerator({
    targets: [{ name: 'gateway', url }],
    rate,
    path: ENDPOINT_PATHS.video,
    timeoutMs,
    maxInFlight: roomFor(rate, timeoutMs),
  });
}

/** Starts the overload's load at `url`, each outcome recorded as shed or admitted. */
function drive(name: string, url: string, askedRps: number, timeoutMs: number) {
  const recorder = recordingTransport(url, askedRps, roomFor(askedRps, timeoutMs));
  const gen = createLoadGenerator({
    targets: [{ name, url }],
    rate: askedRps,
    path: ENDPOINT_PATHS.video,
    timeoutMs,
    maxInFlight: recorder.connections,
    transport: recorder.transport,
  });
  // The generator's schedule starts at its first clock reading, inside `start`; taken just before, every
  // intended time here is a little early, so a latency is never under-stated.
  recorder.startAt(performance.now());
  gen.start('overload');
  return { recorder, gen };
}

/** Refuses every request as the gateway's front door does, and nothing else; prints its port. */
const BARE_REFUSER = `
const body = JSON.stringify({ error: { status: 503, reason: 'OVERLOADED', message: 'a bare server refusing everything', metadata: {} } });
const server = require('node:http').createServer((req, res) => {
  res.writeHead(503, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
  res.end(body);
});
server.listen(0, '127.0.0.1', () => process.stdout.write(server.address().port + '\\n'));
process.stdin.on('end', () => process.exit(0)).resume();`;

async function measureRefusalFloor(target: {
  readonly askedRps: number;
  readonly seconds: number;
  readonly timeoutMs: number;
  readonly pinned: boolean;
  /** Pages asked of this gateway meanwhile. @default none */
  readonly lab?: { readonly url: string; readonly rps: number };
}): Promise<RefusalFloor> {
  // Its standard input is this process's pipe: it exits when this one does, however that ends.
  const child = spawn(process.execPath, ['-e', BARE_REFUSER], { stdio: ['pipe', 'pipe', 'inherit'] });
  let pages: ReturnType<typeof plainLoad> | undefined;
  try {
    const port = await new Promise<number>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code) => reject(new Error(`the bare refuser exited (${code}) before listening`)));
      child.stdout.once('data', (chunk: Buffer) => resolve(Number(chunk.toString().trim())));
    });
    if (target.pinned && child.pid !== undefined)
      await run('taskset', ['-a', '-p', '-c', '0', String(child.pid)]);
    pages = target.lab && plainLoad(target.lab.url, target.lab.rps, target.timeoutMs);
    pages?.start('pages');
    const { recorder, gen } = drive('floor', `http://127.0.0.1:${port}`, target.askedRps, target.timeoutMs);
    await sleep(target.seconds * 1_000);
    const stats = (await gen.stop()).targets.floor as TargetStats;
    const served = pages ? ((await pages.stop()).targets.gateway as TargetStats).successRate : null;
    pages = undefined;
    return {
      askedRps: target.askedRps,
      lab: { askedRps: target.lab?.rps ?? 0, successRate: served === null ? null : round(served, 4) },
      seconds: round(target.seconds),
      achievedRps: round(stats.achievedRps),
      lateShare: round(stats.lateShare, 4),
      shed: latencyOf(recorder.shed),
      afterOnset: latencyOf(recorder.afterOnset.shed),
      other: recorder.admitted.intended.requests,
    };
  } finally {
    await pages?.stop().catch(() => {});
    child.kill();
  }
}

/** The overload's onset, left out of `afterOnset`. */
export const ONSET_MS = 1_000;

/**
 * HTTP to one gateway (a pool of keep-alive connections, as the generator's own transport) that also
 * tells shed requests (503 with reason OVERLOADED in the body) from admitted ones, each timed from its
 * intended send time — `x-request-id` ends with the arrival number (the generator's documented format).
 */
function recordingTransport(url: string, rate: number, connections: number) {
  const pool = new Pool(new URL(url).origin, { connections, pipelining: 1 });
  const admitted = { intended: new Tally(), sent: new Tally() };
  const shed = { intended: new Tally(), sent: new Tally() };
  const afterOnset = {
    admitted: { intended: new Tally(), sent: new Tally() },
    shed: { intended: new Tally(), sent: new Tally() },
  };
  let t0 = 0;
  const intendedAt = (headers: Readonly<Record<string, string>>) =>
    t0 + (Number(/-(\d+)$/.exec(headers['x-request-id'] ?? '')?.[1] ?? 0) * 1_000) / rate;
  const transport: Transport = {
    async send({ path, headers, signal }: SendRequest): Promise<SendResult> {
      const intended = intendedAt(headers);
      const sentAt = performance.now();
      const record = (tallies: typeof admitted, outcome: ResponseClass) => {
        const end = performance.now();
        tallies.intended.record(outcome, end - intended);
        tallies.sent.record(outcome, end - sentAt);
        if (intended - t0 < ONSET_MS) return;
        const steady = tallies === admitted ? afterOnset.admitted : afterOnset.shed;
        steady.intended.record(outcome, end - intended);
        steady.sent.record(outcome, end - sentAt);
      };
      try {
        const response = await pool.request({ method: 'GET', path, headers, signal });
        const text = await response.body.text();
        const degraded = response.headers['x-degraded'];
        if (response.statusCode === 503 && reasonOf(text) === 'OVERLOADED') record(shed, '5xx:503');
        else record(admitted, classifyResponse(response.statusCode, degraded));
        return { status: response.statusCode, degraded };
      } catch (error) {
        record(admitted, signal.aborted ? 'timeout' : 'connection');
        throw error;
      }
    },
    // A pool destroyed already (a drain that gave up) has nothing left to close.
    close: async () => {
      if (!pool.destroyed && !pool.closed) await pool.close();
    },
    destroy: async () => {
      if (!pool.destroyed) await pool.destroy();
    },
  };
  return {
    transport,
    connections,
    admitted,
    shed,
    afterOnset,
    startAt(ms: number) {
      t0 = ms;
    },
  };
}

function reasonOf(body: string): string | undefined {
  try {
    return (JSON.parse(body) as { error?: { reason?: string } }).error?.reason;
  } catch {
    return undefined;
  }
}

function successShareOf(tally: Tally): number | null {
  const share = tally.stats().successRate;
  return share === null ? null : round(share, 4);
}

function latencyOf(tallies: { readonly intended: Tally; readonly sent: Tally }): LatencyFigures {
  const latency = tallies.intended.latency();
  const fromSend = tallies.sent.latency();
  return {
    count: tallies.intended.requests,
    p50Ms: latency ? round(latency.p50) : null,
    p99Ms: latency ? round(latency.p99) : null,
    maxMs: latency ? round(latency.max) : null,
    fromSendMs: { p50: fromSend ? round(fromSend.p50) : null, p99: fromSend ? round(fromSend.p99) : null },
  };
}

async function scrape(url: string): Promise<Sample[]> {
  const response = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5_000) });
  return parsePromText(await response.text());
}

/** The gateway's refusals in its request histogram: how many, and how many within each bucket (`le`). */
function refusalTimes(samples: readonly Sample[]): { count: number; le: Record<string, number> } {
  const le: Record<string, number> = {};
  for (const s of samples) {
    if (s.name !== DURATION_BUCKET || s.labels.route !== VIDEO_ROUTE || s.labels.status !== '503') continue;
    if (s.labels.le) le[s.labels.le] = (le[s.labels.le] ?? 0) + s.value;
  }
  return { count: le['+Inf'] ?? 0, le };
}

function shedByCause(samples: readonly Sample[]): Record<string, number> {
  const byCause: Record<string, number> = {};
  for (const s of samples) {
    if (s.name !== 'gateway_shed_total') continue;
    const cause = s.labels.cause ?? 'any';
    byCause[cause] = (byCause[cause] ?? 0) + s.value;
  }
  return byCause;
}

/** Resident memory (VmRSS) in bytes, from /proc; null when the process is gone or this is not Linux. */
function rssOf(pid: number): number | null {
  try {
    const kb = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb === undefined ? null : Number(kb) * 1024;
  } catch {
    return null;
  }
}

function cpuByInstance(pids: Readonly<Record<string, number>>): Record<string, number> {
  return Object.fromEntries(
    Object.entries(pids).flatMap(([id, pid]) => {
      const seconds = processCpuSeconds(pid);
      return seconds === null ? [] : [[id, seconds]];
    }),
  );
}

function describeRun(r: OverloadRun, budgetMs: number): string {
  const causes = Object.entries(r.shedByCause)
    .filter(([, n]) => n > 0)
    .map(([cause, n]) => `${cause} ${n}`)
    .join(', ');
  return [
    `  achieved ${r.achievedRps} rps (late ${percent(r.lateShare)}, dropped ${r.dropped})`,
    `  admitted ${r.admitted.count}: ${percent(r.admitted.successShare)} pages, p50 ${r.admitted.p50Ms} ms, p99 ${r.admitted.p99Ms} ms (from the send: p50 ${r.admitted.fromSendMs.p50} ms, p99 ${r.admitted.fromSendMs.p99} ms; budget ${budgetMs} ms), errors ${JSON.stringify(r.admitted.errors)}`,
    `  shed ${r.shed.count}: p50 ${r.shed.p50Ms} ms, p99 ${r.shed.p99Ms} ms (from the send: p50 ${r.shed.fromSendMs.p50} ms, p99 ${r.shed.fromSendMs.p99} ms)${causes ? `; gateway_shed_total: ${causes}` : ''}`,
    ...(r.refusedWithin.count > 0
      ? [
          `  the gateway's own time for its ${r.refusedWithin.count} refusals: ${percent(r.refusedWithin.ms1)} within 1 ms of reading the request, ${percent(r.refusedWithin.ms5)} within 5 ms`,
        ]
      : []),
    `  after the first ${ONSET_MS / 1_000} s: admitted ${r.afterOnset.admitted.count}, ${percent(r.afterOnset.admitted.successShare)} pages, p50 ${r.afterOnset.admitted.p50Ms} ms, p99 ${r.afterOnset.admitted.p99Ms} ms; shed ${r.afterOnset.shed.count}, p50 ${r.afterOnset.shed.fromSendMs.p50} ms, p99 ${r.afterOnset.shed.fromSendMs.p99} ms from the send`,
    `  client timeouts ${r.clientTimeouts}; gateway RSS ${r.rssMiB.before} → ${r.rssMiB.after} MiB (peak ${r.rssMiB.peak} MiB), CPU ${r.gatewayCpu.seconds} s (${r.gatewayCpu.msPerRequest} ms per request), waited ${r.gatewayCpu.runQueueSeconds ?? '?'} s for a CPU`,
    `  lab CPU s: ${Object.entries(r.labCpuSeconds)
      .sort(([, a], [, b]) => b - a)
      .map(([id, seconds]) => `${id} ${seconds}`)
      .join(', ')}`,
  ].join('\n');
}

function mib(bytes: number | null): number | null {
  return bytes === null ? null : round(bytes / 2 ** 20, 1);
}

function percent(share: number | null): string {
  return share === null ? 'n/a' : `${round(share * 100, 2)}%`;
}

function round(value: number, digits = 2): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function parseArgs(argv: readonly string[]): OverloadOptions & { readonly json: boolean } {
  const numbers: Record<string, keyof OverloadOptions> = {
    '--port-base': 'portBase',
    '--seconds': 'seconds',
    '--multiple': 'multiple',
    '--capacity': 'capacityRps',
  };
  const options: Record<string, number> = {};
  let json = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const key = numbers[arg];
    const value = Number(argv[i + 1]);
    if (arg === '--json') json = true;
    else if (key && Number.isFinite(value) && value > 0) {
      options[key] = value;
      i++;
    } else {
      throw new Error(
        `unexpected argument ${JSON.stringify(arg)}: expected --port-base N, --seconds S, --multiple M, --capacity RPS or --json`,
      );
    }
  }
  return { ...options, json };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { json, ...options } = parseArgs(process.argv.slice(2));
  // With --json, stdout holds the JSON alone: progress goes to stderr.
  const progress = json ? process.stderr : process.stdout;
  const figures = await measureOverload({ ...options, log: (line) => progress.write(`${line}\n`) });
  if (json) process.stdout.write(`${JSON.stringify(figures, null, 2)}\n`);
}
