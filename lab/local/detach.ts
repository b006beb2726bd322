/**
 * `up --detach`: the same lab, run by a background process (supervisor-main.ts) that
 * outlives the CLI. The CLI waits on an IPC channel until the background supervisor says it
 * is ready (or failed, or died), relays its progress, then lets go of it.
 */

import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import path from 'node:path';
import { CliError } from '../cli-error.ts';
import { tailLines } from '../log-tail.ts';
import { preflight, type UpOptions } from './lab.ts';
import { ensureHome, type LabState, logDir, REPO_ROOT, readState } from './state.ts';

/** Messages from the background supervisor to the CLI that started it. */
export type DetachMessage =
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

/** How the CLI hands its options to the background supervisor. */
export const UP_OPTIONS_ENV = 'CHAOS_LAB_UP_OPTIONS';

export interface DetachHooks {
  readonly note: (message: string) => void;
  readonly progress: (ready: number, total: number, waitingFor: readonly string[]) => void;
}

export function supervisorLogFile(home: string): string {
  return path.join(logDir(home), 'supervisor.log');
}

export async function upDetached(
  options: UpOptions,
  hooks: DetachHooks,
): Promise<{ state: LabState; readyInMs: number }> {
  // The same checks the background process makes, here too: their errors belong on this
  // terminal, not in a log file.
  await preflight(options, hooks.note);
  ensureHome(options.home);
  const logFile = supervisorLogFile(options.home);
  const fd = openSync(logFile, 'w', 0o600);
  const child = (() => {
    try {
      return spawn(
        process.execPath,
        ['--import', 'tsx', path.join(REPO_ROOT, 'lab', 'local', 'supervisor-main.ts')],
        {
          cwd: REPO_ROOT,
          env: { ...process.env, [UP_OPTIONS_ENV]: JSON.stringify(options) },
          stdio: ['ignore', fd, fd, 'ipc'],
          // Its own process group: a Ctrl-C in this terminal later must not reach it.
          detached: true,
        },
      );
    } finally {
      closeSync(fd);
    }
  })();

  const logTail = () => tailLines(logFile, 15).map((l) => `  ${l}`);
  // The background process has its own ready timeout; this one only guards against it hanging.
  const patienceMs = options.readyTimeoutMs + 20_000;
  const outcome = await new Promise<{ readyInMs: number }>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGTERM');
      reject(
        new CliError(`the background supervisor (pid ${child.pid}) did not report in time; it was stopped`, {
          details: logTail(),
          hint: `its log: ${logFile}`,
        }),
      );
    }, patienceMs);
    const settle = () => {
      clearTimeout(timer);
      child.removeAllListeners('exit');
    };
    child.on('message', (raw) => {
      const message = raw as DetachMessage;
      if (message.type === 'note') hooks.note(message.message);
      if (message.type === 'progress') hooks.progress(message.ready, message.total, message.waitingFor);
      if (message.type === 'ready') {
        settle();
        resolve({ readyInMs: message.readyInMs });
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
    });
    child.once('exit', (code, signal) => {
      settle();
      reject(
        new CliError(
          `the background supervisor exited (${signal ? `signal ${signal}` : `code ${code}`}) before the lab was ready`,
          { details: logTail(), hint: `its log: ${logFile}` },
        ),
      );
    });
    child.once('error', (err) => {
      settle();
      reject(new CliError(`cannot start the background supervisor: ${err.message}`));
    });
  });

  child.disconnect();
  child.unref();
  const state = readState(options.home);
  if (!state) throw new CliError(`the lab reported ready but wrote no state file in ${options.home}`);
  return { state, readyInMs: outcome.readyInMs };
}
