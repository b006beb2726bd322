import { EventEmitter } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import {
  type ChildHandle,
  type InstanceSpec,
  probeReady,
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

/** A process hosting `members`, each probed at its own URL (as the fault proxies' host). */
const host = (id: string, members: readonly string[]): InstanceSpec => ({
  id,
  service: 'fault-proxy',
  members: members.map((m) => ({ id: m, service: 'fault-proxy', url: `http://127.0.0.1/${m}` })),
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
  /** Every probe sent: which part, and when. */
  const probes: { id: string; at: number }[] = [];
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
    probe: async (url) => {
      const id = url.split('/').pop() ?? '';
      probes.push({ id, at: time.now });
      return ready.has(id);
    },
    onEvent: (e) => events.push(e),
    ...options,
  });
  const current = (id: string) => children[id]?.at(-1) as FakeChild;
  /** The gaps between successive probes of `id` from `since` on. */
  const gaps = (id: string, since = 0) => {
    const times = probes.filter((p) => p.id === id && p.at >= since).map((p) => p.at);
    return times.slice(1).map((t, i) => t - (times[i] as number));
  };
  return { time, children, events, supervisor, current, ready, probes, gaps };
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
    const { time, supervisor, current } = harness({ ready });
    supervisor.start();
    expect(supervisor.status().map((s) => s.ready)).toEqual([false, false]);
    await time.advance(100);
    expect(supervisor.status().map((s) => s.ready)).toEqual([true, false]);
    current('coin-1').crash(null, 'SIGKILL');
    expect(supervisor.status()[0]).toMatchObject({
      ready: false,
      lastExit: { code: null, signal: 'SIGKILL' },
    });
  });

  it('probes every 100 ms until ready, then every 5 s; a restart probes fast again', async () => {
    const ready = new Set<string>();
    const { time, supervisor, current, gaps, probes } = harness({ ready });
    supervisor.start();
    await time.advance(1_000);
    // Not ready: ten probes in the first second, the first 100 ms after the start.
    expect(probes.filter((p) => p.id === 'coin-1').map((p) => p.at - 1_000_000)).toEqual([
      100, 200, 300, 400, 500, 600, 700, 800, 900, 1_000,
    ]);
    ready.add('coin-1');
    await time.advance(100);
    expect(supervisor.status()[0]?.ready).toBe(true);
    const readySince = time.now;
    await time.advance(25_000);
    expect(gaps('coin-1', readySince)).toEqual([5_000, 5_000, 5_000, 5_000, 5_000]);
    // The other one is still not ready: still probed every 100 ms.
    expect(new Set(gaps('coin-2', readySince))).toEqual(new Set([100]));

    current('coin-1').crash(1);
    ready.delete('coin-1');
    const crashedAt = time.now;
    await time.advance(250 + 300);
    // No probe of a process that is gone; its successor is probed fast from its start.
    const after = probes.filter((p) => p.id === 'coin-1' && p.at > crashedAt).map((p) => p.at - crashedAt);
    expect(after).toEqual([350, 450, 550]);
    expect(supervisor.status()[0]).toMatchObject({ ready: false, restarts: 1 });
    ready.add('coin-1');
    await time.advance(100);
    expect(supervisor.status()[0]).toMatchObject({ ready: true, restarts: 1 });
  });

  it('notices a ready instance that stops answering at its next probe, then probes it fast', async () => {
    const ready = new Set(['coin-1']);
    const { time, supervisor, gaps } = harness({ ready });
    supervisor.start();
    await time.advance(100);
    ready.delete('coin-1');
    const since = time.now;
    await time.advance(4_999);
    expect(supervisor.status()[0]?.ready).toBe(true);
    await time.advance(1);
    expect(supervisor.status()[0]?.ready).toBe(false);
    await time.advance(300);
    expect(gaps('coin-1', since)).toEqual([5_000, 100, 100, 100]);
  });

  it('takes both probe intervals as options', async () => {
    const ready = new Set(['coin-1']);
    const { time, supervisor, gaps } = harness({ ready, probeIntervalMs: 40, readyProbeIntervalMs: 300 });
    supervisor.start();
    await time.advance(1_000);
    expect(gaps('coin-1')).toEqual([300, 300, 300]);
    expect(new Set(gaps('coin-2'))).toEqual(new Set([40]));
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

  describe('a process hosting several members', () => {
    const proxies = ['coin-1-proxy', 'coin-2-proxy', 'like-1-proxy'];
    const withHost = (options: Partial<SupervisorOptions> & { ready?: Set<string> } = {}) =>
      harness({ instances: [spec('coin-1'), host('fault-proxies', proxies)], ...options });

    it('lists each member as a row of its own, sharing the process’s pid, state and restarts', async () => {
      const ready = new Set(['coin-1', 'coin-1-proxy', 'like-1-proxy']);
      const { time, supervisor, children } = withHost({ ready });
      supervisor.start();
      expect(children['fault-proxies']).toHaveLength(1);
      expect(supervisor.ids()).toEqual(['coin-1', ...proxies]);
      await time.advance(100);
      expect(supervisor.status()).toEqual([
        expect.objectContaining({ id: 'coin-1', service: 'coin', pid: 100, ready: true }),
        ...proxies.map((id) =>
          expect.objectContaining({
            id,
            service: 'fault-proxy',
            url: `http://127.0.0.1/${id}`,
            pid: 101,
            state: 'running',
            restarts: 0,
            lastExit: null,
            // Each member's readiness is its own probe's.
            ready: id !== 'coin-2-proxy',
          }),
        ),
      ]);
    });

    it('waits for every member to be ready, naming those that are not', async () => {
      const ready = new Set(['coin-1', 'coin-1-proxy']);
      const { time, supervisor } = withHost({ ready });
      supervisor.start();
      const progress: string[] = [];
      const waiting = supervisor.whenReady({
        timeoutMs: 5_000,
        onProgress: (n, total, left) => progress.push(`${n}/${total} ${left.join(',')}`),
      });
      await time.advance(150);
      ready.add('coin-2-proxy');
      ready.add('like-1-proxy');
      await time.advance(300);
      await expect(waiting).resolves.toEqual({ ok: true });
      expect(progress).toEqual([
        '0/4 coin-1,coin-1-proxy,coin-2-proxy,like-1-proxy',
        '2/4 coin-2-proxy,like-1-proxy',
        '4/4 ',
      ]);

      const late = withHost({ ready: new Set(['coin-1', 'coin-1-proxy']) });
      late.supervisor.start();
      const never = late.supervisor.whenReady({ timeoutMs: 1_000 });
      await late.time.advance(1_100);
      await expect(never).resolves.toEqual({
        ok: false,
        reason: 'timeout',
        notReady: ['coin-2-proxy', 'like-1-proxy'],
      });
    });

    it('kills the host for any member’s id: every member goes down and comes back, one restart each', async () => {
      const ready = new Set(['coin-1', ...proxies]);
      const { time, supervisor, current, children, events } = withHost({ ready });
      supervisor.start();
      await time.advance(100);
      expect(supervisor.status().every((s) => s.ready)).toBe(true);

      expect(supervisor.kill('coin-2-proxy')).toBe('killed');
      expect(current('fault-proxies').signals).toEqual(['SIGKILL']);
      await flush();
      const down = supervisor.status().slice(1);
      expect(down.every((s) => s.state === 'backoff' && !s.ready && s.pid === null)).toBe(true);
      expect(down.every((s) => s.lastExit?.signal === 'SIGKILL')).toBe(true);
      expect(supervisor.kill('like-1-proxy')).toBe('not-running');
      // The exit is the process's, once; each member's readiness went down on its own row.
      expect(events.filter((e) => e.type === 'exit').map((e) => e.id)).toEqual(['fault-proxies']);
      expect(events.filter((e) => e.type === 'ready' && !e.ready).map((e) => e.id)).toEqual(proxies);

      await time.advance(250 + 100);
      expect(children['fault-proxies']).toHaveLength(2);
      expect(supervisor.status()).toEqual([
        expect.objectContaining({ id: 'coin-1', restarts: 0, pid: 100, lastExit: null }),
        ...proxies.map((id) => expect.objectContaining({ id, restarts: 1, pid: 102, ready: true })),
      ]);
      // The host's own id works too; an id it does not have does not.
      expect(supervisor.kill('fault-proxies')).toBe('killed');
      expect(supervisor.kill('coin-3-proxy')).toBe('unknown');
    });

    it('refuses a member id used twice', () => {
      expect(
        () => new Supervisor({ instances: [spec('coin-1'), host('fault-proxies', ['coin-1'])] }),
      ).toThrow('duplicate instance id coin-1');
    });
  });
});

describe('probeReady', () => {
  it('is ready on 200 from /readyz only, and not when nothing listens', async () => {
    let status = 200;
    const paths: string[] = [];
    const server = createServer((req, res) => {
      paths.push(req.url ?? '');
      res.writeHead(status).end('{}');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      expect(await probeReady(url)).toBe(true);
      expect(await probeReady(url)).toBe(true);
      status = 503;
      expect(await probeReady(url)).toBe(false);
      expect(paths).toEqual(['/readyz', '/readyz', '/readyz']);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
    expect(await probeReady(url)).toBe(false);
  });
});
