/**
 * One run per local lab: `<home>/run.lock` names the run that holds the lab (its pid, experiment
 * and start). Two runs at once on one lab would stack their faults and judge each other's — so a
 * second run is refused, saying who holds the lab. A lock whose process is gone (a run killed by
 * SIGKILL) is taken over; a lock is only ever removed by the run that wrote it.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { LabBusyError, type RunHolder } from '../runner/target.ts';
import { ensureHome, pidAlive } from './state.ts';

export function runLockPath(home: string): string {
  return path.join(home, 'run.lock');
}

/** The run holding the lab in `home` now, or undefined (no lock, an unreadable one, or its process gone). */
export function readRunLock(home: string): RunHolder | undefined {
  let holder: RunHolder;
  try {
    holder = JSON.parse(readFileSync(runLockPath(home), 'utf8')) as RunHolder;
  } catch {
    return undefined;
  }
  if (typeof holder?.pid !== 'number' || typeof holder.experiment !== 'string') return undefined;
  return pidAlive(holder.pid) ? holder : undefined;
}

/** Takes the lab in `home` for `holder`, or throws LabBusyError naming the run that holds it. */
export function acquireRunLock(home: string, holder: RunHolder): { release(): Promise<void> } {
  ensureHome(home);
  const file = runLockPath(home);
  const text = `${JSON.stringify(holder)}\n`;
  // Twice at most: a lock left by a process that is gone is removed, then taken.
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(file, text, { flag: 'wx', mode: 0o600 });
      return {
        async release() {
          try {
            if (readFileSync(file, 'utf8') === text) rmSync(file, { force: true });
          } catch {
            // Gone already: nothing to release.
          }
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const current = readRunLock(home);
    if (current) throw new LabBusyError(current);
    rmSync(file, { force: true });
  }
  const current = readRunLock(home);
  if (current) throw new LabBusyError(current);
  throw new Error(`could not take ${file}: another run keeps taking it`);
}
