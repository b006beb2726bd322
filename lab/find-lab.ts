import { CliError } from './cli-error.ts';
import { type Io, warn } from './io.ts';
import { type LabState, lookupLab, removeState, StateFileError } from './state.ts';

export const NO_LAB = 'no lab is running (start one with: npx chaos-lab up)';

/** The running lab's state; a stale state file is removed (and said so); no lab → exit 1. */
export function requireLab(io: Io, home: string): LabState {
  let found: ReturnType<typeof lookupLab>;
  try {
    found = lookupLab(home);
  } catch (err) {
    if (err instanceof StateFileError) throw new CliError(err.message);
    throw err;
  }
  if (found.kind === 'running') return found.state;
  if (found.kind === 'stale') {
    removeState(home);
    warn(io, `removed a stale state file: its supervisor (pid ${found.state.pid}) is gone`);
  }
  throw new CliError(NO_LAB, { hint: `looked in ${home} (set CHAOS_LAB_HOME to look elsewhere)` });
}
