import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { captureLog, metricValue, untilTrue } from './__fixtures__/observe.ts';
import { createLauncher, INJECTED_PANIC_MESSAGE, type Launcher } from './go.ts';
import { createServiceApp, type ServiceContext } from './service-app.ts';

function setup(options: { injectPanic?: () => boolean } = {}) {
  const captured = captureLog();
  const { ctx } = createServiceApp({
    service: 'test',
    instanceId: 'test-1',
    log: captured.log,
    processMetrics: false,
  });
  // Recovery off would kill the test runner itself: that case runs in a child process below.
  const launcher = createLauncher({ ctx, recovery: () => true, ...options });
  return { ctx, launcher, captured };
}

function settled(launcher: Launcher): Promise<void> {
  return untilTrue(() => launcher.inFlight() === 0, 'background tasks to finish');
}

function outcomes(ctx: ServiceContext, task: string) {
  return Promise.all([
    metricValue(ctx.metrics, 'worker_tasks_total', { task, outcome: 'ok' }),
    metricValue(ctx.metrics, 'worker_tasks_total', { task, outcome: 'panic' }),
    metricValue(ctx.metrics, 'worker_panics_recovered_total', { task }),
  ]);
}

describe('go with recovery on', () => {
  it('runs the task later, never on the caller’s stack, and counts it', async () => {
    const { ctx, launcher } = setup();
    let ran = false;
    launcher.go('tick', () => {
      ran = true;
    });
    expect(ran).toBe(false);
    expect(launcher.inFlight()).toBe(1);
    await settled(launcher);
    expect(ran).toBe(true);
    expect(await outcomes(ctx, 'tick')).toEqual([1, 0, 0]);
  });

  it('waits for an async task before counting it', async () => {
    const { ctx, launcher } = setup();
    let started = false;
    let finish: () => void = () => {};
    launcher.go('slow', () => {
      started = true;
      return new Promise<void>((resolve) => {
        finish = resolve;
      });
    });
    await untilTrue(() => started, 'the task to start');
    expect(launcher.inFlight()).toBe(1);
    finish();
    await settled(launcher);
    expect(await outcomes(ctx, 'slow')).toEqual([1, 0, 0]);
  });

  it('recovers a throw: logged at error with the stack and the task, counted, caller unaffected', async () => {
    const { ctx, launcher, captured } = setup();
    expect(() =>
      launcher.go('explode', () => {
        throw new Error('kaboom');
      }),
    ).not.toThrow();
    await settled(launcher);
    expect(await outcomes(ctx, 'explode')).toEqual([0, 1, 1]);
    const line = captured.lines().find((l) => l.task === 'explode');
    expect(line).toMatchObject({ level: 50, task: 'explode', err: { type: 'Error', message: 'kaboom' } });
    expect((line?.err as { stack?: string } | undefined)?.stack).toMatch(/Error: kaboom\n\s+at /);
    expect(String(line?.msg)).toContain('explode');
  });

  it('recovers a rejection', async () => {
    const { ctx, launcher, captured } = setup();
    launcher.go('reject', async () => {
      throw new Error('async kaboom');
    });
    await settled(launcher);
    expect(await outcomes(ctx, 'reject')).toEqual([0, 1, 1]);
    expect(captured.lines().some((l) => (l.err as { message?: string })?.message === 'async kaboom')).toBe(
      true,
    );
  });

  it('gives a thrown non-Error a stack in the log', async () => {
    const { launcher, captured } = setup();
    launcher.go('string-throw', () => {
      throw 'just a string';
    });
    await settled(launcher);
    const err = captured.lines().find((l) => l.task === 'string-throw')?.err as
      | { message: string; stack: string }
      | undefined;
    expect(err?.message).toContain('just a string');
    expect(err?.stack).toMatch(/\n\s+at /);
  });

  it('throws inside the task when the worker-panic dice say so, without running the work', async () => {
    const rolls = [true, false];
    const { ctx, launcher, captured } = setup({ injectPanic: () => rolls.shift() ?? false });
    let ran = 0;
    launcher.go('record-view', () => {
      ran++;
    });
    launcher.go('record-view', () => {
      ran++;
    });
    await settled(launcher);
    expect(ran).toBe(1);
    expect(await outcomes(ctx, 'record-view')).toEqual([1, 1, 1]);
    expect(
      captured.lines().some((l) => (l.err as { message?: string })?.message === INJECTED_PANIC_MESSAGE),
    ).toBe(true);
  });

  it('asks for the recovery setting when a task fails, not when it is launched', async () => {
    const { ctx } = setup();
    let asked = 0;
    const launcher = createLauncher({
      ctx,
      recovery: () => {
        asked++;
        return true;
      },
    });
    launcher.go('ok', () => {});
    await settled(launcher);
    expect(asked).toBe(0);
    launcher.go('bad', () => {
      throw new Error('x');
    });
    await settled(launcher);
    expect(asked).toBe(1);
  });
});

interface Exit {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

const FIXTURE = fileURLToPath(new URL('./__fixtures__/panicking-worker.ts', import.meta.url));

function runFixture(...args: string[]): Promise<Exit> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(killer);
      resolve({ code, stdout, stderr });
    });
  });
}

// Three short-lived processes, independent of each other: run side by side.
describe.concurrent('go in a real process', () => {
  it('with recovery off a panic kills the process, stack on stderr', { timeout: 30_000 }, async () => {
    const exit = await runFixture('off');
    expect(exit.code).not.toBe(0);
    expect(exit.code).not.toBeNull();
    expect(exit.stderr).toMatch(/Error: boom from the fixture #0\n\s+at /);
    expect(exit.stderr).toContain('panicking-worker.ts');
    expect(exit.stdout).not.toContain('RESULT');
  });

  it('with recovery off a rejected task kills it too', { timeout: 30_000 }, async () => {
    const exit = await runFixture('off', 'rejections-only');
    expect(exit.code).not.toBe(0);
    expect(exit.stderr).toMatch(/Error: rejected boom from the fixture\n\s+at /);
    expect(exit.stdout).not.toContain('RESULT');
  });

  it('with recovery on it keeps running and counts every panic', { timeout: 30_000 }, async () => {
    const exit = await runFixture('on');
    expect(exit.code).toBe(0);
    const result = /RESULT (.*)/.exec(exit.stdout)?.[1];
    expect(JSON.parse(result ?? 'null')).toEqual({ recovered: 4, ok: 1 });
    expect(exit.stderr).toContain('recovered panic in background task explode');
  });
});
