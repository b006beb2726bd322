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

import { CliError } from '../cli-error.ts';
import type { LabStatus } from './control-server.ts';
import type { UpOptions } from './lab.ts';
import { hasExited, STOP_WAIT_MS, spawnSupervisor } from './spawn-supervisor.ts';
import { type LabState, readState, waitPidsGone } from './state.ts';

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
    // The fault proxies share one process: its pid is on each of their rows.
    return [
      ...new Set(
        [...status.instances, ...(status.proxies ?? [])].flatMap((i) => (i.pid === null ? [] : [i.pid])),
      ),
    ];
  } catch {
    return [];
  }
}

export async function startChildLab(options: UpOptions, hooks: ChildLabHooks = {}): Promise<ChildLab> {
  const { child, exited, spawnedAt } = await spawnSupervisor(options, { tied: true, ...hooks });
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
    readyInMs: Date.now() - spawnedAt,
    pid: child.pid ?? state.pid,
    running: () => !hasExited(child),
    stop() {
      stopping ??= (async () => {
        const pids = hasExited(child) ? [] : await livePids(state);
        if (child.connected) child.disconnect();
        else if (!hasExited(child)) child.kill('SIGTERM');
        const late = setTimeout(() => child.kill('SIGKILL'), STOP_WAIT_MS);
        await exited;
        clearTimeout(late);
        // A supervisor that had to be killed could not wait for its children: they stop on
        // their own when its channel closes, and are killed if they do not.
        const left = await waitPidsGone(pids, ORPHAN_WAIT_MS);
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
