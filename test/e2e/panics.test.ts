/**
 * Panics in background work, in real processes: with recovery turned off on archive-1, a
 * worker-panic kills the process and the supervisor restarts it; with recovery on (the
 * default) on archive-2, the same fault is recovered, counted, and the process stays up.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LabStatus } from '../../lab/local/control-server.ts';
import type { InstanceStatus } from '../../lab/local/supervisor.ts';
import { signRequest } from '../../services/lib/trust.ts';
import {
  cli,
  controlStatus,
  downAndCheck,
  eventually,
  freePortBase,
  makeHome,
  pidsOf,
  removeHome,
  state,
  timedGet,
  upDetached,
} from './helpers.ts';

function instance(status: LabStatus, id: string): InstanceStatus {
  const found = status.instances.find((i) => i.id === id);
  if (!found) throw new Error(`no ${id} in the status`);
  return found;
}

/** A call straight to a backend, signed with the lab's key as a gateway would (half trust). */
function signedGet(home: string, id: string, path: string) {
  const s = state(home);
  const target = s.instances.find((i) => i.id === id);
  const audience = id.replace(/-\d+$/, '');
  return timedGet(
    `${target?.url}${path}`,
    signRequest(s.trust.key, 'e2e-test', { method: 'GET', path, audience }),
  );
}

/** Sum of a counter over all its label sets, from an instance's /metrics. */
async function counterTotal(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(3_000) })).text();
  return text
    .split('\n')
    .filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
}

describe('worker panics with and without recovery', () => {
  const home = makeHome();
  const seen = new Set<number>();
  let before: LabStatus;

  beforeAll(async () => {
    before = await upDetached(home, await freePortBase(), ['--log-level', 'warn']);
    for (const pid of pidsOf(before)) seen.add(pid);
  });

  afterAll(async () => {
    const down = await downAndCheck(home, [...seen]);
    removeHome(home);
    expect(down.survivors).toEqual([]);
  });

  it('recovery off + worker-panic: archive-1 really dies and the supervisor restarts it', async () => {
    const old = instance(before, 'archive-1');
    const off = await cli(home, [
      'fault',
      'recovery',
      'off',
      'archive',
      '--instance',
      'archive-1',
      '--for',
      '60s',
    ]);
    expect(off.code, off.stderr).toBe(0);
    expect(off.stdout).toMatch(/^worker recovery off on archive-1 for 1m/);
    const panic = await cli(home, [
      'fault',
      'add',
      'worker-panic',
      'archive',
      '--instance',
      'archive-1',
      '--percent',
      '100',
    ]);
    expect(panic.code, panic.stderr).toBe(0);
    const listed = JSON.parse((await cli(home, ['fault', 'list', 'archive', '--json'])).stdout) as {
      faults: { instance: string }[];
      settings: { instance: string; workerRecovery: boolean; overridden: boolean }[];
    };
    expect(listed.faults.map((f) => f.instance)).toEqual(['archive-1']);
    expect(listed.settings.find((x) => x.instance === 'archive-1')).toMatchObject({
      workerRecovery: false,
      overridden: true,
    });
    expect(listed.settings.find((x) => x.instance === 'archive-2')).toMatchObject({
      workerRecovery: true,
      overridden: false,
    });

    // A few requests: the first one's background task throws and takes the process down.
    let answered = 0;
    for (let i = 0; i < 5; i++) {
      try {
        const res = await signedGet(home, 'archive-1', `/archives/${i + 1}`);
        if (res.status === 200) answered += 1;
      } catch {
        break; // the connection is refused: the process is gone
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(answered).toBeGreaterThanOrEqual(1);

    const restarted = await eventually(
      'archive-1 restarted and ready again',
      async () => {
        const now = instance(await controlStatus(home), 'archive-1');
        return now.restarts > 0 && now.ready && now.pid !== null ? now : undefined;
      },
      30_000,
      250,
    );
    if (restarted.pid !== null) seen.add(restarted.pid);
    expect(restarted.pid).not.toBe(old.pid);
    expect(restarted.lastExit?.code).not.toBe(0);
    expect(restarted.lastExit?.code).not.toBeNull();
    console.log(
      `archive-1: pid ${old.pid} → ${restarted.pid}, restarts ${restarted.restarts}, last exit ${JSON.stringify(restarted.lastExit)}`,
    );

    // The human status shows it too.
    const table = await cli(home, ['status']);
    expect(table.stdout).toMatch(
      new RegExp(`archive-1\\s+\\S+\\s+${restarted.pid}\\s+yes\\s+${restarted.restarts}\\s+code \\d+`),
    );
    // Faults live in the process: the new one starts clean, with recovery back on.
    const clean = JSON.parse(
      (await cli(home, ['fault', 'list', 'archive', '--instance', 'archive-1', '--json'])).stdout,
    );
    expect(clean.faults).toEqual([]);
    expect(clean.settings[0]).toMatchObject({ workerRecovery: true, overridden: false });
    expect((await signedGet(home, 'archive-1', '/archives/7')).status).toBe(200);
  });

  it('recovery on (the default) + worker-panic: archive-2 stays up and counts recovered panics', async () => {
    const old = instance(before, 'archive-2');
    const url = state(home).instances.find((i) => i.id === 'archive-2')?.url ?? '';
    const recoveredBefore = await counterTotal(url, 'worker_panics_recovered_total');
    const panic = await cli(home, ['fault', 'add', 'worker-panic', 'archive', '--instance', 'archive-2']);
    expect(panic.code, panic.stderr).toBe(0);

    const REQUESTS = 5;
    for (let i = 0; i < REQUESTS; i++) {
      expect((await signedGet(home, 'archive-2', `/archives/${i + 20}`)).status).toBe(200);
    }
    const recoveredAfter = await eventually(
      `worker_panics_recovered_total to rise by ${REQUESTS}`,
      async () => {
        const total = await counterTotal(url, 'worker_panics_recovered_total');
        return total >= recoveredBefore + REQUESTS ? total : undefined;
      },
      10_000,
      200,
    );
    console.log(`archive-2: worker_panics_recovered_total ${recoveredBefore} → ${recoveredAfter}`);

    const now = instance(await controlStatus(home), 'archive-2');
    expect(now).toMatchObject({ pid: old.pid, restarts: 0, ready: true, lastExit: null });
    const cleared = await cli(home, ['fault', 'clear', 'archive', '--instance', 'archive-2']);
    expect(cleared.code).toBe(0);
  });
});
