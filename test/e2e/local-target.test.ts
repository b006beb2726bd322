/**
 * The local target against a real lab that it starts itself (on a free port range, in a
 * temporary home): each fault kind goes to its injector and has its effect, the calibration
 * reads what the injectors did, the counters follow restarts and recovered panics, nothing
 * is left after removal, and the lab goes away with the target — at release(), and when the
 * process holding it is killed with SIGKILL.
 */

import { spawn } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lookupLab, REPO_ROOT } from '../../lab/local/state.ts';
import { faultsOf } from '../../lab/runner/faults.ts';
import { createLocalTarget } from '../../lab/runner/local-target.ts';
import type { AppliedFault, Target, TargetInfo } from '../../lab/runner/target.ts';
import { STRATEGIES } from '../../services/topology.ts';
import {
  alive,
  boundPorts,
  controlStatus,
  eventually,
  freePortBase,
  makeHome,
  median,
  pidsOf,
  removeHome,
  state,
  timedGet,
} from './helpers.ts';

const DELAY_MS = 300;
const LEASE_MS = 15_000;

function killAll(pids: readonly number[]): void {
  for (const pid of alive(pids)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone in the meantime
    }
  }
}

describe('the local target, on a lab it starts', () => {
  const home = makeHome();
  const seen = new Set<number>();
  const lines: string[] = [];
  let base = 0;
  let target: Target;
  let info: TargetInfo;
  let nextAid = 200;

  const page = (strategy: 'naive' | 'resilient') =>
    timedGet(`${info.gateways[strategy]}/api/video/${nextAid++}`);
  const remember = async () => {
    for (const pid of pidsOf(await controlStatus(home))) seen.add(pid);
  };

  beforeAll(async () => {
    base = await freePortBase();
    target = createLocalTarget({ home, portBase: base });
    info = await target.prepare((line) => lines.push(line), new AbortController().signal);
    await remember();
  });

  afterAll(async () => {
    // Whatever happened above, nothing may stay: release (idempotent), then make sure.
    await target.release();
    const survivors = alive([...seen]);
    killAll(survivors);
    removeHome(home);
    expect(survivors).toEqual([]);
  });

  it('prepare starts a lab, says so, and returns its gateways; every fault kind is supported', async () => {
    expect(lines[0]).toMatch(
      /^starting a local lab on 127\.0\.0\.1 ports \d+-\d+ .*it stops when this run ends$/,
    );
    expect(lines.at(-1)).toMatch(/^lab ready in [\d.]+m?s \(supervisor pid \d+\)$/);
    expect(info.name).toBe('local');
    expect(Object.keys(info.gateways).sort()).toEqual([...STRATEGIES].sort());
    expect(info.gateways.naive).toBe(`http://127.0.0.1:${base + 80}`);
    for (const kind of ['latency', 'loss', 'http-error', 'worker-panic', 'kill'] as const) {
      expect(target.unsupported(kind)).toBeUndefined();
    }
    const status = await controlStatus(home);
    expect(status.instances).toHaveLength(13);
    expect(status.proxies).toHaveLength(10);
    expect(await faultsOf(target).audit()).toEqual([]);
  });

  it('a second target on the same home uses the running lab, and leaves it running at release', async () => {
    const said: string[] = [];
    const other = createLocalTarget({ home });
    const found = await other.prepare((line) => said.push(line), new AbortController().signal);
    expect(found.gateways).toEqual(info.gateways);
    expect(said[0]).toMatch(/^using the lab already running in .*; it stays up after the run$/);
    await other.release();
    expect((await controlStatus(home)).pid).toBe(state(home).pid);
  });

  it('latency goes to the fault proxies: naive pages wait for it, and observe reports the delay added', async () => {
    const baseline: number[] = [];
    for (let i = 0; i < 3; i++) baseline.push((await page('naive')).ms);
    const applied = await faultsOf(target).inject(
      { kind: 'latency', service: 'coin', instances: [], delayMs: DELAY_MS, jitterMs: 0, requestShare: 0.5 },
      'e2e-latency',
      LEASE_MS,
    );
    expect(applied.map((a) => `${a.instance} ${a.injector} ${a.id}`)).toEqual([
      'coin-1 fault-proxy e2e-latency',
      'coin-2 fault-proxy e2e-latency',
    ]);
    expect((await faultsOf(target).audit()).map((f) => `${f.instance} ${f.injector} ${f.kind}`)).toEqual([
      'coin-1 fault-proxy latency',
      'coin-2 fault-proxy latency',
    ]);
    const during: number[] = [];
    for (let i = 0; i < 5; i++) {
      const answer = await page('naive');
      expect(answer.status).toBe(200);
      during.push(answer.ms);
    }
    await faultsOf(target).renew(applied, LEASE_MS);
    await faultsOf(target).remove(applied);
    const observed = await faultsOf(target).observe(applied);
    console.log(
      `naive median ${median(baseline).toFixed(1)} ms → ${median(during).toFixed(1)} ms under +${DELAY_MS} ms; observed ${JSON.stringify(observed)}`,
    );
    // What the mechanism guarantees, never a difference of two noisy samples (a shared machine
    // once made median(during) − median(baseline) 267 ms under a 300 ms delay): every page waits
    // for coin, so none is faster than the delay, and the proxies' own count and timing say
    // that each of the 5 pages (and nothing less than the delay) went through them.
    expect(Math.min(...during)).toBeGreaterThanOrEqual(DELAY_MS);
    expect(observed.samples).toBeGreaterThanOrEqual(5);
    expect(observed.addedLatencyMs).toBeGreaterThanOrEqual(DELAY_MS - 1);
    expect(await faultsOf(target).audit()).toEqual([]);
  });

  it('http-error goes to the fault agents, and observe reports the share of requests it hit', async () => {
    const applied = await faultsOf(target).inject(
      { kind: 'http-error', service: 'like', instances: [], status: 503, percent: 50 },
      'e2e-errors',
      LEASE_MS,
    );
    expect(applied.map((a) => `${a.instance} ${a.injector}`)).toEqual([
      'like-1 fault-agent',
      'like-2 fault-agent',
    ]);
    expect((await faultsOf(target).audit()).map((f) => `${f.instance} ${f.injector} ${f.id}`)).toEqual([
      'like-1 fault-agent e2e-errors',
      'like-2 fault-agent e2e-errors',
    ]);
    for (let i = 0; i < 40; i++) await page('naive');
    await faultsOf(target).remove(applied);
    const observed = await faultsOf(target).observe(applied);
    console.log(`http-error 50 % on like: observed ${JSON.stringify(observed)}`);
    expect(observed.samples).toBeGreaterThanOrEqual(40);
    expect(observed.errorRate).toBeGreaterThan(0.25);
    expect(observed.errorRate).toBeLessThan(0.75);
    expect(await faultsOf(target).audit()).toEqual([]);
  });

  it('worker-panic with recovery on: the recovered panics are counted', async () => {
    const before = await target.counters();
    const applied = await faultsOf(target).inject(
      { kind: 'worker-panic', service: 'archive', instances: [], percent: 100 },
      'e2e-panic',
      LEASE_MS,
    );
    for (let i = 0; i < 6; i++) expect((await page('naive')).status).toBe(200);
    const after = await eventually(
      'six more recovered panics on archive',
      async () => {
        const now = await target.counters();
        return now.archive.panicsRecovered >= before.archive.panicsRecovered + 6 ? now : undefined;
      },
      10_000,
      200,
    );
    await faultsOf(target).remove(applied);
    expect(after.archive.restarts).toBe(before.archive.restarts);
    expect(await faultsOf(target).audit()).toEqual([]);
  });

  it('settings are leases on every backend agent, listed by audit until cleared', async () => {
    await faultsOf(target).applySettings({ workerRecovery: false }, LEASE_MS, 'e2e-variant');
    const leftovers = await faultsOf(target).audit();
    expect(leftovers).toHaveLength(10);
    expect(leftovers[0]).toEqual({
      instance: 'account-1',
      injector: 'fault-agent',
      id: 'e2e-variant',
      kind: 'settings (workerRecovery off)',
    });
    await faultsOf(target).clearSettings();
    expect(await faultsOf(target).audit()).toEqual([]);
  });

  it('trust is a settings lease on every gateway and backend: a rogue call is served or refused by it', async () => {
    const rogue = () => target.rogueCall?.('coin', '/coins/1', AbortSignal.timeout(3_000));
    // The lab's own mode: half.
    expect(info.trust).toBe('half');
    expect(await rogue()).toEqual({ status: 401, reason: 'TRUST_MISSING' });

    await faultsOf(target).applySettings({ trust: 'zero' }, LEASE_MS, 'e2e-trust-zero');
    expect(await rogue()).toEqual({ status: 200 });
    expect((await page('naive')).status).toBe(200);

    await faultsOf(target).applySettings({ trust: 'full' }, LEASE_MS, 'e2e-trust-full');
    const leftovers = await faultsOf(target).audit();
    expect(leftovers).toHaveLength(13);
    expect(leftovers.find((l) => l.instance === 'gateway-naive')).toMatchObject({
      kind: 'settings (trust full)',
    });
    expect(await rogue()).toEqual({ status: 401, reason: 'TRUST_NEEDS_MTLS' });
    // Every gateway's calls now go over mutual TLS, through the fault proxies: pages still load.
    // Naive fails the page if any of its five calls fails, so its page is all five over TLS (the
    // resilient gateway may degrade a weak dependency whose first TLS handshake outlived its deadline).
    const naive = await page('naive');
    expect(naive.status).toBe(200);
    expect((naive.body as { degraded: string[] }).degraded).toEqual([]);
    expect((await page('resilient')).status).toBe(200);

    await faultsOf(target).clearSettings();
    expect(await faultsOf(target).audit()).toEqual([]);
    expect(await rogue()).toEqual({ status: 401, reason: 'TRUST_MISSING' });
  });

  it('kill goes through the supervisor: restarts rise, and the recovered panics never go back', async () => {
    const before = await target.counters();
    expect(before.archive.panicsRecovered).toBeGreaterThanOrEqual(6);
    const applied: AppliedFault[] = await faultsOf(target).inject(
      { kind: 'kill', service: 'archive', instances: [] },
      'e2e-kill',
      LEASE_MS,
    );
    expect(applied.map((a) => `${a.instance} ${a.injector}`)).toEqual([
      'archive-1 supervisor',
      'archive-2 supervisor',
    ]);
    // Down or coming back, the count read before is kept.
    expect((await target.counters()).archive.panicsRecovered).toBe(before.archive.panicsRecovered);
    await eventually(
      'archive-1 and archive-2 restarted and ready',
      async () => {
        const status = await controlStatus(home);
        const archives = status.instances.filter((i) => i.service === 'archive');
        return archives.every((i) => i.ready && i.restarts > 0) ? status : undefined;
      },
      30_000,
      250,
    );
    await remember();
    const after = await target.counters();
    expect(after.archive.restarts).toBe(before.archive.restarts + 2);
    // The new processes count from zero; the cumulative figure carries the old ones' counts.
    expect(after.archive.panicsRecovered).toBe(before.archive.panicsRecovered);
    expect(after.coin).toEqual(before.coin);
  });

  it('loss goes to the fault proxies, and observe reports roughly the share configured', async () => {
    // On vip, which nothing after this test calls: lost segments hold their connection back
    // for a while after the fault is removed, as retransmissions would.
    const applied = await faultsOf(target).inject(
      { kind: 'loss', service: 'vip', instances: [], percent: 50 },
      'e2e-loss',
      LEASE_MS,
    );
    expect(applied.every((a) => a.injector === 'fault-proxy')).toBe(true);
    const pages = await Promise.all(Array.from({ length: 10 }, () => page('resilient')));
    await new Promise((r) => setTimeout(r, 2_000));
    await faultsOf(target).remove(applied);
    const observed = await faultsOf(target).observe(applied);
    console.log(
      `loss 50 % on vip: observed ${JSON.stringify(observed)}; resilient statuses ${pages.map((p) => p.status).join(',')}`,
    );
    expect(observed.samples).toBeGreaterThanOrEqual(20);
    expect(observed.lossRate).toBeGreaterThan(0.25);
    expect(observed.lossRate).toBeLessThan(0.75);
    expect(await faultsOf(target).audit()).toEqual([]);
  });

  it('release stops the lab it started: no process, no port, no state file left', async () => {
    await remember();
    await target.release();
    expect(alive([...seen])).toEqual([]);
    expect(await boundPorts(base)).toEqual([]);
    expect(lookupLab(home).kind).toBe('none');
  });
});

describe('a runner killed with SIGKILL', () => {
  const home = makeHome();
  const seen = new Set<number>();

  afterAll(() => {
    const survivors = alive([...seen]);
    killAll(survivors);
    removeHome(home);
    expect(survivors).toEqual([]);
  });

  it('takes its lab with it: no process, no port and no fault is left', async () => {
    const base = await freePortBase();
    const runner = spawn(
      process.execPath,
      ['--import', 'tsx', path.join(REPO_ROOT, 'test', 'fixtures', 'local-target-runner.ts')],
      {
        cwd: REPO_ROOT,
        env: { ...process.env, CHAOS_LAB_HOME: home, PORT_BASE: String(base) },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    if (runner.pid) seen.add(runner.pid);
    let stdout = '';
    let stderr = '';
    runner.stdout.on('data', (chunk) => {
      stdout += chunk;
    });
    runner.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    try {
      await eventually(
        'the runner to inject its fault',
        () => (stdout.includes('"injected"') ? true : undefined),
        100_000,
        200,
      );
    } catch (err) {
      throw new Error(`${(err as Error).message}\nstderr:\n${stderr}`);
    }
    expect(JSON.parse(stdout.trim())).toEqual({ injected: ['coin-1', 'coin-2'] });
    const status = await controlStatus(home);
    const pids = pidsOf(status);
    for (const pid of pids) seen.add(pid);
    // The fault is there, on both of coin's proxies.
    const s = state(home);
    for (const proxy of (s.proxies ?? []).filter((p) => p.service === 'coin')) {
      const res = await fetch(`${proxy.adminUrl}/__chaos/faults`, {
        headers: { authorization: `Bearer ${s.adminToken}` },
      });
      expect(((await res.json()) as { faults: { id: string }[] }).faults.map((f) => f.id)).toEqual([
        'killed-runner-latency',
      ]);
    }

    const killedAt = Date.now();
    runner.kill('SIGKILL');
    await eventually(
      'every lab process to exit',
      () => (alive(pids).length === 0 ? true : undefined),
      20_000,
    );
    console.log(`the lab of a SIGKILLed runner was gone ${Date.now() - killedAt} ms after the kill`);
    // Nothing listens any more, so no injector holds a fault.
    expect(await boundPorts(base)).toEqual([]);
    expect(lookupLab(home).kind).toBe('none');
  });
});
