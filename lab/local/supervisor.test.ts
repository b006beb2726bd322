import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import {
  type ChildHandle,
  type InstanceSpec,
  Supervisor,
  type SupervisorEvent,
  type SupervisorOptions,
  type Timers,
} from './supervisor.ts';

/** A clock and timers that move only when the test says so. */
class FakeTime implements Timers {
  now = 1_000_000;
  #next = 1;
  #queue = new Map<number, { at: number; fn: () => void }>();

  setTimeout = (fn: () => void, ms: number): unknown => {
    const id = this.#next++;
    this.#queue.set(id, { at: this.now + ms, fn });
    return id;
  };

  clearTimeout = (handle: unknown): void => {
    this.#queue.delete(handle as number);
  };

  /** Runs every timer due within `ms`, in order, moving the clock to each. */
  async advance(ms: number): Promise<void> {
    const end = this.now + ms;
    for (let i = 0; i < 10_000; i++) {
      const due = [...this.#queue.entries()]
        .filter(([, t]) => t.at <= end)
        .sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      this.#queue.delete(due[0]);
      this.now = due[1].at;
      due[1].fn();
      await flush();
    }
    this.now = end;
    await flush();
  }
}

async function flush(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}

class FakeChild extends EventEmitter implements ChildHandle {
  readonly signals: NodeJS.Signals[] = [];
  exited = false;

  constructor(
    readonly pid: number,
    private readonly obeys: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGKILL'],
  ) {
    super();
  }

  kill(signal: NodeJS.Signals): boolean {
    this.signals.push(signal);
    if (this.obeys.includes(signal)) queueMicrotask(() => this.crash(null, signal));
    return true;
  }

  crash(code: number | null, signal: NodeJS.Signals | null = null): void {
    if (this.exited) return;
    this.exited = true;
    this.emit('exit', code, signal);
  }
}

const spec = (id: string): InstanceSpec => ({
  id,
  service: id.split('-')[0] ?? id,
  url: `http://127.0.0.1/${id}`,
  command: 'unused',
  args: [],
  cwd: '/',
  env: {},
  logFile: '/dev/null',
});

function harness(
  options: Partial<SupervisorOptions> & { obeys?: NodeJS.Signals[]; ready?: Set<string> } = {},
) {
  const time = new FakeTime();
  const children: Record<string, FakeChild[]> = {};
  const events: SupervisorEvent[] = [];
  let pid = 100;
  const ready = options.ready ?? new Set<string>();
  const supervisor = new Supervisor({
    instances: [spec('coin-1'), spec('coin-2')],
    clock: () => time.now,
    timers: time,
    launch: (s) => {
      const child = new FakeChild(pid++, options.obeys);
      children[s.id] = [...(children[s.id] ?? []), child];
      return child;
    },
    probe: async (url) => ready.has(url.split('/').pop() ?? ''),
    onEvent: (e) => events.push(e),
    ...options,
  });
  const current = (id: string) => children[id]?.at(-1) as FakeChild;
  return { time, children, events, supervisor, current, ready };
}

describe('Supervisor', () => {
  it('restarts a crash-looping instance after 250 ms, 500 ms, 1 s … up to 8 s, counting restarts', async () => {
    const { time, events, supervisor, current, children } = harness();
    supervisor.start();
    const delays: (number | null)[] = [];
    for (let crash = 0; crash < 8; crash++) {
      current('coin-1').crash(1);
      const exit = events.findLast((e) => e.type === 'exit');
      delays.push(exit?.type === 'exit' ? exit.restartInMs : null);
      const waiting = supervisor.status()[0];
      expect(waiting).toMatchObject({ state: 'backoff', pid: null, restarts: crash, ready: false });
      expect(waiting?.lastExit).toMatchObject({ code: 1, signal: null });
      // One millisecond short of the back-off nothing starts; at the back-off it does.
      await time.advance((delays.at(-1) ?? 0) - 1);
      expect(children['coin-1']).toHaveLength(crash + 1);
      await time.advance(1);
      expect(children['coin-1']).toHaveLength(crash + 2);
    }
    expect(delays).toEqual([250, 500, 1_000, 2_000, 4_000, 8_000, 8_000, 8_000]);
    expect(supervisor.status()[0]).toMatchObject({ id: 'coin-1', state: 'running', restarts: 8, pid: 109 });
    // The other instance was never touched.
    expect(supervisor.status()[1]).toMatchObject({ id: 'coin-2', restarts: 0, lastExit: null, pid: 101 });
  });

  it('starts a new crash loop from 250 ms once an instance ran 15 s', async () => {
    const { time, events, supervisor, current } = harness();
    supervisor.start();
    current('coin-1').crash(1);
    await time.advance(250);
    current('coin-1').crash(1);
    await time.advance(500);
    await time.advance(15_000);
    current('coin-1').crash(1);
    const exits = events.filter((e) => e.type === 'exit').map((e) => (e.type === 'exit' ? e.restartInMs : 0));
    expect(exits).toEqual([250, 500, 250]);
  });

  it('keeps a ready flag from the probes, and drops it when the process exits', async () => {
    const ready = new Set(['coin-1']);
    const { time, supervisor, current } = harness({ ready, probeIntervalMs: 250 });
    supervisor.start();
    expect(supervisor.status().map((s) => s.ready)).toEqual([false, false]);
    await time.advance(250);
    expect(supervisor.status().map((s) => s.ready)).toEqual([true, false]);
    current('coin-1').crash(null, 'SIGKILL');
    expect(supervisor.status()[0]).toMatchObject({
      ready: false,
      lastExit: { code: null, signal: 'SIGKILL' },
    });
  });

  it('reports progress until every instance is ready, or names the ones that never were', async () => {
    const ready = new Set<string>();
    const { time, supervisor } = harness({ ready });
    supervisor.start();
    const progress: string[] = [];
    const waiting = supervisor.whenReady({
      timeoutMs: 5_000,
      onProgress: (n, total, left) => progress.push(`${n}/${total} ${left.join(',')}`),
    });
    ready.add('coin-2');
    await time.advance(300);
    ready.add('coin-1');
    await time.advance(300);
    await expect(waiting).resolves.toEqual({ ok: true });
    expect(progress).toEqual(['0/2 coin-1,coin-2', '1/2 coin-1', '2/2 ']);

    const second = harness();
    second.supervisor.start();
    const late = second.supervisor.whenReady({ timeoutMs: 1_000 });
    await second.time.advance(1_100);
    await expect(late).resolves.toEqual({ ok: false, reason: 'timeout', notReady: ['coin-1', 'coin-2'] });
  });

  it('kills one instance on request (a crash like any other) and knows the ids it has', async () => {
    const { time, supervisor, current } = harness();
    supervisor.start();
    expect(supervisor.kill('coin-9')).toBe('unknown');
    expect(supervisor.kill('coin-2')).toBe('killed');
    expect(current('coin-2').signals).toEqual(['SIGKILL']);
    await flush();
    expect(supervisor.kill('coin-2')).toBe('not-running');
    await time.advance(250);
    expect(supervisor.status()[1]).toMatchObject({ restarts: 1, state: 'running' });
  });

  it('stops with SIGTERM, then SIGKILL after the grace period, and restarts nothing', async () => {
    const { time, supervisor, current, children } = harness({ obeys: ['SIGKILL'], stopGraceMs: 5_000 });
    supervisor.start();
    current('coin-1').crash(1); // backing off while the stop comes: must not start again
    let stopped = false;
    const stopping = supervisor.stop().then(() => {
      stopped = true;
    });
    await flush();
    expect(current('coin-2').signals).toEqual(['SIGTERM']);
    await time.advance(4_999);
    expect(stopped).toBe(false);
    await time.advance(1);
    await stopping;
    expect(current('coin-2').signals).toEqual(['SIGTERM', 'SIGKILL']);
    await time.advance(60_000);
    expect(children['coin-1']).toHaveLength(1);
    expect(supervisor.status().map((s) => s.state)).toEqual(['stopped', 'stopped']);
    expect(supervisor.stop()).toBe(supervisor.stop());
  });

  it('treats a spawn failure as a crash', async () => {
    const { time, events, supervisor } = harness({
      launch: () => {
        throw new Error('spawn ENOENT');
      },
    });
    supervisor.start();
    expect(events.filter((e) => e.type === 'spawn-error')).toHaveLength(2);
    await time.advance(250);
    expect(supervisor.status()[0]).toMatchObject({ restarts: 1, state: 'backoff' });
  });
});
