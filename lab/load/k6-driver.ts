/**
 * k6 as the runner's load driver (`chaos-lab run --driver k6`, or `load.driver: k6` in an experiment): a
 * `LoadGenerator` that runs experiments/load/video-page.ts — the script users run by hand — with the
 * experiment's gateways, rate and timeout, reads k6's JSON output as it is written, and summarises it with
 * the built-in generator's Tally and HDR histograms (k6-samples.ts), so result.json has the same shape
 * whichever driver measured.
 *
 * Latency is k6's: from the moment a request was actually sent, not from its intended send time (see
 * k6-samples.ts). A run whose k6 could not start every arrival (no free VU) is marked `fellBehind`.
 *
 * The k6 process never outlives the runner: it is stopped by `stop` (SIGTERM, then SIGKILL after a bound),
 * killed on the runner's exit, and watched by a tiny shell that reads the runner's end of a pipe — when the
 * runner dies, even by SIGKILL, the pipe closes and the watchdog stops k6. k6 runs in its own process group,
 * so a Ctrl-C in the terminal reaches only the runner, which then stops k6 as part of its rollback.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { vusFor } from '../../experiments/load/config.ts';
import { REPO_ROOT } from '../local/state.ts';
import { ENDPOINT_PATHS } from './endpoints.ts';
import {
  type LoadGenerator,
  type LoadGeneratorOptions,
  type LoadSummary,
  type SecondSummary,
  settledWithin,
} from './generator.ts';
import type { K6Binary } from './k6-binary.ts';
import { K6SampleTally } from './k6-samples.ts';

export const VIDEO_PAGE_SCRIPT = path.join(REPO_ROOT, 'experiments', 'load', 'video-page.ts');

export interface K6GeneratorOptions extends LoadGeneratorOptions {
  readonly k6: K6Binary;
  /** @default experiments/load/video-page.ts */
  readonly script?: string;
  /** Epoch milliseconds; k6 stamps its samples with the same clock. @default Date.now */
  readonly now?: () => number;
  /** How often k6's output file is read. @default 100 */
  readonly pollMs?: number;
  /** After SIGTERM, how long k6 gets to exit before SIGKILL. @default 5000 */
  readonly stopGraceMs?: number;
}

/** Lines of k6's stderr kept for an error message. */
const STDERR_LINES = 30;
/** k6 writes its JSON output every 200 ms; a sample is in the file well within this after its time. */
const FLUSH_SLACK_MS = 1_000;
/**
 * k6 runs for the planned duration plus this much (at least a minute) — room for the runner's own steps
 * between phases. It is stopped as soon as the run is over; the duration only bounds a k6 left alone.
 */
const DURATION_SLACK = 0.5;
const MIN_DURATION_SLACK_MS = 60_000;
/** What k6's exit codes mean (k6's errext/exitcodes), for the error when it ends too soon. */
const K6_EXIT_CODES: Readonly<Record<number, string>> = {
  0: 'it finished its duration before the run was over',
  99: 'a threshold failed',
  104: 'its configuration is invalid',
  105: 'it was stopped by a signal',
  107: 'the script threw an error',
  108: 'it could not initialise the script',
};

/**
 * The watchdog: `$1` is k6's pid, `$2` the folder of its output. `read` returns at end of file — when the
 * runner's end of the pipe closes, however the runner ended — and then k6 gets SIGTERM, SIGKILL five seconds
 * later if still there, and its output is removed.
 */
const WATCHDOG = [
  'while read -r _; do :; done',
  'if kill -TERM "$1" 2>/dev/null; then',
  '  i=0; while [ "$i" -lt 5 ] && kill -0 "$1" 2>/dev/null; do sleep 1; i=$((i+1)); done',
  '  kill -KILL "$1" 2>/dev/null',
  'fi',
  'rm -rf "$2"',
].join('\n');

export interface K6Generator extends LoadGenerator {
  /** The k6 process, once started (tests check that it is gone). */
  readonly pid: number | undefined;
}

export function createK6Generator(options: K6GeneratorOptions): K6Generator {
  if (options.path !== ENDPOINT_PATHS.video) {
    throw new Error('the k6 driver drives the video page only (experiments/load/video-page.ts)');
  }
  if (options.targets.length === 0) throw new RangeError('at least one target is needed');
  const now = options.now ?? Date.now;
  const timeoutMs = options.timeoutMs ?? 2_000;
  const pollMs = options.pollMs ?? 100;
  const stopGraceMs = options.stopGraceMs ?? 5_000;
  const vus = vusFor(options.rate, timeoutMs);
  const listeners = new Set<(second: SecondSummary) => void>();
  const stderrTail: string[] = [];

  let tally: K6SampleTally | undefined;
  let k6: ChildProcess | undefined;
  let watchdog: ChildProcess | undefined;
  let workDir: string | undefined;
  let exited: Promise<void> = Promise.resolve();
  let exitStatus: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  let stopRequested = false;
  let failed = false;
  let poller: NodeJS.Timeout | undefined;
  let reading: Promise<void> = Promise.resolve();
  /** A read is queued and has not started: another need not be queued behind it. */
  let readQueued = false;
  const buffer = Buffer.alloc(1 << 20);
  let offset = 0;
  let partialLine = '';
  let stopping: Promise<LoadSummary> | undefined;
  let listenerError: unknown;

  const fail = (message: string) => {
    if (failed || stopRequested) return;
    failed = true;
    const tail = stderrTail.length > 0 ? `\nk6's last words:\n${stderrTail.join('\n')}` : '';
    options.onFailure?.(new Error(`${message}${tail}`));
  };

  const onRunnerExit = () => {
    // The runner is exiting (normally or by process.exit) without having stopped k6.
    if (k6?.pid !== undefined && exitStatus === undefined) killQuietly(k6.pid, 'SIGKILL');
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  };

  async function readNew(file: string): Promise<void> {
    const handle = await open(file, 'r').catch(() => undefined);
    if (!handle) return;
    try {
      for (;;) {
        const { bytesRead } = await handle.read(buffer, 0, buffer.length, offset);
        if (bytesRead === 0) break;
        offset += bytesRead;
        const lines = (partialLine + buffer.toString('utf8', 0, bytesRead)).split('\n');
        partialLine = lines.pop() ?? '';
        for (const line of lines) if (line) tally?.feed(line);
      }
    } finally {
      await handle.close();
    }
  }

  function poll(file: string): Promise<void> {
    if (readQueued) return reading;
    readQueued = true;
    reading = reading.then(async () => {
      readQueued = false;
      try {
        await readNew(file);
      } catch (error) {
        fail(`reading k6's output (${file}) failed: ${(error as Error).message}`);
        return;
      }
      for (const second of tally?.completeSeconds(now()) ?? []) {
        for (const listener of listeners) {
          try {
            listener(second);
          } catch (error) {
            // A progress display that throws must not stop the load; `stop` reports it.
            listenerError ??= error;
          }
        }
      }
    });
    return reading;
  }

  async function finish(drain: boolean): Promise<LoadSummary> {
    const active = tally as K6SampleTally;
    const file = path.join(workDir as string, 'samples.jsonl');
    const stopAt = now();
    active.stop(stopAt);
    if (drain && exitStatus === undefined) {
      // Every request sent before the stop ends by its timeout; wait for their outcomes to be written.
      const deadline = stopAt + timeoutMs + FLUSH_SLACK_MS + 1_000;
      while (exitStatus === undefined && now() < deadline) {
        await poll(file);
        if (active.inFlight === 0 && now() >= stopAt + FLUSH_SLACK_MS) break;
        await sleep(pollMs);
      }
    }
    stopRequested = true;
    clearInterval(poller);
    await terminate();
    await poll(file);
    // The watchdog goes first: closing its pipe while it lives would make it act.
    if (watchdog?.pid !== undefined) killQuietly(-watchdog.pid, 'SIGKILL');
    watchdog?.stdin?.destroy();
    process.off('exit', onRunnerExit);
    if (workDir) rmSync(workDir, { recursive: true, force: true });
    if (listenerError !== undefined) throw listenerError;
    return active.finish();
  }

  async function terminate(): Promise<void> {
    if (!k6 || exitStatus !== undefined || k6.pid === undefined) return;
    killQuietly(k6.pid, 'SIGTERM');
    if (await settledWithin(exited, stopGraceMs)) return;
    killQuietly(k6.pid, 'SIGKILL');
    await settledWithin(exited, 2_000);
  }

  return {
    get pid() {
      return k6?.pid;
    },
    start(window = 'main') {
      if (tally) throw new Error('the load generator was already started');
      const t0 = now();
      tally = new K6SampleTally({
        targets: options.targets.map((t) => t.name),
        rate: options.rate,
        timeoutMs,
        vus,
        t0,
        window,
        completionSlackMs: FLUSH_SLACK_MS,
      });
      workDir = mkdtempSync(path.join(tmpdir(), 'chaos-lab-k6-'));
      const file = path.join(workDir, 'samples.jsonl');
      writeFileSync(file, '');
      const planned = options.plannedDurationMs ?? 10 * 60_000;
      const durationMs = Math.ceil(planned + Math.max(MIN_DURATION_SLACK_MS, planned * DURATION_SLACK));
      const args = [
        'run',
        '--quiet',
        '--no-color',
        '--no-usage-report',
        // No REST API (it would listen on localhost:6565, and two runs would fight over the port), no
        // thresholds (the runner judges claims itself), no end-of-test summary (the runner has its own).
        '--address=',
        '--no-thresholds',
        '--summary-mode=disabled',
        // Only the tags read here: k6 writes about fifteen samples per request, each with its tags.
        '--system-tags=scenario,status,error_code',
        '--out',
        `json=${file}`,
        ...env('GATEWAYS', options.targets.map((t) => `${t.name}=${t.url}`).join(',')),
        ...env('RATE', String(options.rate)),
        ...env('DURATION', `${durationMs}ms`),
        ...env('TIMEOUT', `${timeoutMs}ms`),
        ...env('VUS', String(vus)),
        ...env('REQUEST_ID_PREFIX', options.requestIdPrefix ?? 'chaoslab-k6'),
        options.script ?? VIDEO_PAGE_SCRIPT,
      ];
      const child = spawn(options.k6.path, args, {
        cwd: REPO_ROOT,
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
      });
      k6 = child;
      process.on('exit', onRunnerExit);
      exited = new Promise((resolve) => {
        child.once('error', (error) => {
          exitStatus ??= { code: null, signal: null };
          fail(`k6 (${options.k6.path}) could not be started: ${error.message}`);
          resolve();
        });
        // 'close', not 'exit': it comes once k6's stdout and stderr are read to their end, so the
        // message has its last words (on a busy machine 'exit' came first and they were lost).
        child.once('close', (code, signal) => {
          exitStatus = { code, signal };
          const meaning = code === null ? `signal ${signal}` : (K6_EXIT_CODES[code] ?? 'it failed');
          fail(`k6 exited (code ${code ?? signal}: ${meaning}) before the run was over`);
          resolve();
        });
      });
      collectLines(child.stdout, stderrTail);
      collectLines(child.stderr, stderrTail);
      if (child.pid !== undefined) {
        const guard = spawn('sh', ['-c', WATCHDOG, 'chaos-lab-k6-watchdog', String(child.pid), workDir], {
          stdio: ['pipe', 'ignore', 'ignore'],
          detached: true,
        });
        guard.on('error', () => {});
        guard.stdin?.on('error', () => {});
        guard.unref();
        watchdog = guard;
      }
      poller = setInterval(() => void poll(file), pollMs);
    },
    mark(window) {
      if (!tally || stopping) throw new Error('mark() needs a running load generator');
      tally.mark(window, now());
    },
    onSecond(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    stop(stopOptions = {}) {
      if (!tally) return Promise.reject(new Error('stop() needs a started load generator'));
      stopping ??= finish(stopOptions.drain ?? true);
      return stopping;
    },
  };
}

function env(name: string, value: string): string[] {
  return ['-e', `${name}=${value}`];
}

/** Keeps the last lines of a stream, without k6's per-request warnings (each failed request logs one). */
function collectLines(stream: NodeJS.ReadableStream | null, tail: string[]): void {
  if (!stream) return;
  let partial = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    const lines = (partial + chunk).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      if (!line.trim() || line.includes('msg="Request Failed"')) continue;
      tail.push(line);
      if (tail.length > STDERR_LINES) tail.shift();
    }
  });
}

function killQuietly(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
