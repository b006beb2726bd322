import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type FakeInjector, startFakeInjector } from '../__fixtures__/fake-injector.ts';
import type { ProxyStats } from '../admin-client.ts';
import { leaseBody } from '../faults/injectors/lease.ts';
import {
  observedErrors,
  observedLatency,
  observedLoss,
  RestartSafeCounter,
  readingOf,
  tallyOf,
} from '../faults/readings.ts';
import { startStandInSupervisor } from '../local/__fixtures__/stand-in-supervisor.ts';
import { type ControlServer, type LabStatus, startControlServer } from '../local/control-server.ts';
import { type LabState, writeState } from '../local/state.ts';
import type { InstanceStatus, KillResult } from '../local/supervisor.ts';
import { parsePromText } from '../prom-text.ts';
import type { Fault } from './experiment.ts';
import { faultsOf } from './faults.ts';
import { createLocalTarget } from './local-target.ts';
import type { Target } from './target.ts';

function stats(latency: { count: number; meanMs: number; p50Ms: number; p95Ms: number }, loss = [0, 0]) {
  return {
    since: 0,
    until: 1,
    connections: { accepted: 0, active: 0, upstreamFailed: 0 },
    bytes: { upstream: 0, downstream: 0 },
    latency: { ...latency, p99Ms: latency.p95Ms, maxMs: latency.p95Ms },
    loss: {
      segments: { rolls: loss[0] ?? 0, lost: loss[1] ?? 0, share: null },
      syns: { rolls: 0, lost: 0, share: null },
      addedMs: 0,
      capped: 0,
    },
    reset: { rolls: 0, reset: 0, share: null },
  } satisfies ProxyStats;
}

describe('RestartSafeCounter', () => {
  it('never goes back when the process behind the counter restarts', () => {
    const counter = new RestartSafeCounter();
    expect(counter.update(3, 100)).toBe(3);
    expect(counter.update(5, 100)).toBe(5);
    // A new process (another start time) counts from zero: the old one's 5 are kept.
    expect(counter.update(1, 200)).toBe(6);
    expect(counter.update(4, 200)).toBe(9);
    // A new process that already counted more than the old one's last reading: told by its start time.
    expect(counter.update(7, 300)).toBe(16);
    // Same start time but fewer: a restart within the same second.
    expect(counter.update(2, 300)).toBe(18);
    expect(counter.total()).toBe(18);
  });
});

describe('readings and calibration', () => {
  it('reads recovered panics, injected errors and non-infra requests from /metrics', () => {
    const reading = readingOf(
      parsePromText(
        [
          'process_start_time_seconds{service="like",instance="like-1"} 1700000000',
          'worker_panics_recovered_total{task="refresh-counter"} 4',
          'worker_panics_recovered_total{task="other"} 1',
          'chaos_injected_total{kind="http-error"} 9',
          'chaos_injected_total{kind="worker-panic"} 5',
          'http_server_request_duration_seconds_count{method="GET",route="/likes/:aid",status="200"} 11',
          'http_server_request_duration_seconds_count{method="GET",route="unmatched",status="503"} 9',
          'http_server_request_duration_seconds_count{method="GET",route="/readyz",status="200"} 300',
          'http_server_request_duration_seconds_count{method="PUT",route="/__chaos/faults/:id",status="201"} 1',
        ].join('\n'),
      ),
    );
    expect(reading).toEqual({ process: 1_700_000_000, panicsRecovered: 5, injectedErrors: 9, requests: 20 });
  });

  it('latency: the mean added per chunk over the fault windows, and the jitter when the windows are its own', () => {
    const fresh = { latencyCount: 0, latencySumMs: 0, lossRolls: 0, lossLost: 0 };
    const observed = observedLatency([
      { now: stats({ count: 10, meanMs: 400, p50Ms: 400, p95Ms: 418 }), base: fresh },
      { now: stats({ count: 30, meanMs: 404, p50Ms: 404, p95Ms: 422 }), base: fresh },
    ]);
    expect(observed).toEqual({ addedLatencyMs: 403, samples: 40, jitterMs: 20 });
    // A window shared with an earlier fault: its figures are subtracted, and no jitter is told.
    const shared = observedLatency([
      {
        now: stats({ count: 20, meanMs: 250, p50Ms: 300, p95Ms: 320 }),
        base: tallyOf(stats({ count: 10, meanMs: 100, p50Ms: 0, p95Ms: 0 })),
      },
    ]);
    expect(shared).toEqual({ addedLatencyMs: 400, samples: 10 });
    expect(
      observedLatency([{ now: stats({ count: 0, meanMs: 0, p50Ms: 0, p95Ms: 0 }), base: fresh }]),
    ).toEqual({
      samples: 0,
    });
  });

  it('loss: lost transmissions over all rolled; http-error: injected over requests, restarts counted afresh', () => {
    const zero = { latencyCount: 0, latencySumMs: 0, lossRolls: 0, lossLost: 0 };
    const lat = { count: 0, meanMs: 0, p50Ms: 0, p95Ms: 0 };
    expect(
      observedLoss([
        { now: stats(lat, [100, 30]), base: zero },
        { now: stats(lat, [60, 20]), base: { ...zero, lossRolls: 20, lossLost: 5 } },
      ]),
    ).toEqual({ lossRate: 0.3214, samples: 140 });
    const reading = (process: number, injectedErrors: number, requests: number) => ({
      process,
      panicsRecovered: 0,
      injectedErrors,
      requests,
    });
    expect(
      observedErrors([
        { now: reading(1, 30, 110), base: reading(1, 10, 50) },
        // restarted since the injection: everything it counted is in the window
        { now: reading(2, 5, 20), base: reading(1, 40, 90) },
      ]),
    ).toEqual({ errorRate: 0.3125, samples: 80 });
    expect(observedErrors([{ now: reading(1, 0, 5), base: reading(1, 0, 5) }])).toEqual({ samples: 0 });
  });

  it('turns each fault into its injector lease body; kill has none', () => {
    const on = { service: 'coin' as const, instances: [] };
    expect(leaseBody({ ...on, kind: 'latency', delayMs: 400, jitterMs: 20, requestShare: 0.5 }, 900)).toEqual(
      {
        kind: 'latency',
        params: { delayMs: 400, jitterMs: 20, requestShare: 0.5 },
        leaseMs: 900,
      },
    );
    expect(leaseBody({ ...on, kind: 'loss', percent: 30 }, 900)?.params).toEqual({ percent: 30 });
    expect(leaseBody({ ...on, kind: 'http-error', status: 503, percent: 50 }, 900)?.params).toEqual({
      status: 503,
      percent: 50,
    });
    expect(leaseBody({ ...on, kind: 'worker-panic', percent: 100 }, 900)?.kind).toBe('worker-panic');
    expect(() => leaseBody({ ...on, kind: 'kill' }, 900)).toThrow(/kill is not a lease/);
  });
});

/**
 * The target against a running "lab" of fakes: a stand-in supervisor process (so that the
 * state file counts as a running lab), a real control server with a scripted status, and
 * fake agents and proxies for coin-1, coin-2 and like-1.
 */
describe('the local target on a running lab', () => {
  let supervisor: Awaited<ReturnType<typeof startStandInSupervisor>>;
  let home: string;
  let control: ControlServer;
  let agents: Record<string, FakeInjector>;
  let proxies: Record<string, FakeInjector>;
  let restarts: Record<string, number>;
  let kills: string[];
  let target: Target;
  let said: string[];

  const latency = (instances: string[] = []): Fault => ({
    kind: 'latency',
    service: 'coin',
    instances,
    delayMs: 300,
    jitterMs: 0,
    requestShare: 0.5,
  });

  beforeAll(async () => {
    supervisor = await startStandInSupervisor();
  });
  afterAll(async () => {
    await supervisor.stop();
  });

  beforeEach(async () => {
    home = mkdtempSync(path.join(tmpdir(), 'chaos-lab-local-target-'));
    const ids = ['coin-1', 'coin-2', 'like-1'];
    agents = {};
    proxies = {};
    for (const id of ids) {
      agents[id] = await startFakeInjector('agent', id);
      proxies[id] = await startFakeInjector('proxy', `${id}-proxy`);
    }
    restarts = { 'coin-1': 0, 'coin-2': 0, 'like-1': 0 };
    kills = [];
    const instanceStatus = (id: string): InstanceStatus => ({
      id,
      service: id.replace(/-\d+$/, ''),
      url: agents[id]?.url ?? '',
      pid: 1,
      state: 'running',
      ready: true,
      restarts: restarts[id] ?? 0,
      lastExit: null,
      nextStartAt: null,
    });
    control = await startControlServer({
      port: 0,
      host: '127.0.0.1',
      token: 'admin-token-0123456789',
      target: {
        status: (): LabStatus => ({
          pid: supervisor.pid,
          startedAt: '',
          trust: 'half',
          workerRecovery: true,
          gateways: {},
          instances: ids.map(instanceStatus),
          proxies: ids.map((id) => ({
            ...instanceStatus(`${id}-proxy`),
            fronts: id,
            dataUrl: 'http://127.0.0.1:1',
          })),
        }),
        kill: (id): KillResult => {
          kills.push(id);
          if (id === 'coin-2') return 'not-running';
          return ids.includes(id) ? 'killed' : 'unknown';
        },
        ids: () => ids,
        shutdown: () => {},
      },
    });
    const state: LabState = {
      version: 1,
      pid: supervisor.pid,
      startedAt: '',
      portBase: 18_000,
      controlUrl: control.url,
      adminToken: 'admin-token-0123456789',
      trust: { mode: 'half', key: 'trust-key-0123456789' },
      workerRecovery: true,
      gateways: {
        naive: 'http://127.0.0.1:1',
        parallel: 'http://127.0.0.1:2',
        resilient: 'http://127.0.0.1:3',
      },
      instances: ids.map((id) => ({ id, service: id.replace(/-\d+$/, ''), url: agents[id]!.url, port: 1 })),
      proxies: ids.map((id) => ({
        id: `${id}-proxy`,
        instance: id,
        service: id.replace(/-\d+$/, ''),
        dataUrl: 'http://127.0.0.1:1',
        adminUrl: proxies[id]!.url,
      })),
      logDir: path.join(home, 'logs'),
    };
    writeState(home, state);
    said = [];
    target = createLocalTarget({ home, progress: (line) => said.push(line) });
    await target.prepare((line) => said.push(line), new AbortController().signal);
  });

  afterEach(async () => {
    await target.release();
    await control.close();
    await Promise.all([...Object.values(agents), ...Object.values(proxies)].map((f) => f.close()));
    rmSync(home, { recursive: true, force: true });
  });

  it('uses the running lab, and leaves it running at release', async () => {
    expect(said).toEqual([
      expect.stringMatching(
        /^using the lab already running in .* \(supervisor pid \d+, gateways from port 18080\); it stays up after the run$/,
      ),
    ]);
    await target.release();
    expect(said).toHaveLength(1);
    expect(kills).toEqual([]);
  });

  it('puts latency on the proxies, opening a fresh statistics window unless another fault of the run is there', async () => {
    const first = await faultsOf(target).inject(latency(), 'lat-a', 5_000);
    expect(first.map((a) => `${a.instance} ${a.injector} ${a.id}`)).toEqual([
      'coin-1 fault-proxy lat-a',
      'coin-2 fault-proxy lat-a',
    ]);
    expect(proxies['coin-1']!.calls).toEqual(['DELETE /__chaos/stats', 'PUT /__chaos/faults/lat-a']);
    expect(agents['coin-1']!.calls).toEqual([]);
    proxies['coin-1']!.stats = stats({ count: 2, meanMs: 300, p50Ms: 300, p95Ms: 300 });
    await faultsOf(target).inject(
      { kind: 'loss', service: 'coin', instances: ['coin-1'], percent: 10 },
      'loss-b',
      5_000,
    );
    expect(proxies['coin-1']!.calls.slice(2)).toEqual(['GET /__chaos/stats', 'PUT /__chaos/faults/loss-b']);
    // Once removed, the next fault opens a fresh window again.
    await faultsOf(target).remove(first);
    proxies['coin-2']!.calls.length = 0;
    await faultsOf(target).inject(latency(['coin-2']), 'lat-c', 5_000);
    expect(proxies['coin-2']!.calls[0]).toBe('DELETE /__chaos/stats');
  });

  it('takes an http-error off again when the agents cannot be read once it is on', async () => {
    agents['like-1']!.refuseMetrics = true;
    await expect(
      faultsOf(target).inject(
        { kind: 'http-error', service: 'like', instances: [], status: 503, percent: 100 },
        'err',
        5_000,
      ),
    ).rejects.toThrow(/like-1/);
    expect(agents['like-1']!.calls).toEqual([
      'PUT /__chaos/faults/err',
      'GET /metrics',
      'DELETE /__chaos/faults/err',
    ]);
    expect(agents['like-1']!.faults.size).toBe(0);
  });

  it('puts http-error and worker-panic on the agents, reading their metrics for http-error once the lease is on', async () => {
    agents['like-1']!.metrics =
      'chaos_injected_total{kind="http-error"} 2\nhttp_server_request_duration_seconds_count{route="/likes/:aid"} 10\n';
    const applied = await faultsOf(target).inject(
      { kind: 'http-error', service: 'like', instances: [], status: 503, percent: 50 },
      'err',
      5_000,
    );
    expect(applied.map((a) => a.injector)).toEqual(['fault-agent']);
    expect(agents['like-1']!.calls).toEqual(['PUT /__chaos/faults/err', 'GET /metrics']);
    expect(proxies['like-1']!.calls).toEqual([]);
    agents['like-1']!.metrics =
      'chaos_injected_total{kind="http-error"} 7\nhttp_server_request_duration_seconds_count{route="/likes/:aid"} 20\n';
    expect(await faultsOf(target).observe(applied)).toEqual({ errorRate: 0.5, samples: 10 });
    await faultsOf(target).inject(
      { kind: 'worker-panic', service: 'coin', instances: [], percent: 100 },
      'panic',
      5_000,
    );
    expect(agents['coin-2']!.faults.get('panic')).toMatchObject({
      kind: 'worker-panic',
      params: { percent: 100 },
    });
  });

  it('injects on every instance or none: a refusal rolls back the others', async () => {
    proxies['coin-2']!.refusePuts = true;
    await expect(faultsOf(target).inject(latency(), 'lat', 5_000)).rejects.toThrow(
      /^injecting latency lat on coin: coin-2-proxy refused PUT \/__chaos\/faults\/lat: 400 INVALID_FAULT/,
    );
    expect(proxies['coin-1']!.faults.size).toBe(0);
    await expect(faultsOf(target).inject(latency(['coin-7']), 'lat', 5_000)).rejects.toThrow(
      'no instance coin-7 of coin in the local lab; it has coin-1, coin-2',
    );
  });

  it('renews through a restarting instance, but not through a refusal', async () => {
    const applied = await faultsOf(target).inject(latency(), 'lat', 5_000);
    await proxies['coin-2']!.close();
    await faultsOf(target).renew(applied, 9_000);
    expect(proxies['coin-1']!.faults.get('lat')?.leaseMs).toBe(9_000);
    proxies['coin-1']!.refusePuts = true;
    await expect(faultsOf(target).renew(applied, 9_000)).rejects.toThrow(
      /renewing the fault leases: coin-1-proxy refused/,
    );
    await faultsOf(target).remove(applied);
    expect(proxies['coin-1']!.faults.size).toBe(0);
  });

  it('kills through the control API, where an instance already down is fine; kill has no lease to renew or remove', async () => {
    const applied = await faultsOf(target).inject(
      { kind: 'kill', service: 'coin', instances: [] },
      'k',
      5_000,
    );
    expect(applied.map((a) => `${a.instance} ${a.injector}`)).toEqual([
      'coin-1 supervisor',
      'coin-2 supervisor',
    ]);
    expect(kills).toEqual(['coin-1', 'coin-2']);
    await faultsOf(target).remove(applied);
    await faultsOf(target).renew(applied, 5_000);
  });

  it('counts restarts from the supervisor and recovered panics from the instances, across restarts', async () => {
    agents['coin-1']!.metrics = 'process_start_time_seconds 100\nworker_panics_recovered_total{task="t"} 4\n';
    agents['coin-2']!.metrics = 'process_start_time_seconds 100\nworker_panics_recovered_total{task="t"} 1\n';
    expect((await target.counters()).coin).toEqual({ restarts: 0, panicsRecovered: 5 });
    restarts['coin-1'] = 1;
    agents['coin-1']!.metrics = 'process_start_time_seconds 160\nworker_panics_recovered_total{task="t"} 2\n';
    await agents['coin-2']!.close(); // down right now: its last count stands
    const now = await target.counters();
    expect(now.coin).toEqual({ restarts: 1, panicsRecovered: 7 });
    expect(now.like).toEqual({ restarts: 0, panicsRecovered: 0 });
    expect(now.account).toEqual({ restarts: 0, panicsRecovered: 0 });
  });

  it('counts each fault proxy’s restarts apart, by the instance it stands in front of', async () => {
    restarts['coin-1-proxy'] = 2;
    expect(await target.proxyRestarts?.()).toEqual({
      'coin-1': { restarts: 2, lastExitAt: null },
      'coin-2': { restarts: 0, lastExitAt: null },
      'like-1': { restarts: 0, lastExitAt: null },
    });
    // The instances' own restarts leave them alone.
    expect((await target.counters()).coin.restarts).toBe(0);
  });

  it('audits every agent and proxy, settings overrides included, and clears them all', async () => {
    await faultsOf(target).inject(latency(['coin-1']), 'lat', 5_000);
    await faultsOf(target).applySettings({ workerRecovery: false }, 5_000, 'variant-off');
    expect(await faultsOf(target).audit()).toEqual([
      {
        instance: 'coin-1',
        injector: 'fault-agent',
        id: 'variant-off',
        kind: 'settings (workerRecovery off)',
      },
      {
        instance: 'coin-2',
        injector: 'fault-agent',
        id: 'variant-off',
        kind: 'settings (workerRecovery off)',
      },
      {
        instance: 'like-1',
        injector: 'fault-agent',
        id: 'variant-off',
        kind: 'settings (workerRecovery off)',
      },
      { instance: 'coin-1', injector: 'fault-proxy', id: 'lat', kind: 'latency' },
    ]);
    await faultsOf(target).clearAll();
    expect(await faultsOf(target).audit()).toEqual([]);
    expect(agents['like-1']!.calls).toContain('DELETE /__chaos/faults');
    expect(proxies['like-1']!.calls).toContain('DELETE /__chaos/faults');
  });
});

describe('watching the local lab during a run', () => {
  it('hears that the supervisor is gone, once', async () => {
    const stand = await startStandInSupervisor();
    const home = mkdtempSync(path.join(tmpdir(), 'chaos-lab-watch-'));
    try {
      writeState(home, {
        version: 1,
        pid: stand.pid,
        startedAt: '',
        portBase: 18_000,
        controlUrl: 'http://127.0.0.1:1',
        adminToken: 'admin-token-0123456789',
        trust: { mode: 'half', key: 'trust-key-0123456789' },
        workerRecovery: true,
        gateways: {
          naive: 'http://127.0.0.1:1',
          parallel: 'http://127.0.0.1:2',
          resilient: 'http://127.0.0.1:3',
        },
        instances: [],
        proxies: [],
        logDir: path.join(home, 'logs'),
      });
      const target = createLocalTarget({ home });
      await target.prepare(() => {}, new AbortController().signal, { start: false });
      const heard: string[] = [];
      const lost = new Promise<void>((resolve) => {
        target.watch?.((why) => {
          heard.push(why);
          resolve();
        });
      });
      await stand.stop();
      await lost;
      await new Promise((resolve) => setTimeout(resolve, 1_200));
      expect(heard).toEqual([`its supervisor (pid ${stand.pid}) is gone`]);
      await target.release();
    } finally {
      await stand.stop();
      rmSync(home, { recursive: true, force: true });
    }
  }, 15_000);
});
