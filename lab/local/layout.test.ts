import { describe, expect, it } from 'vitest';
import { BACKENDS, STRATEGIES, topology } from '../../services/topology.ts';
import { DEFAULT_PORT_BASE, DEFAULT_RUN_LIVE_PORT, labLayout, PORT_BASE_RANGE, portsOf } from './layout.ts';

describe('labLayout', () => {
  const layout = labLayout();

  it('puts the gateways at 18080-18082 and the control API at 18090 by default', () => {
    expect(layout.base).toBe(DEFAULT_PORT_BASE);
    expect(layout.gateways.naive).toMatchObject({
      id: 'gateway-naive',
      port: 18_080,
      url: 'http://127.0.0.1:18080',
    });
    expect(layout.gateways.parallel.port).toBe(18_081);
    expect(layout.gateways.resilient.port).toBe(18_082);
    expect(layout.control).toEqual({ port: 18_090, url: 'http://127.0.0.1:18090' });
  });

  it("serves the lab's live page at base+91 and keeps base+92 for the run's page, outside the range", () => {
    expect(layout.live).toEqual({ port: 18_091, url: 'http://127.0.0.1:18091/' });
    expect(labLayout(30_000).live.port).toBe(30_091);
    expect(DEFAULT_RUN_LIVE_PORT).toBe(18_092);
    expect(portsOf(layout).map((p) => p.port)).not.toContain(DEFAULT_RUN_LIVE_PORT);
  });

  it('gives each backend a block of ten ports from base+100, replicas numbered from 1', () => {
    expect(layout.backends.account.map((i) => [i.id, i.port])).toEqual([
      ['account-1', 18_100],
      ['account-2', 18_101],
    ]);
    expect(layout.backends.archive[0]).toMatchObject({ id: 'archive-1', port: 18_110, service: 'archive' });
    expect(layout.backends.coin.map((i) => i.port)).toEqual([18_140, 18_141]);
  });

  it('puts a fault proxy in front of every backend instance: data port +100, admin port +200 from it', () => {
    expect(layout.proxies).toHaveLength(BACKENDS.reduce((n, b) => n + topology.backends[b].replicas, 0));
    expect(layout.proxies.find((p) => p.instance === 'coin-2')).toEqual({
      id: 'coin-2-proxy',
      instance: 'coin-2',
      service: 'coin',
      dataPort: 18_241,
      dataUrl: 'http://127.0.0.1:18241',
      adminPort: 18_341,
      adminUrl: 'http://127.0.0.1:18341',
    });
    expect(layout.proxies[0]).toMatchObject({ id: 'account-1-proxy', dataPort: 18_200, adminPort: 18_300 });
  });

  it('runs the replicas the topology asks for and one gateway per strategy', () => {
    const backendCount = BACKENDS.reduce((n, b) => n + topology.backends[b].replicas, 0);
    expect(layout.instances).toHaveLength(backendCount + STRATEGIES.length);
    expect(layout.instances.filter((i) => i.service === 'gateway').map((i) => i.strategy)).toEqual([
      ...STRATEGIES,
    ]);
  });

  it('moves the whole range with the base, without any port shared', () => {
    const moved = labLayout(30_000);
    expect(moved.gateways.naive.port).toBe(30_080);
    expect(moved.backends.account[1]?.port).toBe(30_101);
    const ports = portsOf(moved).map((p) => p.port);
    expect(new Set(ports).size).toBe(ports.length);
    expect(portsOf(moved)[0]).toEqual({ port: 30_090, owner: 'control API' });
    // The free-port check covers the proxies' ports and the live page's too.
    expect(ports).toHaveLength(1 + 13 + 2 * 10 + 1);
    expect(portsOf(moved)).toContainEqual({ port: 30_091, owner: 'live page' });
    expect(portsOf(moved)).toContainEqual({ port: 30_341, owner: 'coin-2-proxy admin' });
  });

  it('refuses a base whose range would not fit', () => {
    expect(() => labLayout(80)).toThrow(/from 1024 to/);
    expect(() => labLayout(PORT_BASE_RANGE.max + 1)).toThrow(RangeError);
    expect(() => labLayout(18_000.5)).toThrow(RangeError);
    expect(Math.max(...portsOf(labLayout(PORT_BASE_RANGE.max)).map((p) => p.port))).toBeLessThanOrEqual(
      65_535,
    );
  });
});
