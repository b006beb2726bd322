/**
 * `chaos-lab run` in-process, with the fake target and generators on fake time: exit codes, what is
 * printed, and the signals. The same command as a real process, on bad input, is in test/e2e/run-cli.test.ts.
 */
import { EventEmitter } from 'node:events';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Io } from '../io.ts';
import { KIND_CONFIG_ENV } from '../kube/kind-config.ts';
import type { CreateTargetOptions } from '../lab-driver.ts';
import { createFakeTarget, type FakeTarget, fakeGenerators } from '../runner/fake-target.ts';
import { type RunCommandDeps, runCommand, type TargetFactory } from './run.ts';

const YAML = `
name: cli-run
description: one fault phase
load: { rate: 10, endpoint: video }
phases:
  - { name: baseline, duration: 2s }
  - name: fault
    duration: 3s
    faults: [{ kind: latency, service: coin, delay: 200ms }]
claims:
  - { gateway: resilient, phase: fault, expect: { successRate: ">= 0.99" } }
`;

let dir: string;
let file: string;
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
  // setImmediate stays real: `untilStarted` uses it to let the file be read before fake time moves.
  vi.useFakeTimers({
    now: new Date(2026, 0, 2, 3, 4, 5),
    toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'],
  });
  dir = mkdtempSync(path.join(tmpdir(), 'chaos-run-cmd-'));
  file = path.join(dir, 'cli-run.yaml');
  writeFileSync(file, YAML);
  stdout = '';
  stderr = '';
});
afterEach(() => {
  vi.useRealTimers();
  rmSync(dir, { recursive: true, force: true });
});

function deps(target: FakeTarget, extra: Partial<RunCommandDeps> = {}): RunCommandDeps {
  return {
    createTarget: async () => target,
    isTTY: false,
    signals: new EventEmitter() as unknown as RunCommandDeps['signals'],
    run: {
      createGenerator: fakeGenerators().factory,
      renderReport: () => '<html></html>',
      timing: { leaseMs: 3_000, rollbackTimeoutMs: 2_000, warmupMs: 1_000 },
    },
    ...extra,
  };
}

/** Waits (in real time, bounded) until the command has read its file and prepared the target. */
async function untilStarted(target: FakeTarget): Promise<void> {
  const deadline = performance.now() + 5_000;
  while (!target.calls.includes('prepare') && performance.now() < deadline) {
    await new Promise((resolve) => setImmediate(resolve));
  }
  if (!target.calls.includes('prepare')) throw new Error('the run did not start');
}

describe('runCommand', () => {
  it('exits 0 when every claim held, printing the summary and where the results are', async () => {
    const target = createFakeTarget();
    const running = runCommand(io, file, { out: path.join(dir, 'out') }, deps(target));
    await untilStarted(target);
    await vi.advanceTimersByTimeAsync(8_000);
    expect(await running).toBe(0);
    expect(stdout).toContain('[default] phase fault (3s): latency on coin (delay 200ms)');
    expect(stdout).toContain('  ✓ resilient successRate >= 0.99 in fault: 100%');
    expect(stdout).toContain('verdict: held — every claim held');
    expect(stdout).toContain('audit: no fault left in the lab');
    const runDir = path.join(dir, 'out', '20260102-030405-cli-run');
    expect(stdout).toContain(`results: ${runDir}`);
    expect(stdout).toContain(`report:  ${path.join(runDir, 'report.html')}`);
    expect(readdirSync(runDir).sort()).toEqual(['journal.jsonl', 'report.html', 'result.json']);
    expect(stderr).toBe('');
  });

  it('rolls back on SIGINT and exits 130; a second SIGINT forces the exit once the rollback is over its bound', async () => {
    const target = createFakeTarget();
    const signals = new EventEmitter();
    const exit = vi.fn();
    const running = runCommand(
      io,
      file,
      { out: path.join(dir, 'out') },
      deps(target, { signals: signals as unknown as RunCommandDeps['signals'], exit }),
    );
    await untilStarted(target);
    await vi.advanceTimersByTimeAsync(4_000);
    // Removal hangs, and so does its last resort: the rollback outlives its 2 s bound.
    target.hangOn('remove');
    target.hangOn('clearAll');
    signals.emit('SIGINT', 'SIGINT');
    await vi.advanceTimersByTimeAsync(500);
    signals.emit('SIGINT', 'SIGINT');
    expect(stdout).toContain('SIGINT: rolling back… (again to force the exit if the rollback takes over 2s)');
    expect(stdout).toContain('SIGINT again: exiting in 1.5s unless the rollback finishes first');
    await vi.advanceTimersByTimeAsync(1_500);
    expect(exit).toHaveBeenCalledWith(130);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(await running).toBe(130);
    expect(stdout).toContain('status: aborted — interrupted by SIGINT during phase "fault"');
    expect(stdout).toContain(
      'rollback: clearing every fault of the lab did not finish within 2s; the leases expire within 3s',
    );
    expect(signals.listenerCount('SIGINT')).toBe(0);
  });

  it('exits 2 with every problem of an invalid file, before creating a target', async () => {
    writeFileSync(file, 'name: Bad Name\ndescription: x\nload: { rate: 10, endpoint: video }\nphases: []\n');
    const createTarget = vi.fn();
    const code = await runCommand(io, file, { out: path.join(dir, 'out') }, { createTarget });
    expect(code).toBe(2);
    expect(stderr).toMatch(/^chaos-lab: invalid experiment .*cli-run\.yaml \(2 problems\):\n/);
    expect(stderr).toContain('cli-run.yaml:1:7: name:');
    expect(stderr).toContain('cli-run.yaml:4:9: phases:');
    expect(createTarget).not.toHaveBeenCalled();
    expect(existsSync(path.join(dir, 'out'))).toBe(false);
  });

  it('exits 2 for an unknown name, listing the catalog', async () => {
    const code = await runCommand(io, 'weak-dependency-latencyy', {}, { createTarget: vi.fn() });
    expect(code).toBe(2);
    expect(stderr).toMatch(
      /^chaos-lab: no experiment named "weak-dependency-latencyy" and no such file; expected a file path or one of: .*weak-dependency-latency/,
    );
    expect(stderr).toContain('hint: npx chaos-lab list shows every experiment');
  });

  it('exits 2 when the target cannot inject a fault, before anything starts', async () => {
    const target = createFakeTarget({ unsupported: { latency: 'no proxy in front of coin' } });
    const code = await runCommand(io, file, { out: path.join(dir, 'out') }, deps(target));
    expect(code).toBe(2);
    expect(stderr).toContain(
      'phases[1].faults[0] (phase "fault"): the local target cannot inject latency: no proxy in front of coin',
    );
    expect(target.calls).toEqual([]);
    expect(existsSync(path.join(dir, 'out'))).toBe(false);
  });

  it('gives the kind target the kind configuration of CHAOS_LAB_KIND_CONFIG, a relative one from the working directory', async () => {
    const seen: CreateTargetOptions[] = [];
    const target = createFakeTarget({ unsupported: { latency: 'stop here' } });
    const createTarget: TargetFactory = async (_name, options) => {
      seen.push(options);
      return target;
    };
    const withEnv = (env: Io['env']): Io => ({ ...io, env });
    await runCommand(
      withEnv({ [KIND_CONFIG_ENV]: 'my-kind.yaml' }),
      file,
      { target: 'kind' },
      { createTarget },
    );
    await runCommand(
      withEnv({ [KIND_CONFIG_ENV]: '/etc/kind.yaml' }),
      file,
      { target: 'kind' },
      { createTarget },
    );
    await runCommand(withEnv({}), file, { target: 'kind' }, { createTarget });
    expect(seen.map((o) => o.kindConfig)).toEqual([
      path.join(process.cwd(), 'my-kind.yaml'),
      '/etc/kind.yaml',
      undefined,
    ]);
  });
});
