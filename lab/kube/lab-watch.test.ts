/**
 * The lab watch against the fake API server (real HTTP, the real client): the lab's manifests
 * applied, the fake's controllers running their pods (no processes behind them: the watch only
 * reads the API). Each test says how fast the loss must be told.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { synthLab } from '../../charts/__fixtures__/manifests.ts';
import { BACKENDS, STRATEGIES } from '../../services/topology.ts';
import { type FakeApiServer, startFakeApiServer } from '../../test/fake-kube/fake-api-server.ts';
import { connectCluster } from './client.ts';
import type { Cluster } from './cluster.ts';
import { watchLab } from './lab-watch.ts';

const NS = 'chaos-lab';
const DEPLOYMENTS = [...BACKENDS, ...STRATEGIES.map((s) => `gateway-${s}`)];
/** What the run promises: a lab that is gone ends it within 2 s. */
const BOUND_MS = 2_000;

let fake: FakeApiServer;
let cluster: Cluster;
let dir: string;
let stop: (() => void) | undefined;

async function labOn(options: Parameters<typeof startFakeApiServer>[0] = {}): Promise<void> {
  fake = await startFakeApiServer({ readyDelayMs: 10, ...options });
  for (const manifest of synthLab({ observability: false })) fake.applyAs('chaos-lab', manifest);
  cluster = connectCluster({ kubeconfigPath: await fake.kubeconfig(path.join(dir, 'kubeconfig')) });
}

/** Starts watching; resolves with why and how long after `since()` the loss was told. */
function watching(options: { everyMs?: number; unreachableMs?: number; on?: Cluster } = {}) {
  let from = Date.now();
  const told: { why: string; afterMs: number }[] = [];
  const lost = new Promise<{ why: string; afterMs: number }>((resolve) => {
    stop = watchLab(
      {
        cluster: options.on ?? cluster,
        namespace: NS,
        deployments: DEPLOYMENTS,
        ...(options.everyMs !== undefined ? { everyMs: options.everyMs } : {}),
        ...(options.unreachableMs !== undefined ? { unreachableMs: options.unreachableMs } : {}),
      },
      (why) => {
        const at = { why, afterMs: Date.now() - from };
        told.push(at);
        resolve(at);
      },
    );
  });
  return {
    lost,
    told,
    since: () => {
      from = Date.now();
    },
  };
}

const looks = () =>
  fake.requests.filter((r) => r.method === 'GET' && r.path === `/api/v1/namespaces/${NS}`).length;

beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'lab-watch-'));
});

afterEach(async () => {
  stop?.();
  stop = undefined;
  await cluster?.close();
  await fake?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('the lab watch', { timeout: 20_000 }, () => {
  it('tells, within the bound, that the namespace is being deleted', async () => {
    await labOn({ namespaceTerminationMs: 10_000 });
    const watch = watching();
    watch.since();
    await cluster.delete([{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } }]);
    const { why, afterMs } = await watch.lost;
    expect(why).toBe('its namespace chaos-lab is being deleted');
    expect(afterMs).toBeLessThan(BOUND_MS);
  });

  it('tells that the namespace is gone', async () => {
    await labOn({ namespaceTerminationMs: 0 });
    await cluster.delete([{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } }]);
    await expect.poll(() => cluster.namespacePhase(NS)).toBeUndefined();
    const watch = watching();
    expect((await watch.lost).why).toBe('its namespace chaos-lab is gone');
  });

  it('names a gateway Deployment that is deleted, within the bound', async () => {
    await labOn();
    const watch = watching();
    await new Promise((r) => setTimeout(r, 700));
    expect(watch.told).toEqual([]);
    watch.since();
    await cluster.delete([
      { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'gateway-parallel', namespace: NS } },
    ]);
    const { why, afterMs } = await watch.lost;
    expect(why).toBe('its Deployment gateway-parallel is gone from namespace chaos-lab');
    expect(afterMs).toBeLessThan(BOUND_MS);
  });

  it('takes a restarted container and a replaced pod for what they are: no loss', async () => {
    await labOn();
    const pods = () => fake.pods(NS).filter((p) => p.metadata.name.startsWith('coin-'));
    await expect.poll(() => pods().length).toBe(2);
    const watch = watching();
    const [first, second] = pods().map((p) => p.metadata.name) as [string, string];
    fake.restartContainer(NS, first, 'coin', { exitCode: 137, readyAfterMs: 300 });
    await cluster.deletePod(NS, second, { gracePeriodSeconds: 0 });
    const before = looks();
    await new Promise((r) => setTimeout(r, 2_000));
    // It did look meanwhile, and saw the lab whole.
    expect(looks() - before).toBeGreaterThanOrEqual(3);
    expect(watch.told).toEqual([]);
    expect(pods().map((p) => p.metadata.name)).not.toContain(second);
  });

  it('stops looking when stopped, and tells nothing after', async () => {
    await labOn();
    const watch = watching({ everyMs: 100 });
    await expect.poll(looks).toBeGreaterThan(1);
    stop?.();
    await new Promise((r) => setTimeout(r, 150));
    const after = looks();
    await cluster.delete([
      { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'gateway-naive', namespace: NS } },
    ]);
    await new Promise((r) => setTimeout(r, 500));
    expect(looks()).toBe(after);
    expect(watch.told).toEqual([]);
  });

  it('counts an API server that stops answering as the lab gone, after its bound', async () => {
    await labOn();
    const watch = watching({ everyMs: 100, unreachableMs: 1_000 });
    await expect.poll(looks).toBeGreaterThan(1);
    watch.since();
    await fake.close();
    const { why, afterMs } = await watch.lost;
    expect(why).toMatch(
      /^the cluster's API server has not answered for 1(\.\d+)?s \(.*cannot reach the API server at http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\)/,
    );
    expect(afterMs).toBeGreaterThanOrEqual(1_000);
    expect(afterMs).toBeLessThan(1_000 + BOUND_MS);
  });

  it('does not count an API server that answers with errors (401 here) as a loss', async () => {
    await labOn({ token: 'the-right-token' });
    const file = await fake.kubeconfig(path.join(dir, 'wrong-token'));
    writeFileSync(file, readFileSync(file, 'utf8').replace('the-right-token', 'a-wrong-token'));
    const refused = connectCluster({ kubeconfigPath: file });
    try {
      const watch = watching({ on: refused, everyMs: 100, unreachableMs: 300 });
      await new Promise((r) => setTimeout(r, 1_000));
      expect(looks()).toBeGreaterThanOrEqual(5);
      expect(watch.told).toEqual([]);
    } finally {
      await refused.close();
    }
  });
});
