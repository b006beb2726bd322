import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGatewayMetrics } from './metrics.ts';
import { UpstreamSet } from './upstream.ts';

/** Two instance stand-ins on real sockets whose readiness the test switches. */
const readiness = new Map<string, boolean>();
/** `/readyz` calls each stand-in has answered. */
const probes = new Map<string, number>();
const servers: Server[] = [];
let readyUrl: string;
let otherUrl: string;
const sets: UpstreamSet[] = [];

async function instance(ready: boolean): Promise<string> {
  const server = createServer((req, res) => {
    if (req.url === '/readyz') probes.set(url, (probes.get(url) ?? 0) + 1);
    res.statusCode = req.url === '/readyz' && readiness.get(url) ? 200 : 503;
    res.end('{}');
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  readiness.set(url, ready);
  return url;
}

beforeAll(async () => {
  readyUrl = await instance(true);
  otherUrl = await instance(true);
});

afterAll(async () => {
  await Promise.all(sets.map((s) => s.close()));
  for (const server of servers) {
    server.closeAllConnections();
    server.close();
  }
});

function upstreams(urls: string[], recheckIntervalMs?: number) {
  const registry = new Registry();
  const set = new UpstreamSet({
    dependency: 'like',
    urls,
    probeIntervalMs: 10_000,
    ...(recheckIntervalMs ? { recheckIntervalMs } : {}),
    metrics: createGatewayMetrics(registry),
    log: pino({ level: 'silent' }),
  });
  sets.push(set);
  return { set, registry };
}

describe('UpstreamSet', () => {
  it('round-robins over the ready instances', async () => {
    const { set } = upstreams([readyUrl, otherUrl]);
    await set.probeAll();
    const picks = [0, 1, 2, 3].map(() => set.pick().url);
    expect(picks).toEqual([readyUrl, otherUrl, readyUrl, otherUrl]);
  });

  it('skips an instance whose probe fails, and takes it back when it passes again', async () => {
    const { set, registry } = upstreams([readyUrl, otherUrl]);
    readiness.set(otherUrl, false);
    await set.probeAll();
    expect(set.snapshot()).toEqual([
      { url: readyUrl, ready: true },
      { url: otherUrl, ready: false },
    ]);
    expect([0, 1, 2].map(() => set.pick().url)).toEqual([readyUrl, readyUrl, readyUrl]);
    const gauge = await registry.getSingleMetric('gateway_upstream_ready')?.get();
    expect(gauge?.values.find((v) => v.labels.upstream === otherUrl)?.value).toBe(0);
    readiness.set(otherUrl, true);
    await set.probeAll();
    expect(set.snapshot().every((u) => u.ready)).toBe(true);
  });

  it('avoids the instances a retry already tried when another is ready', async () => {
    const { set } = upstreams([readyUrl, otherUrl]);
    await set.probeAll();
    expect(set.pick(new Set([readyUrl])).url).toBe(otherUrl);
    expect(set.pick(new Set([otherUrl])).url).toBe(readyUrl);
  });

  it('ejects an instance passively until its next good probe', async () => {
    const { set } = upstreams([readyUrl, otherUrl]);
    await set.probeAll();
    set.pick().eject(); // readyUrl
    expect([0, 1].map(() => set.pick().url)).toEqual([otherUrl, otherUrl]);
    await set.probeAll();
    expect(set.snapshot().every((u) => u.ready)).toBe(true);
  });

  it('still hands out instances when none is ready, so the call can say what is wrong', async () => {
    const { set } = upstreams([readyUrl, otherUrl]);
    readiness.set(readyUrl, false);
    readiness.set(otherUrl, false);
    await set.probeAll();
    expect([0, 1].map(() => set.pick().url).sort()).toEqual([readyUrl, otherUrl].sort());
    expect(set.pick(new Set([readyUrl])).url).toBe(otherUrl);
    readiness.set(readyUrl, true);
    readiness.set(otherUrl, true);
  });

  it('probes a ready instance seldom and one that is not ready often, and takes an ejected one back by itself', async () => {
    const { set } = upstreams([readyUrl, otherUrl], 20);
    readiness.set(otherUrl, false);
    const before = { ready: probes.get(readyUrl) ?? 0, other: probes.get(otherUrl) ?? 0 };
    await set.start();
    // Bounded: the not-ready instance is rechecked every 20 ms, the ready one every 10 s.
    for (let i = 0; i < 250 && (probes.get(otherUrl) ?? 0) - before.other < 4; i++) await sleep(20);
    expect((probes.get(otherUrl) ?? 0) - before.other).toBeGreaterThanOrEqual(4);
    expect((probes.get(readyUrl) ?? 0) - before.ready).toBe(1);
    readiness.set(otherUrl, true);
    for (let i = 0; i < 250 && !set.snapshot().every((u) => u.ready); i++) await sleep(20);
    expect(set.snapshot().every((u) => u.ready)).toBe(true);
    set.pick().eject();
    for (let i = 0; i < 250 && !set.snapshot().every((u) => u.ready); i++) await sleep(20);
    expect(set.snapshot().every((u) => u.ready)).toBe(true);
    expect((probes.get(readyUrl) ?? 0) - before.ready).toBeLessThanOrEqual(2);
  });
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
