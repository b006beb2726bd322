/**
 * How a lab is started in a process of its own: this process spawns the supervisor
 * (supervisor-main.ts) with an IPC channel, hands it the options in its environment, relays the
 * notes and progress it reports, and waits until it says the lab is ready — or failed, or died, or
 * said nothing in time. The one start-up of both the lab tied to this process (child-lab.ts) and
 * the lab left running in the background (detach.ts, `up --detach`).
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import path from 'node:path';
import { entryPath, LAB_BUILD_ENV } from '../build/lab-build.ts';
import { CliError } from '../cli-error.ts';
import { tailLines } from '../log-tail.ts';
import { compiledLab, preflight, type UpOptions } from './lab.ts';
import { ensureHome, logDir, REPO_ROOT } from './state.ts';

/** Messages from the supervisor to the process that started it. */
export type SupervisorMessage =
  | { readonly type: 'note'; readonly message: string }
  | {
      readonly type: 'progress';
      readonly ready: number;
      readonly total: number;
      readonly waitingFor: string[];
    }
  | { readonly type: 'ready'; readonly readyInMs: number }
  | {
      readonly type: 'failed';
      readonly message: string;
      readonly hint?: string;
      readonly details: string[];
    };

/** How the options reach the supervisor. */
export const UP_OPTIONS_ENV = 'CHAOS_LAB_UP_OPTIONS';

/** Set (to `1`) for a supervisor that must stop its lab as soon as its parent goes away. */
export const TIED_ENV = 'CHAOS_LAB_TIED_TO_PARENT';

/** Longer than the supervisor's own SIGTERM→SIGKILL grace (5 s), so it can finish first. */
export const STOP_WAIT_MS = 15_000;

/** Beyond the supervisor's own ready timeout: this one only guards against it hanging. */
const REPORT_GRACE_MS = 20_000;

export function supervisorLogFile(home: string): string {
  return path.join(logDir(home), 'supervisor.log');
}

export interface SpawnSupervisorOptions {
  /**
   * Tied: the supervisor stops its lab when this process lets go of it or dies, and one that fails
   * to start is waited for here. Otherwise it outlives this process once the lab is ready, and one
   * that fails stops by itself.
   */
  readonly tied: boolean;
  readonly note?: (message: string) => void;
  readonly progress?: (ready: number, total: number, waitingFor: readonly string[]) => void;
  /** Aborts the start-up: the supervisor is let go of, so it stops its lab, and the start rejects. */
  readonly signal?: AbortSignal;
}

export interface SpawnedSupervisor {
  /** Still connected: the caller lets go of it (detached) or keeps it (tied). */
  readonly child: ChildProcess;
  /** Resolves once the supervisor has exited. */
  readonly exited: Promise<void>;
  /** When it was spawned (epoch ms). */
  readonly spawnedAt: number;
  /** How long its lab took to be ready, as the supervisor measured it. */
  readonly readyInMs: number;
}

export function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/**
 * Spawns the supervisor and resolves once it reports its lab ready; a CliError when it reports a
 * failure, exits, cannot be started or does not report in time (then it is stopped).
 */
export async function spawnSupervisor(
  options: UpOptions,
  how: SpawnSupervisorOptions,
): Promise<SpawnedSupervisor> {
  const who = how.tied ? "the lab's supervisor" : 'the background supervisor';
  // The same checks the supervisor makes, here too: their errors belong on this terminal, not
  // in a log file.
  await preflight(options, how.note ?? (() => {}));
  const build = await compiledLab(how.note ?? (() => {}));
  ensureHome(options.home);
  const logFile = supervisorLogFile(options.home);
  const fd = openSync(logFile, 'w', 0o600);
  let child: ChildProcess;
  try {
    child = spawn(process.execPath, [entryPath(build, 'supervisor')], {
      cwd: REPO_ROOT,
      env: {
        ...process.env,
        [LAB_BUILD_ENV]: build.dir,
        [UP_OPTIONS_ENV]: JSON.stringify(options),
        ...(how.tied ? { [TIED_ENV]: '1' } : {}),
      },
      stdio: ['ignore', fd, fd, 'ipc'],
      // Its own process group: a Ctrl-C in the terminal reaches only this process — which,
      // tied, can then remove its faults while the lab still answers, and stop the lab
      // afterwards, and which, detached, must not take the lab with it.
      detached: true,
    });
  } finally {
    closeSync(fd);
  }
  const spawnedAt = Date.now();
  // Errors after the start-up (a failed IPC send to a supervisor that has just gone) have
  // nothing to tell: the exit says it all. Without a listener they would crash this process.
  child.on('error', () => {});
  const exited = new Promise<void>((resolve) => {
    if (hasExited(child)) resolve();
    else child.once('exit', () => resolve());
  });

  const onAbort = () => {
    // Not ready yet: the supervisor stops its lab when its parent lets go.
    if (child.connected) child.disconnect();
  };
  how.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const readyInMs = await handshake(child, who, logFile, options.readyTimeoutMs + REPORT_GRACE_MS, how);
    return { child, exited, spawnedAt, readyInMs };
  } catch (err) {
    if (how.tied) {
      if (child.connected) child.disconnect();
      // Bounded: it stops its lab and exits, or is killed (its instances then stop themselves).
      const late = setTimeout(() => child.kill('SIGKILL'), STOP_WAIT_MS);
      await exited;
      clearTimeout(late);
    }
    throw err;
  } finally {
    how.signal?.removeEventListener('abort', onAbort);
  }
}

/** Relays the supervisor's reports until it says ready (its readyInMs) or the start-up fails. */
function handshake(
  child: ChildProcess,
  who: string,
  logFile: string,
  patienceMs: number,
  how: SpawnSupervisorOptions,
): Promise<number> {
  const logTail = () => tailLines(logFile, 15).map((l) => `  ${l}`);
  return new Promise<number>((resolve, reject) => {
    const onMessage = (raw: unknown) => {
      const message = raw as SupervisorMessage;
      if (message.type === 'note') how.note?.(message.message);
      if (message.type === 'progress') how.progress?.(message.ready, message.total, message.waitingFor);
      if (message.type === 'ready') {
        settle();
        resolve(message.readyInMs);
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
        how.signal?.aborted
          ? new CliError('start-up interrupted; everything started was stopped')
          : new CliError(
              `${who} exited (${signal ? `signal ${signal}` : `code ${code}`}) before the lab was ready`,
              { details: logTail(), hint: `its log: ${logFile}` },
            ),
      );
    };
    const onError = (err: Error) => {
      settle();
      reject(new CliError(`cannot start ${who}: ${err.message}`));
    };
    const timer = setTimeout(() => {
      settle();
      child.kill('SIGTERM');
      reject(
        new CliError(`${who} (pid ${child.pid}) did not report in time; it was stopped`, {
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
}
