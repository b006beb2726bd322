/**
 * A lab whose lifetime is tied to this process: its supervisor (supervisor-main.ts) runs as a
 * child with an IPC channel and stops the lab the moment the channel closes — when this
 * process calls `stop()`, exits, crashes or is killed with SIGKILL. Every instance is tied to
 * the supervisor in the same way, so no lab process outlives the one that started it, and no
 * fault either (faults live in the processes).
 *
 * For the experiment runner: it needs a lab for one run, and a lab left behind by a runner
 * that was killed would be a lab nobody knows about, holding ports and faults.
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import path from 'node:path';
import { CliError } from '../cli-error.ts';
import { tailLines } from '../log-tail.ts';
import type { LabStatus } from './control-server.ts';
import { type DetachMessage, supervisorLogFile, UP_OPTIONS_ENV } from './detach.ts';
import { preflight, type UpOptions } from './lab.ts';
import { ensureHome, type LabState, pidAlive, REPO_ROOT, readState } from './state.ts';

/** Set (to `1`) for a supervisor that must stop its lab as soon as its parent goes away. */
export const TIED_ENV = 'CHAOS_LAB_TIED_TO_PARENT';

/** Longer than the supervisor's own SIGTERM→SIGKILL grace (5 s), so it can finish first. */
const STOP_WAIT_MS = 15_000;
const ORPHAN_WAIT_MS = 5_000;

export interface ChildLabHooks {
  readonly note?: (message: string) => void;
  readonly progress?: (ready: number, total: number, waitingFor: readonly string[]) => void;
  /** Aborts the start-up: the lab stops, and the start rejects. */
  readonly signal?: AbortSignal;
}

export interface ChildLab {
  readonly state: LabState;
  readonly readyInMs: number;
  /** The supervisor's pid. */
  readonly pid: number;
  /** Whether the supervisor is still running. */
  running(): boolean;
  /**
   * Stops the lab and resolves once the supervisor and every instance and proxy it ran are
   * gone (a process that will not go is killed). Idempotent.
   */
  stop(): Promise<void>;
}

async function livePids(state: LabState): Promise<number[]> {
  try {
    const res = await fetch(`${state.controlUrl}/status`, {
      headers: { authorization: `Bearer ${state.adminToken}` },
      signal: AbortSignal.timeout(2_000),
    });
    if (!res.ok) return [];
    const status = (await res.json()) as LabStatus;
    return [...status.instances, ...(status.proxies ?? [])].flatMap((i) => (i.pid === null ? [] : [i.pid]));
  } catch {
    return [];
  }
}

async function waitGone(pids: readonly number[], ms: number): Promise<number[]> {
  const deadline = Date.now() + ms;
  for (let round = 0; round < 10_000; round++) {
    const alive = pids.filter(pidAlive);
    if (alive.length === 0 || Date.now() >= deadline) return alive;
    await new Promise((r) => setTimeout(r, 100));
  }
  return pids.filter(pidAlive);
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

export async function startChildLab(options: UpOptions, hooks: ChildLabHooks = {}): Promise<ChildLab> {
  // Checked here as well as in the child: these errors belong to the caller, not to a log file.
  await preflight(options, hooks.note ?? (() => {}));
  ensureHome(options.home);
  const logFile = supervisorLogFile(options.home);
  const fd = openSync(logFile, 'w', 0o600);
  let child: ChildProcess;
  try {
    child = spawn(
      process.execPath,
      ['--import', 'tsx', path.join(REPO_ROOT, 'lab', 'local', 'supervisor-main.ts')],
      {
        cwd: REPO_ROOT,
        env: { ...process.env, [UP_OPTIONS_ENV]: JSON.stringify(options), [TIED_ENV]: '1' },
        stdio: ['ignore', fd, fd, 'ipc'],
        // Its own process group: a Ctrl-C in the terminal reaches only this process, which can
        // then remove its faults while the lab still answers, and stop the lab afterwards.
        detached: true,
      },
    );
  } finally {
    closeSync(fd);
  }
  const began = Date.now();
  // Errors after the start-up (a failed IPC send to a supervisor that has just gone) have
  // nothing to tell: the exit says it all. Without a listener they would crash this process.
  child.on('error', () => {});
  const exit = new Promise<void>((resolve) => {
    if (exited(child)) resolve();
    else child.once('exit', () => resolve());
  });
  const logTail = () => tailLines(logFile, 15).map((l) => `  ${l}`);

  const patienceMs = options.readyTimeoutMs + 20_000;
  const onAbort = () => {
    // Not ready yet: the supervisor stops its lab when its parent lets go.
    if (child.connected) child.disconnect();
  };
  hooks.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    await new Promise<void>((resolve, reject) => {
      const onMessage = (raw: unknown) => {
        const message = raw as DetachMessage;
        if (message.type === 'note') hooks.note?.(message.message);
        if (message.type === 'progress') hooks.progress?.(message.ready, message.total, message.waitingFor);
        if (message.type === 'ready') {
          settle();
          resolve();
        }
        if (message.type === 'failed') {
          settle();
          reject(
            new CliError(message.message, {
              details: message.details,
              ...(message.hint ? { hint: message.hint } : {}),
            }),
          );
        }
      };
      const onExit = (code: number | null, signal: NodeJS.Signals | null) => {
        settle();
        reject(
          hooks.signal?.aborted
            ? new CliError('start-up interrupted; everything started was stopped')
            : new CliError(
                `the lab's supervisor exited (${signal ? `signal ${signal}` : `code ${code}`}) before the lab was ready`,
                { details: logTail(), hint: `its log: ${logFile}` },
              ),
        );
      };
      const onError = (err: Error) => {
        settle();
        reject(new CliError(`cannot start the lab's supervisor: ${err.message}`));
      };
      const timer = setTimeout(() => {
        settle();
        child.kill('SIGTERM');
        reject(
          new CliError(`the lab's supervisor (pid ${child.pid}) did not report in time; it was stopped`, {
            details: logTail(),
            hint: `its log: ${logFile}`,
          }),
        );
      }, patienceMs);
      function settle() {
        clearTimeout(timer);
        child.off('message', onMessage);
        child.off('exit', onExit);
        child.off('error', onError);
      }
      child.on('message', onMessage);
      child.once('exit', onExit);
      child.once('error', onError);
    });
  } catch (err) {
    if (child.connected) child.disconnect();
    // Bounded: it stops its lab and exits, or is killed (its instances then stop themselves).
    const late = setTimeout(() => child.kill('SIGKILL'), STOP_WAIT_MS);
    await exit;
    clearTimeout(late);
    throw err;
  } finally {
    hooks.signal?.removeEventListener('abort', onAbort);
  }

  const state = readState(options.home);
  if (!state || state.pid !== child.pid) {
    if (child.connected) child.disconnect();
    throw new CliError(
      `the lab reported ready but its state file in ${options.home} is missing or not its own`,
    );
  }
  // From here on the lab must not keep this process alive: when it exits without stopping
  // the lab, the channel closes and the lab stops itself.
  child.unref();
  (child.channel as { unref?: () => void } | undefined)?.unref?.();

  let stopping: Promise<void> | undefined;
  return {
    state,
    readyInMs: Date.now() - began,
    pid: child.pid ?? state.pid,
    running: () => !exited(child),
    stop() {
      stopping ??= (async () => {
        const pids = exited(child) ? [] : await livePids(state);
        if (child.connected) child.disconnect();
        else if (!exited(child)) child.kill('SIGTERM');
        const late = setTimeout(() => child.kill('SIGKILL'), STOP_WAIT_MS);
        await exit;
        clearTimeout(late);
        // A supervisor that had to be killed could not wait for its children: they stop on
        // their own when its channel closes, and are killed if they do not.
        const left = await waitGone(pids, ORPHAN_WAIT_MS);
        for (const pid of left) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // gone in the meantime
          }
        }
      })();
      return stopping;
    },
  };
}
