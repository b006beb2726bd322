/**
 * One run per lab on Kubernetes, against the fake API server (real HTTP, the real client): the
 * Lease `chaos-lab-run` taken, refused, taken over when stale, renewed and released — through the
 * kube target as the runner uses it, and through `chaos-lab run` itself. The fake holds only the
 * lab's Namespace: a run that gets past the Lease finds no lab, and fails at once.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type FakeApiServer, startFakeApiServer } from '../../test/fake-kube/fake-api-server.ts';
import { CliError } from '../cli-error.ts';
import { runCommand } from '../commands/run.ts';
import type { Io } from '../io.ts';
import type { RunResult } from '../runner/result.ts';
import { LabBusyError, type RunHolder, type Target } from '../runner/target.ts';
import { connectCluster } from './client.ts';
import type { Cluster } from './cluster.ts';
import { createKubeTarget, type KubeTargetOptions } from './kube-target.ts';
import { RUN_LEASE_ANNOTATION, RUN_LEASE_NAME } from './run-lease.ts';

const NS = 'chaos-lab';
const LEASE_PATH = `/apis/coordination.k8s.io/v1/namespaces/${NS}/leases`;
const HOST = hostname();

let fake: FakeApiServer;
let cluster: Cluster;
let dir: string;
const holds: { release(): Promise<void> }[] = [];

beforeEach(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'run-lease-'));
  fake = await startFakeApiServer();
  fake.applyAs('chaos-lab', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });
  cluster = connectCluster({ kubeconfigPath: await fake.kubeconfig(path.join(dir, 'kubeconfig')) });
});

afterEach(async () => {
  for (const hold of holds.splice(0)) await hold.release();
  await cluster.close();
  await fake.close();
  rmSync(dir, { recursive: true, force: true });
});

const kind = (options: Partial<KubeTargetOptions> = {}): Target =>
  createKubeTarget({ home: dir, cluster, ...options });

const runOf = (experiment: string, pid = 4242): RunHolder => ({
  pid,
  experiment,
  startedAt: new Date().toISOString(),
});

async function hold(target: Target, holder: RunHolder) {
  const held = await (target.holdLab as NonNullable<Target['holdLab']>)(holder);
  holds.push(held);
  return held;
}

// biome-ignore lint/suspicious/noExplicitAny: the stored Lease is read loosely, then asserted on.
const lease = (): Record<string, any> | undefined =>
  fake.object('coordination.k8s.io/v1', 'Lease', NS, RUN_LEASE_NAME);

/** A Lease as another run left it: its holder, renewed `renewedAgoMs` ago. */
function leftBy(holder: RunHolder & { host: string }, renewedAgoMs: number, durationSeconds = 30) {
  const renewed = new Date(Date.now() - renewedAgoMs).toISOString().replace('Z', '000Z');
  fake.applyAs('someone', {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: {
      name: RUN_LEASE_NAME,
      namespace: NS,
      annotations: { [RUN_LEASE_ANNOTATION]: JSON.stringify(holder) },
    },
    spec: {
      holderIdentity: `${holder.host}/${holder.pid}/abcdef`,
      leaseDurationSeconds: durationSeconds,
      acquireTime: renewed,
      renewTime: renewed,
      leaseTransitions: 3,
    },
  });
}

describe('one run per lab on Kubernetes: the Lease chaos-lab-run', { timeout: 30_000 }, () => {
  it('holds the lab for a run; a second run is refused, naming the host, pid, experiment and since when', async () => {
    const first = kind();
    const held = await hold(first, runOf('tour'));
    const stored = lease();
    expect(stored?.spec).toMatchObject({ leaseDurationSeconds: 30, leaseTransitions: 0 });
    expect(stored?.spec.holderIdentity).toMatch(new RegExp(`^${HOST}/4242/[0-9a-f]{6}$`));
    // MicroTimes, six digits: the fake refuses anything else, as the real API server does.
    expect(stored?.spec.renewTime).toMatch(/\.\d{6}Z$/);
    expect(JSON.parse(stored?.metadata.annotations[RUN_LEASE_ANNOTATION])).toMatchObject({
      pid: 4242,
      experiment: 'tour',
      host: HOST,
    });

    const second = kind();
    const refused = await second.holdLab?.(runOf('worker-panics', 999)).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(LabBusyError);
    const busy = refused as LabBusyError;
    expect(busy.holder).toMatchObject({ pid: 4242, experiment: 'tour', host: HOST });
    expect(busy.message).toMatch(
      new RegExp(
        `^the lab is busy: a run of tour \\(pid 4242 on ${HOST}, since \\d\\d:\\d\\d:\\d\\d, \\d+ s ago\\) holds it; one lab runs one experiment at a time, and nothing was started`,
      ),
    );
    expect(busy.message).toContain(`kill 4242 on ${HOST}`);
    // `fault add` asks the same question.
    expect(await second.labHolder?.()).toMatchObject({ pid: 4242, experiment: 'tour', host: HOST });

    await held.release();
    expect(lease()).toBeUndefined();
    expect(await second.labHolder?.()).toBeUndefined();
    await hold(second, runOf('worker-panics', 999));
    expect(lease()?.spec.holderIdentity).toMatch(new RegExp(`^${HOST}/999/`));
  });

  it("takes over a stale Lease (a killed run's), and of two runs taking it over at once only one wins", async () => {
    leftBy({ ...runOf('tour', 7), host: 'gone-host' }, 31_000);
    expect(await kind().labHolder?.()).toBeUndefined();
    const outcomes = await Promise.allSettled([
      kind().holdLab?.(runOf('a', 1)),
      kind().holdLab?.(runOf('b', 2)),
    ]);
    for (const o of outcomes) if (o.status === 'fulfilled' && o.value) holds.push(o.value);
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
    const loser = outcomes.find((o) => o.status === 'rejected') as PromiseRejectedResult;
    expect(loser.reason).toBeInstanceOf(LabBusyError);
    // The winner's: a takeover, counted as a transition of the Lease, by an update (PUT).
    const winner = outcomes.findIndex((o) => o.status === 'fulfilled') + 1;
    expect(lease()?.spec.holderIdentity).toMatch(new RegExp(`^${HOST}/${winner}/`));
    expect(lease()?.spec.leaseTransitions).toBe(4);
    expect(
      fake.requests.some((r) => r.method === 'PUT' && r.path === `${LEASE_PATH}/${RUN_LEASE_NAME}`),
    ).toBe(true);
  });

  it('a live Lease of another host is not taken over', async () => {
    leftBy({ ...runOf('tour', 7), host: 'other-host' }, 5_000);
    const refused = await kind()
      .holdLab?.(runOf('a', 1))
      .catch((err: unknown) => err);
    expect((refused as LabBusyError).message).toContain(
      'the lab is busy: a run of tour (pid 7 on other-host, since',
    );
    expect(lease()?.spec.holderIdentity).toBe('other-host/7/abcdef');
  });

  it('renews the Lease while the run goes; without renewals it expires, and the next run takes the lab', async () => {
    // Renewed every 200 ms for 1 s: 1.5 s later the lab is still held.
    await hold(kind({ runLease: { durationSeconds: 1, renewEveryMs: 200 } }), runOf('tour'));
    const renewedAt = () => Date.parse(lease()?.spec.renewTime);
    const firstRenewal = renewedAt();
    await new Promise((r) => setTimeout(r, 1_500));
    expect(renewedAt()).toBeGreaterThan(firstRenewal + 1_000);
    expect(await kind().labHolder?.()).toMatchObject({ experiment: 'tour' });
    await expect(kind().holdLab?.(runOf('other', 1))).rejects.toBeInstanceOf(LabBusyError);

    // A runner killed with SIGKILL renews nothing: its Lease runs out, and the lab is free again.
    await holds.pop()?.release();
    await hold(kind({ runLease: { durationSeconds: 1, renewEveryMs: 60_000 } }), runOf('killed', 5));
    await expect(kind().holdLab?.(runOf('too-soon', 6))).rejects.toBeInstanceOf(LabBusyError);
    await new Promise((r) => setTimeout(r, 1_100));
    expect(await kind().labHolder?.()).toBeUndefined();
    await hold(kind(), runOf('next', 6));
    expect(lease()?.spec.holderIdentity).toMatch(new RegExp(`^${HOST}/6/`));
  });

  it("ends the run through the target's watch when another run took the Lease over, and leaves that run its Lease", async () => {
    // The lab watch itself looks too late to matter here: only the Lease can end the run.
    const target = kind({ runLease: { durationSeconds: 30, renewEveryMs: 100 }, watchEveryMs: 60_000 });
    const held = await hold(target, runOf('tour'));
    const lost: string[] = [];
    const stop = target.watch?.((why) => lost.push(why));
    try {
      // As if this run had been frozen past its Lease, and another had taken it over meanwhile.
      leftBy({ ...runOf('intruder', 77), host: 'other-host' }, 0);
      await expect.poll(() => lost.length, { timeout: 2_000 }).toBe(1);
    } finally {
      stop?.();
    }
    expect(lost[0]).toMatch(
      /^another run took the lab over: a run of intruder \(pid 77 on other-host, since .*\) holds the Lease chaos-lab\/chaos-lab-run now/,
    );
    await held.release();
    expect(lease()?.spec.holderIdentity).toBe('other-host/77/abcdef');
  });

  it('stops renewing a Lease another run took over, and tells a watch started after that at once', async () => {
    const target = kind({ runLease: { durationSeconds: 30, renewEveryMs: 100 }, watchEveryMs: 60_000 });
    await hold(target, runOf('tour'));
    leftBy({ ...runOf('intruder', 77), host: 'other-host' }, 0);
    const version = lease()?.metadata.resourceVersion;
    await new Promise((r) => setTimeout(r, 500));
    // Not this run's to renew any more: the intruder's Lease is as it left it.
    expect(lease()?.metadata.resourceVersion).toBe(version);
    const lost: string[] = [];
    target.watch?.((why) => lost.push(why))();
    expect(lost).toHaveLength(1);
    expect(lost[0]).toContain('another run took the lab over: a run of intruder (pid 77 on other-host');
  });

  it('holds nothing where there is no lab namespace: the run itself says the lab is not deployed', async () => {
    await cluster.delete([{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } }]);
    await expect.poll(() => cluster.namespacePhase(NS), { timeout: 5_000 }).toBeUndefined();
    const held = await hold(kind(), runOf('tour'));
    expect(lease()).toBeUndefined();
    await held.release();
  });

  it('refuses to start, saying why, when the Lease cannot be taken (the API server unreachable)', async () => {
    await fake.close();
    const failure = kind()
      .holdLab?.(runOf('tour'))
      .catch((err: unknown) => err);
    const err = (await failure) as CliError;
    expect(err).toBeInstanceOf(CliError);
    expect(err.message).toMatch(
      /^cannot take the lab for this run: create of Lease chaos-lab\/chaos-lab-run: cannot reach the API server at http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\)/,
    );
    expect(err.message).toContain('nothing was started');
    // Closed already: afterEach closes it again harmlessly.
    fake = await startFakeApiServer();
  });
});

describe('chaos-lab run --target kind and the Lease', { timeout: 60_000 }, () => {
  function io(): Io & { out: () => string; err: () => string } {
    let stdout = '';
    let stderr = '';
    return {
      stdout: (t) => {
        stdout += t;
      },
      stderr: (t) => {
        stderr += t;
      },
      env: { CHAOS_LAB_HOME: path.join(dir, 'home') },
      out: () => stdout,
      err: () => stderr,
    };
  }

  const run = (terminal: Io, out: string) =>
    runCommand(
      terminal,
      'weak-dependency-errors',
      { out, target: 'kind' },
      { isTTY: false, createTarget: async () => kind() },
    );

  it('a second run is refused before anything starts: exit 1, the first run named, no folder, no request but the Lease', async () => {
    await hold(kind(), runOf('tour'));
    const before = fake.requests.length;
    const terminal = io();
    const out = path.join(dir, 'out');
    expect(await run(terminal, out)).toBe(1);
    expect(terminal.err()).toMatch(
      new RegExp(`^chaos-lab: the lab is busy: a run of tour \\(pid 4242 on ${HOST}, since `),
    );
    expect(existsSync(out)).toBe(false);
    const asked = fake.requests.slice(before).map((r) => `${r.method} ${r.path}`);
    expect(asked).toEqual([`POST ${LEASE_PATH}`, `GET ${LEASE_PATH}/${RUN_LEASE_NAME}`]);
  });

  it('a run that fails releases its Lease', async () => {
    const terminal = io();
    const out = path.join(dir, 'out');
    expect(await run(terminal, out)).toBe(1);
    const [folder] = readdirSync(out);
    const result = JSON.parse(
      readFileSync(path.join(out, folder as string, 'result.json'), 'utf8'),
    ) as RunResult;
    expect(result.status).toBe('failed');
    expect(result.error).toContain('the lab is not deployed in namespace chaos-lab');
    // It held the lab while it ran, and let it go at its end.
    const asked = fake.requests.map((r) => `${r.method} ${r.path}`);
    expect(asked[0]).toBe(`POST ${LEASE_PATH}`);
    expect(asked).toContain(`DELETE ${LEASE_PATH}/${RUN_LEASE_NAME}`);
    expect(lease()).toBeUndefined();
  });
});
