/**
 * The whole lab through the real CLI: `up --detach` starts 13 instances and the 10 fault
 * proxies in front of the backend instances on loopback, the video page comes through each
 * gateway (and through the proxies), half trust refuses an unsigned call, a second `up` is
 * refused, and `down` leaves no process and no bound port behind.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { processTree } from '../../lab/bench/lab-figures.ts';
import type { LabStatus } from '../../lab/local/control-server.ts';
import { ACCEPTORS_RESILIENT } from '../../services/gateway/server.ts';
import { descriptorsTo, tcpListener } from '../../services/lib/__fixtures__/listener.ts';
import { signRequest } from '../../services/lib/trust.ts';
import { STRATEGIES } from '../../services/topology.ts';
import {
  alive,
  boundPorts,
  cli,
  controlStatus,
  downAndCheck,
  eventually,
  freePortBase,
  makeHome,
  pidsOf,
  removeHome,
  state,
  timedGet,
  upDetached,
} from './helpers.ts';

describe('chaos-lab up --detach / status / down', () => {
  const home = makeHome();
  let base = 0;
  let status: LabStatus;
  const seen = new Set<number>();

  beforeAll(async () => {
    base = await freePortBase();
    status = await upDetached(home, base);
    for (const pid of pidsOf(status)) seen.add(pid);
  });

  afterAll(async () => {
    const down = await downAndCheck(home, [...seen]);
    removeHome(home);
    expect(down.survivors).toEqual([]);
  });

  it('status --json lists three gateways and ten backend instances, all ready', async () => {
    const run = await cli(home, ['status', '--json']);
    expect(run.code).toBe(0);
    const listed = JSON.parse(run.stdout) as LabStatus & { controlUrl: string };
    expect(Object.keys(listed.gateways).sort()).toEqual([...STRATEGIES].sort());
    expect(listed.gateways.naive).toBe(`http://127.0.0.1:${base + 80}`);
    const backends = listed.instances.filter((i) => i.service !== 'gateway');
    expect(backends.map((i) => i.id)).toEqual([
      'account-1',
      'account-2',
      'archive-1',
      'archive-2',
      'vip-1',
      'vip-2',
      'like-1',
      'like-2',
      'coin-1',
      'coin-2',
    ]);
    expect(listed.instances.filter((i) => i.service === 'gateway')).toHaveLength(3);
    expect(listed.instances.every((i) => i.ready && i.pid !== null && i.restarts === 0)).toBe(true);
    // One fault proxy per backend instance, supervised like the instances.
    expect(listed.proxies.map((p) => [p.id, p.fronts, p.dataUrl])).toEqual(
      backends.map((b) => {
        const port = Number(new URL(b.url).port) + 100;
        return [`${b.id}-proxy`, b.id, `http://127.0.0.1:${port}`];
      }),
    );
    expect(listed.proxies.every((p) => p.ready && p.pid !== null && p.restarts === 0)).toBe(true);
    // All in one process, as Toxiproxy's.
    expect(new Set(listed.proxies.map((p) => p.pid)).size).toBe(1);
    // Secrets stay in the state file.
    expect(run.stdout).not.toContain(state(home).adminToken);
    expect(run.stdout).not.toContain(state(home).trust.key);
    for (const i of [...listed.instances, ...listed.proxies]) if (i.pid !== null) seen.add(i.pid);
  });

  it('status without --json is a table of gateways and instances', async () => {
    const run = await cli(home, ['status']);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(new RegExp(`resilient\\s+http://127\\.0\\.0\\.1:${base + 82}`));
    expect(run.stdout).toMatch(/ID\s+URL\s+PID\s+READY\s+RESTARTS/);
    expect(run.stdout).toMatch(
      new RegExp(
        `coin-2\\s+http://127\\.0\\.0\\.1:${base + 141}\\s+\\d+\\s+yes\\s+0\\s+-\\s+:${base + 241} yes`,
      ),
    );
    expect(run.stdout).toMatch(/13\/13 ready, fault proxies 10\/10 ready/);
  });

  it("gives the resilient gateway's port 8 accepting descriptors, the others Node's one, and leaves no helper behind", async () => {
    const listed = await controlStatus(home);
    const counts = Object.fromEntries(
      STRATEGIES.map((strategy) => {
        const gateway = listed.instances.find((i) => i.id === `gateway-${strategy}`);
        const port = Number(new URL(listed.gateways[strategy] as string).port);
        return [strategy, descriptorsTo(gateway?.pid as number, tcpListener(port)?.socket as string)];
      }),
    );
    expect(counts).toEqual({ naive: 1, parallel: 1, resilient: ACCEPTORS_RESILIENT });
    for (const gateway of listed.instances.filter((i) => i.service === 'gateway')) {
      expect(processTree(gateway.pid as number).slice(1)).toEqual([]);
    }
  });

  it('routes every gateway through the fault proxies, never straight to an instance', async () => {
    const s = state(home);
    const page = await timedGet(`${s.gateways.parallel}/api/upstreams`);
    expect(page.status).toBe(200);
    const urls = JSON.stringify(page.body);
    for (const proxy of s.proxies ?? []) expect(urls).toContain(proxy.dataUrl);
    for (const instance of s.instances) expect(urls).not.toContain(instance.url);
  });

  it('restarts a fault proxy killed through the control API (all of them, in one process), and pages come through again', async () => {
    const s = state(home);
    const killed = await fetch(`${s.controlUrl}/instances/coin-1-proxy/kill`, {
      method: 'POST',
      headers: { authorization: `Bearer ${s.adminToken}` },
    });
    expect(killed.status).toBe(202);
    const back = await eventually(
      'coin-1-proxy restarted and ready',
      async () => {
        const proxy = (await controlStatus(home)).proxies.find((p) => p.id === 'coin-1-proxy');
        return proxy && proxy.restarts === 1 && proxy.ready ? proxy : undefined;
      },
      20_000,
      200,
    );
    if (back.pid !== null) seen.add(back.pid);
    expect(back.lastExit).toMatchObject({ signal: 'SIGKILL' });
    // They share a process: every proxy went down and came back with it.
    const proxies = (await controlStatus(home)).proxies;
    expect(proxies.map((p) => [p.pid, p.restarts])).toEqual(proxies.map(() => [back.pid, 1]));
    await eventually(
      'a complete page from the naive gateway',
      async () => {
        const page = await timedGet(`${s.gateways.naive}/api/video/7`);
        return page.status === 200 && page.headers.get('x-degraded') === null ? page : undefined;
      },
      10_000,
      250,
    );
  });

  it('serves the video page through each of the three gateways', async () => {
    const s = state(home);
    for (const strategy of STRATEGIES) {
      const page = await timedGet(`${s.gateways[strategy]}/api/video/42`);
      expect(page.status, `${strategy}: ${JSON.stringify(page.body)}`).toBe(200);
      expect(page.body).toMatchObject({
        aid: 42,
        strategy,
        degraded: [],
        owner: { mid: expect.any(Number), name: expect.any(String) },
        stats: { likes: expect.any(Number), coins: expect.any(Number) },
      });
      expect(page.headers.get('x-degraded')).toBeNull();
    }
  });

  it('refuses a direct call to a backend without a valid signature (half trust)', async () => {
    const s = state(home);
    const account = s.instances.find((i) => i.id === 'account-1');
    const url = `${account?.url}/accounts/1`;
    const unsigned = await timedGet(url);
    expect(unsigned.status).toBe(401);
    expect(unsigned.body).toMatchObject({ error: { reason: 'TRUST_MISSING' } });
    const forged = await timedGet(
      url,
      signRequest('not-the-lab-key', 'intruder', { method: 'GET', path: '/accounts/1', audience: 'account' }),
    );
    expect(forged.status).toBe(403);
    // The same call signed with the lab's key is believed: the refusals were about trust.
    const signed = await timedGet(
      url,
      signRequest(s.trust.key, 'e2e-test', { method: 'GET', path: '/accounts/1', audience: 'account' }),
    );
    expect(signed.status).toBe(200);
  });

  it('refuses a second `up` in the same home while the lab runs', async () => {
    const again = await cli(home, ['up', '--detach', '--port-base', String(base)]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/^chaos-lab: a lab is already running in .* \(supervisor pid \d+/);
    expect(again.stderr).toMatch(/hint: stop it with: npx chaos-lab down/);
  });

  it('names the busy port, what it was for, and suggests --port-base when another lab holds the ports', async () => {
    const other = makeHome();
    try {
      const clash = await cli(other, ['up', '--detach', '--port-base', String(base)]);
      expect(clash.code).toBe(1);
      expect(clash.stderr).toMatch(
        new RegExp(`ports ${base + 90} \\(control API\\), ${base + 100} \\(account-1\\)`),
      );
      expect(clash.stderr).toMatch(/hint: choose another range with --port-base, e\.g\. --port-base \d+/);
    } finally {
      removeHome(other);
    }
  });

  it('down stops the supervisor and every instance and frees every port', async () => {
    const live = JSON.parse((await cli(home, ['status', '--json'])).stdout) as LabStatus;
    for (const i of [...live.instances, ...live.proxies]) if (i.pid !== null) seen.add(i.pid);
    const down = await cli(home, ['down']);
    expect(down.code, down.stderr).toBe(0);
    expect(down.stdout).toMatch(
      /^stopped the lab: supervisor \(pid \d+\) and 13 instances are gone with their 10 fault proxies/,
    );
    expect(alive([...seen])).toEqual([]);
    expect(await boundPorts(base)).toEqual([]);
    const after = await cli(home, ['status']);
    expect(after.code).toBe(1);
    expect(after.stderr).toMatch(/no lab is running \(start one with: npx chaos-lab up\)/);
  });
});

describe('an instance never outlives its supervisor', () => {
  const home = makeHome();
  const seen = new Set<number>();

  afterAll(async () => {
    const down = await downAndCheck(home, [...seen]);
    removeHome(home);
    expect(down.survivors).toEqual([]);
  });

  it('when the supervisor is SIGKILLed, every instance stops itself, and down clears the stale state', async () => {
    const status = await upDetached(home, await freePortBase(), ['--log-level', 'warn']);
    for (const pid of pidsOf(status)) seen.add(pid);
    process.kill(status.pid, 'SIGKILL');
    const instancePids = pidsOf(status).slice(1);
    await eventually(
      'every instance to exit',
      () => (alive(instancePids).length === 0 ? true : undefined),
      15_000,
    );
    const down = await cli(home, ['down']);
    expect(down.code).toBe(0);
    expect(down.stdout).toMatch(/removed a stale state file \(its supervisor, pid \d+, is gone\)/);
  });
});
