/**
 * `chaos-lab run --driver` and `load.driver`: which driver a run uses, what result.json says about it, and
 * that a missing k6 stops the command before anything starts (exit 2, with how to install it). Fake target
 * and generators on fake time, as in run.test.ts; the real k6 driver runs in test/e2e/k6.test.ts.
 */
import { EventEmitter } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Io } from '../io.ts';
import { K6NotFoundError } from '../load/k6-binary.ts';
import { createFakeTarget, type FakeTarget, fakeGenerators } from '../runner/fake-target.ts';
import type { RunResult } from '../runner/result.ts';
import { type RunCommandDeps, runCommand } from './run.ts';

const yaml = (driver: string) => `
name: driver-run
description: one calm phase
load: { rate: 10, endpoint: video${driver} }
phases:
  - { name: baseline, duration: 2s }
`;

let dir: string;
let stdout: string;
let stderr: string;
const io: Io = {
  stdout: (t) => {
    stdout += t;
  },
  stderr: (t) => {
    stderr += t;
  },
  env: {},
};

beforeEach(() => {
  vi.useFakeTimers({
    now: new Date(2026, 0, 2, 3, 4, 5),
    toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'],
  });
  dir = mkdtempSync(path.join(tmpdir(), 'chaos-run-driver-'));
  stdout = '';
  stderr = '';
});
afterEach(() => {
  vi.useRealTimers();
  rmSync(dir, { recursive: true, force: true });
});

function experimentFile(driver = ''): string {
  const file = path.join(dir, 'driver-run.yaml');
  writeFileSync(file, yaml(driver));
  return file;
}

function deps(target: FakeTarget, findK6: RunCommandDeps['findK6']): RunCommandDeps {
  return {
    createTarget: async () => target,
    isTTY: false,
    signals: new EventEmitter() as unknown as RunCommandDeps['signals'],
    findK6,
    run: {
      createGenerator: fakeGenerators().factory,
      renderReport: () => '<html></html>',
      timing: { leaseMs: 3_000, rollbackTimeoutMs: 2_000, warmupMs: 1_000 },
    },
  };
}

const notFound = vi.fn(async () => {
  throw new K6NotFoundError(['CHAOS_LAB_K6 is not set', 'no k6 on PATH', 'no .tools/bin/k6']);
});
const found = vi.fn(async () => ({ path: '/opt/k6/k6', version: 'v2.2.0', source: 'PATH' as const }));

async function runToEnd(target: FakeTarget, running: Promise<number>): Promise<number> {
  const deadline = performance.now() + 5_000;
  while (!target.calls.includes('prepare') && performance.now() < deadline) {
    await new Promise((resolve) => setImmediate(resolve));
  }
  await vi.advanceTimersByTimeAsync(6_000);
  return running;
}

function result(): RunResult {
  return JSON.parse(
    readFileSync(path.join(dir, 'out', '20260102-030405-driver-run', 'result.json'), 'utf8'),
  ) as RunResult;
}

describe('the load driver of chaos-lab run', () => {
  it('--driver k6 without k6: exit 2, how to install it, nothing started', async () => {
    const target = createFakeTarget();
    const out = path.join(dir, 'out');
    const code = await runCommand(io, experimentFile(), { out, driver: 'k6' }, deps(target, notFound));
    expect(code).toBe(2);
    expect(stderr).toBe(
      [
        'chaos-lab: --driver k6 needs k6 v2, which was not found; nothing was started:',
        '  CHAOS_LAB_K6 is not set',
        '  no k6 on PATH',
        '  no .tools/bin/k6',
        'hint: install k6 v2: https://grafana.com/docs/k6/latest/set-up/install-k6/',
        'hint: or, with Go 1.25+, build it into .tools/bin/k6: npm run tools:k6',
        'hint: or point CHAOS_LAB_K6 at a k6 v2 binary',
        '',
      ].join('\n'),
    );
    expect(target.calls).toEqual([]);
    expect(existsSync(out)).toBe(false);
  });

  it('names the experiment file when it is the file that asks for k6', async () => {
    const target = createFakeTarget();
    const file = experimentFile(', driver: k6');
    expect(await runCommand(io, file, { out: path.join(dir, 'out') }, deps(target, notFound))).toBe(2);
    expect(stderr.split('\n')[0]).toBe(
      `chaos-lab: load.driver: k6 in ${file} needs k6 v2, which was not found; nothing was started:`,
    );
  });

  it('--driver builtin overrides the file’s k6, and k6 is not looked for', async () => {
    const target = createFakeTarget();
    const lookedFor = vi.fn(async () => found());
    const running = runCommand(
      io,
      experimentFile(', driver: k6'),
      { out: path.join(dir, 'out'), driver: 'builtin' },
      deps(target, lookedFor),
    );
    expect(await runToEnd(target, running)).toBe(0);
    expect(lookedFor).not.toHaveBeenCalled();
    expect(result().driver).toBe('builtin');
    expect(stdout).toContain('measured by the built-in generator (latency from the intended send time)');
  });

  it('with k6 found, says which, and result.json names the driver and its version', async () => {
    const target = createFakeTarget();
    const running = runCommand(
      io,
      experimentFile(),
      { out: path.join(dir, 'out'), driver: 'k6' },
      deps(target, found),
    );
    expect(await runToEnd(target, running)).toBe(0);
    expect(stdout).toContain('load driver: k6 v2.2.0 (/opt/k6/k6); latency from the actual send');
    expect(result()).toMatchObject({ driver: 'k6', k6Version: 'v2.2.0' });
    expect(stdout).toContain('measured by k6 v2.2.0 (latency from the actual send)');
  });
});
