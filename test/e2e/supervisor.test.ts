/**
 * The supervisor with real processes (tiny fixture scripts, not the lab's services): a
 * crash loop is restarted with a growing back-off and counted; a healthy instance is probed
 * ready, and killed and restarted through the control API; stopping leaves nothing behind.
 */

import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { startControlServer } from '../../lab/local/control-server.ts';
import { LOOPBACK } from '../../lab/local/layout.ts';
import { portIsFree } from '../../lab/local/port-check.ts';
import { pidAlive, REPO_ROOT } from '../../lab/local/state.ts';
import { type InstanceSpec, Supervisor, type SupervisorEvent } from '../../lab/local/supervisor.ts';
import { alive, eventually } from './helpers.ts';

const FIXTURES = path.join(REPO_ROOT, 'test', 'fixtures');
const dir = mkdtempSync(path.join(tmpdir(), 'chaos-lab-supervisor-'));
const supervisors: Supervisor[] = [];
const seenPids = new Set<number>();

function fixture(id: string, script: string, env: Record<string, string>, port = 0): InstanceSpec {
  return {
    id,
    service: 'fixture',
    url: `http://${LOOPBACK}:${port}`,
    command: process.execPath,
    args: [path.join(FIXTURES, script)],
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH, ...env },
    logFile: path.join(dir, `${id}.log`),
  };
}

function supervise(
  instances: InstanceSpec[],
  onEvent: (event: SupervisorEvent) => void = () => {},
): Supervisor {
  const supervisor = new Supervisor({
    instances,
    onEvent: (event) => {
      onEvent(event);
      if (event.type === 'start' && event.pid !== null) seenPids.add(event.pid);
    },
  });
  supervisors.push(supervisor);
  supervisor.start();
  return supervisor;
}

async function freePort(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    if (await portIsFree(port, LOOPBACK)) return port;
  }
  throw new Error('no free port');
}

afterEach(async () => {
  await Promise.all(supervisors.splice(0).map((s) => s.stop()));
});

afterAll(() => {
  expect(alive([...seenPids])).toEqual([]);
  rmSync(dir, { recursive: true, force: true });
});

describe('Supervisor with real processes', () => {
  it('restarts a crashing process with a growing back-off and counts the restarts', async () => {
    const events: SupervisorEvent[] = [];
    const startedAt: number[] = [];
    const supervisor = supervise(
      [fixture('crasher-1', 'crashing-instance.mjs', { EXIT_CODE: '3' })],
      (event) => {
        events.push(event);
        if (event.type === 'start') startedAt.push(performance.now());
      },
    );
    await eventually(
      'four restarts',
      () => (supervisor.status()[0]?.restarts ?? 0) >= 4 || undefined,
      15_000,
      50,
    );
    const status = supervisor.status()[0];
    await supervisor.stop();

    // The crashes, not the exit the stop itself caused.
    const exits = events.flatMap((e) => (e.type === 'exit' && e.restartInMs !== null ? [e] : []));
    expect(exits.slice(0, 4).map((e) => e.restartInMs)).toEqual([250, 500, 1_000, 2_000]);
    expect(exits.every((e) => e.code === 3 && e.signal === null)).toBe(true);
    expect(status?.restarts).toBeGreaterThanOrEqual(4);
    expect(status?.lastExit?.code).toBe(3);
    // Measured between real starts: each gap is the process's short life plus its back-off.
    const gaps = startedAt.slice(1, 5).map((t, i) => t - (startedAt[i] ?? 0));
    console.log(`gaps between real starts (ms): ${gaps.map((g) => g.toFixed(0)).join(', ')}`);
    [250, 500, 1_000, 2_000].forEach((backoff, i) => {
      expect(gaps[i]).toBeGreaterThanOrEqual(backoff);
    });
    for (let i = 1; i < gaps.length; i++) expect(gaps[i]).toBeGreaterThan(gaps[i - 1] ?? 0);
    // Every start was a new process, and none is left.
    const pids = events.flatMap((e) => (e.type === 'start' && e.pid !== null ? [e.pid] : []));
    expect(new Set(pids).size).toBe(pids.length);
    expect(alive(pids)).toEqual([]);
    expect(existsSync(path.join(dir, 'crasher-1.log'))).toBe(true);
  });

  it('probes readiness, and kills and restarts an instance through the control API', async () => {
    const port = await freePort();
    const supervisor = supervise([fixture('ready-1', 'ready-instance.mjs', { PORT: String(port) }, port)]);
    expect(await supervisor.whenReady({ timeoutMs: 10_000 })).toEqual({ ok: true });
    const first = supervisor.status()[0];
    expect(first).toMatchObject({ ready: true, restarts: 0, state: 'running' });

    const token = 'e2e-control-token-0123456789';
    const control = await startControlServer({
      port: 0,
      host: LOOPBACK,
      token,
      target: {
        status: () => ({
          pid: process.pid,
          startedAt: '',
          trust: 'zero',
          workerRecovery: true,
          gateways: {},
          instances: supervisor.status(),
          proxies: [],
        }),
        kill: (id) => supervisor.kill(id),
        ids: () => supervisor.ids(),
        shutdown: () => void supervisor.stop(),
      },
    });
    try {
      const killed = await fetch(`${control.url}/instances/ready-1/kill`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}` },
      });
      expect(killed.status).toBe(202);
      const restarted = await eventually(
        'ready-1 restarted and ready',
        () => {
          const s = supervisor.status()[0];
          return s && s.restarts === 1 && s.ready ? s : undefined;
        },
        10_000,
        50,
      );
      expect(restarted.pid).not.toBe(first?.pid);
      expect(restarted.lastExit).toMatchObject({ code: null, signal: 'SIGKILL' });
      expect(pidAlive(first?.pid ?? 0)).toBe(false);
    } finally {
      await control.close();
    }
    await supervisor.stop();
    expect(supervisor.status()[0]).toMatchObject({ state: 'stopped', pid: null, ready: false });
    expect(await portIsFree(port, LOOPBACK)).toBe(true);
  });
});
