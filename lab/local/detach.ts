/**
 * `up --detach`: the same lab, run by a background process (supervisor-main.ts) that
 * outlives the CLI. The CLI waits until the background supervisor says it is ready (or
 * failed, or died), relays its progress, then lets go of it.
 */

import { CliError } from '../cli-error.ts';
import type { UpOptions } from './lab.ts';
import { spawnSupervisor } from './spawn-supervisor.ts';
import { type LabState, readState } from './state.ts';

export interface DetachHooks {
  readonly note: (message: string) => void;
  readonly progress: (ready: number, total: number, waitingFor: readonly string[]) => void;
}

export async function upDetached(
  options: UpOptions,
  hooks: DetachHooks,
): Promise<{ state: LabState; readyInMs: number }> {
  const { child, readyInMs } = await spawnSupervisor(options, { tied: false, ...hooks });
  child.disconnect();
  child.unref();
  const state = readState(options.home);
  if (!state) throw new CliError(`the lab reported ready but wrote no state file in ${options.home}`);
  return { state, readyInMs };
}
