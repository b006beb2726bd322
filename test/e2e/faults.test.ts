/**
 * A 300 ms http-delay on coin, applied with the real CLI: naive and parallel wait for it,
 * resilient answers within its weak-dependency deadline with coin degraded, and when the
 * lease runs out everything is fast again. The medians are printed for the issue note.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STRATEGIES, type Strategy } from '../../services/topology.ts';
import {
  cli,
  downAndCheck,
  eventually,
  freePortBase,
  makeHome,
  median,
  pidsOf,
  removeHome,
  state,
  timedGet,
  upDetached,
} from './helpers.ts';

const DELAY_MS = 300;
/** Per gateway and phase: few enough that the fault phase fits well inside the 10 s lease on a busy machine. */
const REQUESTS = 5;

interface Sample {
  readonly ms: number;
  readonly status: number;
  readonly degraded: string | null;
}

const measured: Record<string, Record<Strategy, Sample[]>> = {};

/**
 * `REQUESTS` sequential pages from each gateway, each for an aid not asked before so that no
 * answer comes from the resilient gateway's cache. Without a fault the gateways are sampled
 * one after another, so they do not compete for the machine's two cores; under the fault
 * they are sampled side by side, as the phase must fit inside the 10 s lease (they spend it
 * waiting for coin, not computing).
 */
let nextAid = 100;
async function sample(home: string, phase: string, sideBySide = false): Promise<Record<Strategy, Sample[]>> {
  const s = state(home);
  const one = async (strategy: Strategy) => {
    const aids = Array.from({ length: REQUESTS }, () => nextAid++);
    const samples: Sample[] = [];
    for (const aid of aids) {
      const page = await timedGet(`${s.gateways[strategy]}/api/video/${aid}`);
      samples.push({ ms: page.ms, status: page.status, degraded: page.headers.get('x-degraded') });
    }
    return [strategy, samples] as const;
  };
  const perStrategy = [];
  if (sideBySide) perStrategy.push(...(await Promise.all(STRATEGIES.map(one))));
  else for (const strategy of STRATEGIES) perStrategy.push(await one(strategy));
  const result = Object.fromEntries(perStrategy) as Record<Strategy, Sample[]>;
  measured[phase] = result;
  return result;
}

const medianOf = (samples: readonly Sample[]) => median(samples.map((x) => x.ms));

describe('http-delay on coin through the CLI', () => {
  const home = makeHome();
  const seen = new Set<number>();
  let baseline: Record<Strategy, Sample[]>;

  beforeAll(async () => {
    const status = await upDetached(home, await freePortBase(), ['--log-level', 'warn']);
    for (const pid of pidsOf(status)) seen.add(pid);
    // A warm-up so that first-request costs (JIT, connection pools) stay out of the baseline.
    await sample(home, 'warm-up');
    baseline = await sample(home, 'baseline');
  });

  afterAll(async () => {
    const rows = Object.entries(measured)
      .filter(([phase]) => phase !== 'warm-up')
      .map(
        ([phase, byStrategy]) =>
          `${phase.padEnd(16)} ${STRATEGIES.map((st) => `${st} ${medianOf(byStrategy[st]).toFixed(1)} ms`).join('  ')}`,
      );
    console.log(`median page latency, ${REQUESTS} sequential requests per gateway:\n${rows.join('\n')}`);
    const down = await downAndCheck(home, [...seen]);
    removeHome(home);
    expect(down.survivors).toEqual([]);
  });

  it('refuses an unknown service and a bad duration before touching the lab', async () => {
    const unknown = await cli(home, ['fault', 'add', 'http-delay', 'nosuch', '--delay', '300ms']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(
      /'nosuch' is invalid for argument 'service'\. Allowed choices are account, archive/,
    );
    const bad = await cli(home, ['fault', 'add', 'http-delay', 'coin', '--delay', '300msec']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(
      /'--delay <duration>' argument '300msec' is invalid.*e\.g\. 300ms, 1\.5s, 20s or 2m/,
    );
    const list = await cli(home, ['fault', 'list', '--json']);
    expect(JSON.parse(list.stdout).faults).toEqual([]);
  });

  it('slows naive and parallel by the delay, while resilient degrades coin and stays fast; then recovers', async () => {
    for (const strategy of STRATEGIES) {
      expect(baseline[strategy].every((x) => x.status === 200 && x.degraded === null)).toBe(true);
    }
    const add = await cli(home, [
      'fault',
      'add',
      'http-delay',
      'coin',
      '--delay',
      `${DELAY_MS}ms`,
      '--for',
      '10s',
    ]);
    expect(add.code, add.stderr).toBe(0);
    const faultId = /applied http-delay (cli-http-delay-[0-9a-f]{4})/.exec(add.stdout)?.[1];
    expect(faultId).toBeDefined();

    // The fault is on both coin instances, under one id, and nowhere else.
    const listed = await cli(home, ['fault', 'list', '--json']);
    expect(listed.code).toBe(0);
    const faults = JSON.parse(listed.stdout).faults as {
      instance: string;
      id: string;
      kind: string;
      expiresAt: number;
    }[];
    expect(faults.map((f) => f.instance).sort()).toEqual(['coin-1', 'coin-2']);
    expect(faults.every((f) => f.id === faultId && f.kind === 'http-delay')).toBe(true);
    const expiresAt = Math.max(...faults.map((f) => f.expiresAt));

    const during = await sample(home, 'coin +300ms', true);
    expect(Date.now(), 'the samples must be taken while the lease holds').toBeLessThan(expiresAt);
    for (const strategy of ['naive', 'parallel'] as const) {
      const samples = during[strategy];
      expect(samples.every((x) => x.status === 200 && x.degraded === null)).toBe(true);
      // Each page waits for coin, so none can be faster than the delay itself. (No assertion on
      // the difference of two noisy medians: on a shared machine it is not what the fault sets.)
      expect(Math.min(...samples.map((x) => x.ms))).toBeGreaterThanOrEqual(DELAY_MS);
    }
    const resilient = during.resilient;
    expect(resilient.every((x) => x.status === 200)).toBe(true);
    expect(resilient.every((x) => x.degraded?.split(',').includes('coin'))).toBe(true);
    expect(Math.max(...resilient.map((x) => x.ms))).toBeLessThan(DELAY_MS);

    // The lease runs out by itself (bounded wait), and nothing is left.
    const lastExpiry = Math.max(...faults.map((f) => f.expiresAt));
    await new Promise((r) => setTimeout(r, Math.max(0, lastExpiry - Date.now() + 100)));
    const after = await cli(home, ['fault', 'list', '--json']);
    expect(JSON.parse(after.stdout).faults).toEqual([]);
    const human = await cli(home, ['fault', 'list']);
    expect(human.stdout).toMatch(/^no faults active on 13 instances/);

    const recovered = await sample(home, 'after the lease');
    for (const strategy of ['naive', 'parallel'] as const) {
      expect(recovered[strategy].every((x) => x.status === 200 && x.degraded === null)).toBe(true);
    }
    expect(Math.max(...recovered.resilient.map((x) => x.ms))).toBeLessThan(DELAY_MS);
    // Resilient's breaker may still hold coin back for part of its window; it lets go soon.
    const s = state(home);
    await eventually(
      'a complete page from the resilient gateway',
      async () => {
        const page = await timedGet(`${s.gateways.resilient}/api/video/${nextAid++}`);
        return page.status === 200 && page.headers.get('x-degraded') === null ? page : undefined;
      },
      15_000,
      250,
    );
  });

  it('latency by the fault proxies: naive waits for it, resilient degrades coin; never on a gateway', async () => {
    const refused = await cli(home, ['fault', 'add', 'latency', 'gateway', '--delay', '300ms']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(
      /^chaos-lab: latency cannot be applied to the gateways: network faults are injected by the fault proxies/,
    );
    const add = await cli(home, [
      'fault',
      'add',
      'latency',
      'coin',
      '--delay',
      `${DELAY_MS}ms`,
      '--for',
      '1m',
      '--id',
      'coin-net',
    ]);
    expect(add.code, add.stderr).toBe(0);
    expect(add.stdout).toMatch(
      /^applied latency coin-net \(delayMs=300 jitterMs=0 requestShare=0.5\) on coin-1, coin-2 for 1m, by their fault proxies\n/,
    );
    const listed = JSON.parse((await cli(home, ['fault', 'list', '--json'])).stdout).faults as {
      instance: string;
      injector: string;
      kind: string;
    }[];
    expect(listed.map((f) => `${f.instance} ${f.injector} ${f.kind}`).sort()).toEqual([
      'coin-1 fault-proxy latency',
      'coin-2 fault-proxy latency',
    ]);
    const human = await cli(home, ['fault', 'list', 'coin']);
    expect(human.stdout).toMatch(
      /coin-1\s+coin-net\s+latency\s+delayMs=300 jitterMs=0 requestShare=0.5\s+fault-proxy\s+\d/,
    );

    const during = await sample(home, 'coin +300ms (proxy)', true);
    expect(during.naive.every((x) => x.status === 200 && x.degraded === null)).toBe(true);
    expect(Math.min(...during.naive.map((x) => x.ms))).toBeGreaterThanOrEqual(DELAY_MS);
    expect(during.resilient.every((x) => x.status === 200 && x.degraded?.split(',').includes('coin'))).toBe(
      true,
    );
    expect(Math.max(...during.resilient.map((x) => x.ms))).toBeLessThan(DELAY_MS);

    const clear = await cli(home, ['fault', 'clear', 'coin', '--id', 'coin-net']);
    expect(clear.code).toBe(0);
    expect(clear.stdout).toMatch(/^cleared coin-net on coin-1, coin-2\n/);
    expect(JSON.parse((await cli(home, ['fault', 'list', '--json'])).stdout).faults).toEqual([]);
  });

  it('clears a fault before its lease ends', async () => {
    const add = await cli(home, [
      'fault',
      'add',
      'http-error',
      'like',
      '--status',
      '503',
      '--percent',
      '100',
      '--for',
      '1m',
    ]);
    expect(add.code, add.stderr).toBe(0);
    const naive = state(home).gateways.naive;
    expect((await timedGet(`${naive}/api/video/${nextAid++}`)).status).toBeGreaterThanOrEqual(500);
    const clear = await cli(home, ['fault', 'clear', 'like']);
    expect(clear.code).toBe(0);
    expect(clear.stdout).toMatch(/^cleared 2 faults/);
    expect((await timedGet(`${naive}/api/video/${nextAid++}`)).status).toBe(200);
  });

  it('kills one instance by hand, as an experiment does: the supervisor restarts it', async () => {
    const pidOf = async (id: string) => {
      const out = await cli(home, ['status', '--json']);
      return (JSON.parse(out.stdout) as { instances: { id: string; pid: number | null }[] }).instances.find(
        (i) => i.id === id,
      )?.pid;
    };
    const before = await pidOf('coin-2');
    expect(before).toBeTypeOf('number');
    const kill = await cli(home, ['fault', 'add', 'kill', 'coin', '--instance', 'coin-2', '--id', 'crash']);
    expect(kill.code, kill.stderr).toBe(0);
    expect(kill.stdout).toBe('killed kill crash on coin-2\n');
    const status = await eventually(
      'coin-2 restarted and ready',
      async () => {
        const out = await cli(home, ['status', '--json']);
        const instance = (
          JSON.parse(out.stdout) as { instances: { id: string; restarts: number; ready: boolean }[] }
        ).instances.find((i) => i.id === 'coin-2');
        return instance && instance.restarts >= 1 && instance.ready ? instance : undefined;
      },
      30_000,
      500,
    );
    expect(status.restarts).toBeGreaterThanOrEqual(1);
    expect(await pidOf('coin-2')).not.toBe(before);
  });
});
