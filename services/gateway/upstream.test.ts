import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGatewayMetrics } from './metrics.ts';
import { UpstreamSet } from './upstream.ts';

/** Two instance stand-ins on real sockets whose readiness the test switches. */
const readiness = new Map<string, boolean>();
const servers: Server[] = [];
let readyUrl: string;
let otherUrl: string;
const sets: UpstreamSet[] = [];

async function instance(ready: boolean): Promise<string> {
  const server = createServer((req, res) => {
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

function upstreams(urls: string[]) {
  const registry = new Registry();
  const set = new UpstreamSet({
    dependency: 'like',
    urls,
    probeIntervalMs: 10_000,
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
});
