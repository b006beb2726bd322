import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startStandInSupervisor } from './__fixtures__/stand-in-supervisor.ts';
import {
  isSupervisorProcess,
  type LabState,
  labHome,
  lookupLab,
  pidAlive,
  REPO_ROOT,
  readState,
  removeState,
  StateFileError,
  statePath,
  writeState,
} from './state.ts';

function sampleState(pid = process.pid): LabState {
  return {
    version: 1,
    pid,
    startedAt: '2025-01-01T00:00:00.000Z',
    portBase: 18_000,
    controlUrl: 'http://127.0.0.1:18090',
    adminToken: 'a'.repeat(32),
    trust: { mode: 'half', key: 'k'.repeat(43) },
    workerRecovery: true,
    gateways: {
      naive: 'http://127.0.0.1:18080',
      parallel: 'http://127.0.0.1:18081',
      resilient: 'http://127.0.0.1:18082',
    },
    instances: [{ id: 'account-1', service: 'account', url: 'http://127.0.0.1:18100', port: 18_100 }],
    logDir: '/tmp/logs',
  };
}

/** A pid that surely is not running: a child that has exited and been reaped. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  return Number(child.stdout.toString());
}

describe('lab state', () => {
  let home: string;
  beforeEach(() => {
    home = path.join(mkdtempSync(path.join(tmpdir(), 'chaos-lab-state-')), 'home');
  });
  afterEach(() => {
    rmSync(path.dirname(home), { recursive: true, force: true });
  });

  it('lives in <repo>/.chaos-lab unless CHAOS_LAB_HOME says otherwise', () => {
    expect(labHome({})).toBe(path.join(REPO_ROOT, '.chaos-lab'));
    expect(labHome({ CHAOS_LAB_HOME: '/tmp/x/../y' })).toBe('/tmp/y');
    expect(statSync(path.join(REPO_ROOT, 'package.json')).isFile()).toBe(true);
  });

  it('is written 0600 in a 0700 folder, and read back as written', () => {
    writeState(home, sampleState());
    expect(statSync(statePath(home)).mode & 0o777).toBe(0o600);
    expect(statSync(home).mode & 0o777).toBe(0o700);
    expect(statSync(path.join(home, 'logs')).mode & 0o777).toBe(0o700);
    expect(readState(home)).toEqual(sampleState());
  });

  it('tightens a home folder that others could enter', () => {
    writeState(home, sampleState());
    chmodSync(home, 0o755);
    writeState(home, sampleState());
    expect(statSync(home).mode & 0o777).toBe(0o700);
  });

  it('replaces the file atomically, leaving no temporary file behind', () => {
    writeState(home, sampleState());
    writeState(home, { ...sampleState(), portBase: 20_000 });
    expect(readState(home)?.portBase).toBe(20_000);
    expect(readdirSync(home).sort()).toEqual(['logs', 'state.json']);
  });

  it('tells a running lab from a stale state file and from none', async () => {
    expect(lookupLab(home)).toEqual({ kind: 'none' });
    const supervisor = await startStandInSupervisor();
    try {
      writeState(home, sampleState(supervisor.pid));
      expect(lookupLab(home).kind).toBe('running');
    } finally {
      await supervisor.stop();
    }
    expect(lookupLab(home).kind).toBe('stale');
    const dead = deadPid();
    expect(pidAlive(dead)).toBe(false);
    writeState(home, sampleState(dead));
    expect(lookupLab(home).kind).toBe('stale');
  });

  it('takes a live pid that runs something else (the pid was reused) for a stale state file', () => {
    expect(pidAlive(process.pid)).toBe(true);
    expect(isSupervisorProcess(process.pid)).toBe(false);
    writeState(home, sampleState(process.pid));
    expect(lookupLab(home).kind).toBe('stale');
  });

  it('removes the file only for its owner when asked to check', () => {
    writeState(home, sampleState(process.pid));
    removeState(home, process.pid + 1);
    expect(readState(home)).toBeDefined();
    removeState(home, process.pid);
    expect(readState(home)).toBeUndefined();
    removeState(home);
  });

  it('refuses a corrupt or foreign file with a message naming it', () => {
    writeState(home, sampleState());
    writeFileSync(statePath(home), '{not json');
    expect(() => readState(home)).toThrow(StateFileError);
    writeFileSync(statePath(home), JSON.stringify({ ...sampleState(), pid: 'x' }));
    expect(() => readState(home)).toThrow(/state\.json is not a chaos-lab state file \(pid:/);
  });
});
