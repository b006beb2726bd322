import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { MAX_PROXY_FAULTS } from '../../services/fault-proxy/faults.ts';
import { type RunningFaultProxy, startFaultProxy } from '../../services/fault-proxy/proxy.ts';
import { type FakeInjector, startFakeInjector } from '../__fixtures__/fake-injector.ts';
import { CliError } from '../cli-error.ts';
import type { Io } from '../io.ts';
import { startStandInSupervisor } from '../local/__fixtures__/stand-in-supervisor.ts';
import { acquireRunLock } from '../local/run-lock.ts';
import { type LabState, writeState } from '../local/state.ts';
import { createLocalTarget } from '../runner/local-target.ts';
import { faultAddCommand, faultClearCommand, faultListCommand } from './fault.ts';

const local = (home: string) => createLocalTarget({ home });

/**
 * The network faults of `chaos-lab fault`: they go to the fault proxies in front of the
 * instances, never to the agents or to a gateway, and list/clear cover both injectors.
 * Against fake agents and proxies on loopback.
 */

let supervisor: Awaited<ReturnType<typeof startStandInSupervisor>>;
let home: string;
let fakes: FakeInjector[] = [];
let out = '';

const io: Io = {
  stdout: (t) => {
    out += t;
  },
  stderr: (t) => {
    out += t;
  },
  env: {},
};

beforeAll(async () => {
  supervisor = await startStandInSupervisor();
});
afterAll(async () => {
  await supervisor.stop();
});
beforeEach(() => {
  home = mkdtempSync(path.join(tmpdir(), 'chaos-lab-fault-'));
  out = '';
});
afterEach(async () => {
  await Promise.all(fakes.map((f) => f.close()));
  fakes = [];
  rmSync(home, { recursive: true, force: true });
});

/** A lab of coin-1, coin-2 (each with a proxy) and gateway-naive, all fakes. */
async function lab(withProxies = true, realProxies?: Record<'coin-1' | 'coin-2', RunningFaultProxy>) {
  const agents = {
    'coin-1': await startFakeInjector('agent', 'coin-1'),
    'coin-2': await startFakeInjector('agent', 'coin-2'),
    'gateway-naive': await startFakeInjector('agent', 'gateway-naive'),
  };
  const proxies = {
    'coin-1': await startFakeInjector('proxy', 'coin-1-proxy'),
    'coin-2': await startFakeInjector('proxy', 'coin-2-proxy'),
  };
  fakes.push(...Object.values(agents), ...Object.values(proxies));
  const state: LabState = {
    version: 1,
    pid: supervisor.pid,
    startedAt: '2025-01-01T00:00:00.000Z',
    portBase: 18_000,
    controlUrl: 'http://127.0.0.1:9',
    adminToken: 'admin-token-0123456789',
    trust: { mode: 'half', key: 'trust-key-0123456789' },
    workerRecovery: true,
    gateways: {
      naive: agents['gateway-naive'].url,
      parallel: 'http://127.0.0.1:2',
      resilient: 'http://127.0.0.1:3',
    },
    instances: Object.entries(agents).map(([id, fake]) => ({
      id,
      service: id.startsWith('gateway') ? 'gateway' : 'coin',
      url: fake.url,
      port: fake.port,
    })),
    ...(withProxies
      ? {
          proxies: Object.entries(proxies).map(([instance, fake]) => ({
            id: `${instance}-proxy`,
            instance,
            service: 'coin',
            dataUrl: 'http://127.0.0.1:1',
            adminUrl: realProxies?.[instance as 'coin-1' | 'coin-2'].adminUrl ?? fake.url,
          })),
        }
      : {}),
    logDir: path.join(home, 'logs'),
  };
  writeState(home, state);
  return { agents, proxies };
}

describe('chaos-lab fault add while a run holds the lab', () => {
  it('applies the fault, and says it will interfere with the run, naming it', async () => {
    const { proxies } = await lab();
    const held = acquireRunLock(home, {
      pid: process.pid,
      experiment: 'weak-dependency-latency',
      startedAt: new Date().toISOString(),
    });
    try {
      const code = await faultAddCommand(io, local(home), 'latency', 'coin', { delay: 300, leaseMs: 4_000 });
      expect(code).toBe(0);
      expect(out).toContain(`warning: a run of weak-dependency-latency (pid ${process.pid}, since`);
      expect(out).toContain(
        'holds this lab: this fault will interfere with its measurements and its verdict',
      );
      expect(proxies['coin-1'].faults.size).toBe(1);
    } finally {
      await held.release();
    }
    out = '';
    await faultAddCommand(io, local(home), 'latency', 'coin', { delay: 300, leaseMs: 4_000, id: 'after' });
    expect(out).not.toContain('warning');
  });
});

describe('chaos-lab fault with network faults', () => {
  it('puts latency on the proxies of the service, not on the agents', async () => {
    const { agents, proxies } = await lab();
    const code = await faultAddCommand(io, local(home), 'latency', 'coin', {
      delay: 300,
      jitter: 20,
      leaseMs: 4_000,
      id: 'slow-coin',
    });
    expect(code).toBe(0);
    expect(proxies['coin-1'].faults.get('slow-coin')).toMatchObject({
      kind: 'latency',
      params: { delayMs: 300, jitterMs: 20 },
      leaseMs: 4_000,
    });
    expect(proxies['coin-2'].faults.has('slow-coin')).toBe(true);
    expect(agents['coin-1'].calls).toEqual([]);
    expect(out).toMatch(
      /^applied latency slow-coin \(delayMs=300 jitterMs=20 requestShare=0.5\) on coin-1, coin-2 for 4s, by their fault proxies\n/,
    );
  });

  it('refuses a network fault on the gateways, and loss without --percent, before calling anyone', async () => {
    const { agents } = await lab();
    await expect(
      faultAddCommand(io, local(home), 'loss', 'gateway', { percent: 10, leaseMs: 1_000 }),
    ).rejects.toThrow(
      /loss cannot be applied to the gateways: network faults are injected by the fault proxies/,
    );
    await expect(faultAddCommand(io, local(home), 'loss', 'coin', { leaseMs: 1_000 })).rejects.toMatchObject({
      message: 'loss needs --percent',
      exitCode: 2,
    });
    await expect(
      faultAddCommand(io, local(home), 'reset', 'coin', { delay: 5, leaseMs: 1_000 }),
    ).rejects.toThrow(/--delay does not apply to reset/);
    expect(agents['gateway-naive'].calls).toEqual([]);
  });

  it('applies on one --instance only, and rolls back when a proxy refuses', async () => {
    const { proxies } = await lab();
    await faultAddCommand(io, local(home), 'reset', 'coin', {
      percent: 50,
      leaseMs: 1_000,
      instance: 'coin-2',
      id: 'r',
    });
    expect([...proxies['coin-1'].faults.keys()]).toEqual([]);
    expect(proxies['coin-2'].faults.get('r')).toMatchObject({ kind: 'reset', params: { percent: 50 } });

    proxies['coin-2'].refusePuts = true;
    await expect(
      faultAddCommand(io, local(home), 'loss', 'coin', { percent: 10, leaseMs: 1_000, id: 'lossy' }),
    ).rejects.toThrow(/coin-2-proxy refused PUT .*400 INVALID_FAULT/);
    expect(proxies['coin-1'].faults.has('lossy')).toBe(false);
    expect(proxies['coin-1'].calls.at(-1)).toBe('DELETE /__chaos/faults/lossy');
  });

  it('lists the faults of agents and proxies together, each with its injector', async () => {
    const { agents, proxies } = await lab();
    await faultAddCommand(io, local(home), 'latency', 'coin', { delay: 300, leaseMs: 60_000, id: 'net' });
    await faultAddCommand(io, local(home), 'http-error', 'coin', {
      leaseMs: 60_000,
      id: 'app',
      instance: 'coin-1',
    });
    expect(agents['coin-1'].faults.has('app')).toBe(true);
    out = '';
    expect(await faultListCommand(io, local(home), 'coin', { json: true })).toBe(0);
    const listed = JSON.parse(out) as {
      faults: { instance: string; injector: string; id: string }[];
      settings: { instance: string }[];
    };
    expect(listed.faults.map((f) => `${f.instance} ${f.injector} ${f.id}`)).toEqual([
      'coin-1 fault-agent app',
      'coin-1 fault-proxy net',
      'coin-2 fault-proxy net',
    ]);
    // Settings are the agents' alone: a proxy's listing has none.
    expect(listed.settings.map((s) => s.instance)).toEqual(['coin-1', 'coin-2']);
    expect(proxies['coin-1'].calls).toContain('GET /__chaos/faults');

    out = '';
    await faultListCommand(io, local(home), undefined, {});
    expect(out).toMatch(/^INSTANCE\s+FAULT\s+KIND\s+PARAMS\s+INJECTOR\s+EXPIRES IN\n/);
    expect(out).toMatch(
      /coin-1\s+net\s+latency\s+delayMs=300 jitterMs=0 requestShare=0.5\s+fault-proxy\s+(59|60)/,
    );
  });

  it('clears agents and proxies alike, by id or all', async () => {
    const { agents, proxies } = await lab();
    await faultAddCommand(io, local(home), 'latency', 'coin', { delay: 300, leaseMs: 60_000, id: 'net' });
    await faultAddCommand(io, local(home), 'http-error', 'coin', { leaseMs: 60_000, id: 'app' });
    out = '';
    await faultClearCommand(io, local(home), 'coin', { id: 'net' });
    expect(out).toBe('cleared net on coin-1, coin-2\n');
    expect(proxies['coin-1'].faults.size).toBe(0);
    expect(agents['coin-1'].faults.has('app')).toBe(true);
    out = '';
    await faultClearCommand(io, local(home), undefined, {});
    expect(out).toBe('cleared 2 faults and any worker-recovery override on 3 instances\n');
    out = '';
    await faultListCommand(io, local(home), 'coin', { instance: 'coin-1' });
    expect(out).toBe('no faults active on coin-1\n');
  });

  it('says so when the lab runs no fault proxies (started by an older chaos-lab)', async () => {
    await lab(false);
    const error = await faultAddCommand(io, local(home), 'latency', 'coin', {
      delay: 1,
      leaseMs: 1_000,
    }).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(CliError);
    expect(error).toMatchObject({
      message: 'this lab runs no fault proxies: it was started by an older chaos-lab',
      hint: 'restart it: npx chaos-lab down && npx chaos-lab up',
    });
    // The application faults still work, and listing is not refused.
    expect(await faultListCommand(io, local(home), 'coin', {})).toBe(0);
  });
});

describe('chaos-lab fault add on real fault proxies at their limit', () => {
  let real: Record<'coin-1' | 'coin-2', RunningFaultProxy>;
  const startProxy = (instanceId: string) =>
    startFaultProxy(
      {
        instanceId,
        listenHost: '127.0.0.1',
        listenPort: 0,
        // Never dialled: nothing connects to the data port here.
        upstream: { host: '127.0.0.1', port: 9 },
        adminPort: 0,
        adminToken: 'admin-token-0123456789',
      },
      { log: pino({ level: 'silent' }) },
    );
  beforeEach(async () => {
    real = { 'coin-1': await startProxy('coin-1-proxy'), 'coin-2': await startProxy('coin-2-proxy') };
  });
  afterEach(async () => {
    await Promise.all(Object.values(real).map((p) => p.close()));
  });

  it('says that the limit is reached, in one line with a hint, and leaves every proxy as it was', async () => {
    await lab(true, real);
    for (let i = 0; i < MAX_PROXY_FAULTS; i++) {
      await faultAddCommand(io, local(home), 'reset', 'coin', {
        percent: 1,
        leaseMs: 60_000,
        instance: 'coin-1',
        id: `full-${i}`,
      });
    }
    const error = await faultAddCommand(io, local(home), 'latency', 'coin', {
      delay: 300,
      leaseMs: 60_000,
      id: 'one-more',
    }).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(CliError);
    expect(error).toMatchObject({
      exitCode: 1,
      message: `injecting latency one-more on coin: coin-1-proxy refused PUT /__chaos/faults/one-more: 409 TOO_MANY_FAULTS — too many faults: ${MAX_PROXY_FAULTS} in force on this proxy, which takes at most ${MAX_PROXY_FAULTS}; remove one first (DELETE /__chaos/faults/:id), or renew one in force (PUT with its id)`,
      hint: 'see the faults in force with: npx chaos-lab fault list coin; clear one with: npx chaos-lab fault clear coin --id <id>',
    });
    // All or nothing: coin-2 took it, and had it taken off again.
    expect(real['coin-1'].faults()).toHaveLength(MAX_PROXY_FAULTS);
    expect(real['coin-2'].faults()).toEqual([]);

    // A renewal at the limit is taken.
    out = '';
    await faultAddCommand(io, local(home), 'reset', 'coin', {
      percent: 2,
      leaseMs: 60_000,
      instance: 'coin-1',
      id: 'full-0',
    });
    expect(out).toMatch(/^renewed reset full-0 \(percent=2\) on coin-1 for 1m/);
  });
});
