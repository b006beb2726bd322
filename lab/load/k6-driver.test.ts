/**
 * The k6 driver's ways of ending that the real k6 cannot be made to take: a k6 that ignores SIGTERM (the
 * driver must SIGKILL it after the grace period) and a k6 that exits before the run is over (the failure
 * names the exit code and k6's last words). A stand-in script plays k6 here; test/e2e/k6.test.ts runs the
 * real binary for everything else.
 */
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { pidAlive } from '../local/state.ts';
import { ENDPOINT_PATHS } from './endpoints.ts';
import { createK6Generator } from './k6-driver.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'k6-driver-'));
/** Stand-ins started: one the driver failed to stop must not outlive the test. */
const started: number[] = [];
afterAll(() => {
  for (const pid of started) if (pidAlive(pid)) process.kill(pid, 'SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

/** A stand-in k6: writes `term` to its marker file on SIGTERM, and then runs the rest of `body`. */
function standIn(name: string, body: string): string {
  const file = path.join(dir, name);
  writeFileSync(file, `#!/bin/sh\nmarker="${path.join(dir, `${name}.marker`)}"\n${body}\n`);
  chmodSync(file, 0o755);
  return file;
}

function generatorFor(k6Path: string, onFailure?: (error: Error) => void) {
  return createK6Generator({
    k6: { path: k6Path, version: 'v2.2.0', source: 'CHAOS_LAB_K6' },
    targets: [{ name: 'resilient', url: 'http://127.0.0.1:9' }],
    rate: 5,
    path: ENDPOINT_PATHS.video,
    plannedDurationMs: 5_000,
    stopGraceMs: 300,
    pollMs: 20,
    ...(onFailure ? { onFailure } : {}),
  });
}

async function until(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('the k6 driver stopping k6', () => {
  it('SIGKILLs a k6 that does not exit on SIGTERM within the grace period', async () => {
    // `sleep` in the background and `wait`: the shell runs its trap at once, and then keeps living.
    const k6 = standIn(
      'stubborn-k6',
      'trap \'echo term >> "$marker"\' TERM\necho started >> "$marker"\nwhile :; do sleep 1 & wait $!; done',
    );
    const generator = generatorFor(k6);
    generator.start();
    const marker = `${k6}.marker`;
    await until(() => existsSync(marker));
    const pid = generator.pid as number;
    started.push(pid);
    expect(pidAlive(pid)).toBe(true);

    const summary = await generator.stop({ drain: false });
    expect(readFileSync(marker, 'utf8')).toBe('started\nterm\n');
    expect(pidAlive(pid)).toBe(false);
    expect(summary.targets.resilient?.sent ?? 0).toBe(0);
  }, 15_000);

  it('reports a k6 that exits before the run is over, with the code, its meaning and its last words', async () => {
    const k6 = standIn('failing-k6', 'echo \'level=error msg="TypeError: x is undefined"\' >&2\nexit 107');
    const failures: Error[] = [];
    const generator = generatorFor(k6, (error) => failures.push(error));
    generator.start();
    await until(() => failures.length > 0);
    expect(failures).toHaveLength(1);
    expect(failures[0]?.message).toContain(
      'k6 exited (code 107: the script threw an error) before the run was over',
    );
    expect(failures[0]?.message).toContain('TypeError: x is undefined');
    await generator.stop({ drain: false });
    expect(failures).toHaveLength(1);
  }, 15_000);
});
