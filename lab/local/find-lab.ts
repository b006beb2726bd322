import { CliError } from '../cli-error.ts';
import { type Io, warn } from '../io.ts';
import { type LabState, lookupLab, removeState, StateFileError } from './state.ts';

export const NO_LAB = 'no lab is running (start one with: npx chaos-lab up)';

/** What the state file in `home` says, with an unreadable one as a CLI error. */
export function findLab(home: string): ReturnType<typeof lookupLab> {
  try {
    return lookupLab(home);
  } catch (err) {
    if (err instanceof StateFileError) throw new CliError(err.message);
    throw err;
  }
}

/** The running lab's state; a stale state file is removed (and said so); no lab → exit 1. */
export function requireLab(io: Io, home: string): LabState {
  const found = findLab(home);
  if (found.kind === 'running') return found.state;
  if (found.kind === 'stale') {
    removeState(home);
    warn(io, `removed a stale state file: its supervisor (pid ${found.state.pid}) is gone`);
  }
  throw new CliError(NO_LAB, { hint: `looked in ${home} (set CHAOS_LAB_HOME to look elsewhere)` });
}
