/**
 * What the end-to-end tests share: running the real CLI (`node bin/chaos-lab.js`) against a
 * lab home of their own in a temporary folder, on a port range found free by binding it,
 * and checking afterwards that no process is left.
 */

import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { LabStatus } from '../../lab/local/control-server.ts';
import { LOOPBACK, labLayout, portsOf } from '../../lab/local/layout.ts';
import { busyPorts, findFreePortBase } from '../../lab/local/port-check.ts';
import { type LabState, pidAlive, REPO_ROOT, readState } from '../../lab/local/state.ts';

const BIN = path.join(REPO_ROOT, 'bin', 'chaos-lab.js');

export interface CliRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs `chaos-lab …` as a real process with CHAOS_LAB_HOME=`home`; never rejects. After `timeoutMs` it
 * is sent `killSignal` (SIGKILL for a process that may be stuck where its own handlers cannot run).
 */
export function cli(
  home: string,
  args: readonly string[],
  timeoutMs = 110_000,
  killSignal: NodeJS.Signals = 'SIGTERM',
): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      {
        cwd: REPO_ROOT,
        env: { ...process.env, CHAOS_LAB_HOME: home },
        timeout: timeoutMs,
        killSignal,
        maxBuffer: 8 << 20,
      },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** A fresh, private lab home; remove it with `removeHome`. */
export function makeHome(): string {
  return mkdtempSync(path.join(tmpdir(), 'chaos-lab-e2e-'));
}

export function removeHome(home: string): void {
  rmSync(home, { recursive: true, force: true });
}

/** A port base whose every lab port can be bound right now, below the ephemeral ports. */
export const freePortBase = findFreePortBase;

/** Every lab port that is still bound. */
export async function boundPorts(base: number): Promise<number[]> {
  return (await busyPorts(portsOf(labLayout(base)), LOOPBACK)).map((p) => p.port);
}

export function state(home: string): LabState {
  const found = readState(home);
  if (!found) throw new Error(`no lab state in ${home}`);
  return found;
}

/** The live status, straight from the control API (faster than a CLI process per poll). */
export async function controlStatus(home: string): Promise<LabStatus> {
  const s = state(home);
  const res = await fetch(`${s.controlUrl}/status`, {
    headers: { authorization: `Bearer ${s.adminToken}` },
    signal: AbortSignal.timeout(3_000),
  });
  if (!res.ok) throw new Error(`control API answered ${res.status}`);
  return (await res.json()) as LabStatus;
}

/** Pids of the supervisor and of every running instance and fault proxy. */
export function pidsOf(status: LabStatus): number[] {
  const running = [...status.instances, ...status.proxies];
  return [status.pid, ...running.flatMap((i) => (i.pid === null ? [] : [i.pid]))];
}

export function alive(pids: readonly number[]): number[] {
  return pids.filter(pidAlive);
}

/** Polls `check` every `everyMs` until it returns a value, or fails after `timeoutMs`. */
export async function eventually<T>(
  what: string,
  check: () => Promise<T | undefined> | T | undefined,
  timeoutMs: number,
  everyMs = 200,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (let i = 0; i < 10_000; i++) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) break;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(
    `timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${String(lastError)}` : ''}`,
  );
}

/** One timed GET; the body parsed as JSON when it is. */
export async function timedGet(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; ms: number; headers: Headers; body: unknown }> {
  const started = performance.now();
  const res = await fetch(url, { headers, signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  const ms = performance.now() - started;
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { status: res.status, ms, headers: res.headers, body };
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] ?? Number.NaN)
    : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

/**
 * Starts a detached lab in `home` and returns its live status. The ready timeout leaves
 * room inside the 120 s hook timeout on a busy two-core machine.
 */
export async function upDetached(
  home: string,
  base: number,
  extra: readonly string[] = [],
): Promise<LabStatus> {
  const up = await cli(home, [
    'up',
    '--detach',
    '--port-base',
    String(base),
    '--ready-timeout',
    '90s',
    ...extra,
  ]);
  if (up.code !== 0) throw new Error(`chaos-lab up failed (exit ${up.code}):\n${up.stdout}\n${up.stderr}`);
  return controlStatus(home);
}

/**
 * `chaos-lab down`, then checks that every pid ever seen is gone. Safe to call when no lab
 * runs (down then says so and exits 0).
 */
export async function downAndCheck(
  home: string,
  seenPids: readonly number[],
): Promise<CliRun & { survivors: number[] }> {
  const down = await cli(home, ['down']);
  const survivors = await eventually(
    'every lab process to exit',
    () => {
      const left = alive(seenPids);
      return left.length === 0 ? left : undefined;
    },
    20_000,
  ).catch(() => alive(seenPids));
  // A failed test must not leave processes behind for the next one: report them, then kill them.
  for (const pid of survivors) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone in the meantime
    }
  }
  return { ...down, survivors };
}
