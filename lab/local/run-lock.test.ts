import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LabBusyError } from '../runner/target.ts';
import { acquireRunLock, readRunLock, runLockPath } from './run-lock.ts';

let home: string;
beforeEach(() => {
  home = mkdtempSync(path.join(tmpdir(), 'run-lock-'));
});
afterEach(() => rmSync(home, { recursive: true, force: true }));

const holder = (pid: number, experiment = 'tour') => ({
  pid,
  experiment,
  startedAt: new Date(Date.now() - 42_000).toISOString(),
});

/** A real process that is gone: its pid was used and is now free. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  await new Promise((r) => child.once('exit', r));
  return child.pid as number;
}

describe('one run per local lab', () => {
  it('refuses a second run while the first holds the lab, naming it, and lets the next one in after', async () => {
    const first = acquireRunLock(home, holder(process.pid, 'tour'));
    expect(readRunLock(home)).toMatchObject({ pid: process.pid, experiment: 'tour' });
    const refused = (() => {
      try {
        acquireRunLock(home, holder(process.pid, 'weak-dependency-latency'));
      } catch (err) {
        return err;
      }
    })();
    expect(refused).toBeInstanceOf(LabBusyError);
    expect((refused as Error).message).toMatch(
      new RegExp(
        `^the lab is busy: a run of tour \\(pid ${process.pid}, since \\d\\d:\\d\\d:\\d\\d, 4[2-4] s ago\\) holds it`,
      ),
    );
    expect((refused as Error).message).toContain('nothing was started');
    // The refused run changed nothing: the lock is still the first run's.
    expect(readRunLock(home)?.experiment).toBe('tour');
    await first.release();
    expect(readRunLock(home)).toBeUndefined();
    const next = acquireRunLock(home, holder(process.pid, 'weak-dependency-latency'));
    expect(readRunLock(home)?.experiment).toBe('weak-dependency-latency');
    await next.release();
  });

  it('takes over a lock whose run was killed (its process is gone)', async () => {
    const gone = await deadPid();
    writeFileSync(runLockPath(home), `${JSON.stringify(holder(gone, 'killed-run'))}\n`);
    expect(readRunLock(home)).toBeUndefined();
    const taken = acquireRunLock(home, holder(process.pid, 'tour'));
    expect(JSON.parse(readFileSync(runLockPath(home), 'utf8'))).toMatchObject({
      pid: process.pid,
      experiment: 'tour',
    });
    await taken.release();
  });

  it('releases only its own lock', async () => {
    const mine = acquireRunLock(home, holder(process.pid, 'tour'));
    // Someone else's lock took its place (a run that took over after this one was thought gone).
    const other = `${JSON.stringify(holder(process.pid, 'other'))}\n`;
    writeFileSync(runLockPath(home), other);
    await mine.release();
    expect(readFileSync(runLockPath(home), 'utf8')).toBe(other);
  });
});
