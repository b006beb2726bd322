/**
 * `chaos-lab fault` on Kubernetes: faults by hand go through the same kube target and fault model
 * as a run — the fault agents over port-forwards, netem and kill through the fault sidecars —
 * against the fake API server with real backends behind the pods and the real fault-sidecar script
 * (tc stood in for: this kernel has no sch_netem). The real cluster's tier does the same on a real
 * Kubernetes (test/cluster/).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CliError } from '../../lab/cli-error.ts';
import { faultAddCommand, faultClearCommand, faultListCommand } from '../../lab/commands/fault.ts';
import type { Io } from '../../lab/io.ts';
import { type FakeLab, startFakeLab } from '../../lab/kube/__fixtures__/pod-lab.ts';
import { createKubeTarget } from '../../lab/kube/kube-target.ts';

let lab: FakeLab;
let dir: string;
let out = '';
/** What the CLI says on stderr: the target's progress (which lab it acts on). */
let said = '';
const io: Io = {
  stdout: (t) => {
    out += t;
  },
  stderr: (t) => {
    said += t;
  },
  env: {},
};

/** A kube target as the CLI makes one for `--target kind`, on the fake cluster. */
const kind = () => createKubeTarget({ home: dir, cluster: lab.cluster, gatewayUrls: lab.gateways });

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'fault-kind-'));
  lab = await startFakeLab();
});

afterAll(async () => {
  await lab?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('chaos-lab fault --target kind', { timeout: 60_000 }, () => {
  it('applies an agent fault on every pod of a service, lists it, and clears it by id', async () => {
    out = '';
    const target = kind();
    try {
      expect(
        await faultAddCommand(io, target, 'http-error', 'vip', {
          status: 503,
          percent: 100,
          leaseMs: 30_000,
          id: 'vip-down',
        }),
      ).toBe(0);
    } finally {
      await target.release();
    }
    const pods = lab.podsOf('vip');
    expect(said).toContain('using the lab in namespace chaos-lab');
    expect(out).toContain(
      `applied http-error vip-down (status=503 percent=100) on ${pods.join(', ')} for 30s`,
    );
    // The backends behind the pods answer 503 now: the fault is in their processes.
    for (const pod of pods) {
      const { backend } = await lab.serve(pod);
      const res = await fetch(`${backend.url}/vips/1`);
      await res.arrayBuffer();
      expect(res.status).toBe(503);
    }

    out = '';
    const listing = kind();
    try {
      expect(await faultListCommand(io, listing, 'vip', { json: true })).toBe(0);
    } finally {
      await listing.release();
    }
    const listed = JSON.parse(out) as {
      faults: { instance: string; injector: string; id: string; kind: string }[];
    };
    expect(listed.faults.map((f) => `${f.instance} ${f.injector} ${f.id} ${f.kind}`)).toEqual(
      pods.map((p) => `${p} fault-agent vip-down http-error`),
    );

    out = '';
    const clearing = kind();
    try {
      expect(await faultClearCommand(io, clearing, 'vip', { id: 'vip-down' })).toBe(0);
    } finally {
      await clearing.release();
    }
    expect(out).toBe(`cleared vip-down on ${pods.join(', ')}\n`);
  });

  it('puts latency on one pod as netem through its sidecar when asked (--injector netem), and clear removes the qdisc', async () => {
    const [first] = lab.podsOf('coin');
    out = '';
    const target = kind();
    try {
      await faultAddCommand(io, target, 'latency', 'coin', {
        delay: 200,
        leaseMs: 30_000,
        id: 'slow',
        instance: 'coin-1',
        injector: 'netem',
      });
      // netem delays only what the pod sends: its responses, by default with it.
      expect(out).toContain(
        `applied latency slow (delayMs=200 jitterMs=0 requestShare=0) on ${first} for 30s`,
      );
      expect(lab.lab.tcCalls(first as string).join('\n')).toMatch(/netem delay 200ms/);
      out = '';
      await faultListCommand(io, target, 'coin', {});
      expect(out).toMatch(new RegExp(`${first}\\s+slow\\s+netem \\(delay 200ms`));
      out = '';
      await faultClearCommand(io, target, 'coin', {});
      expect(out).toMatch(/^cleared \d+ faults? and any worker-recovery override on \d+ instances\n$/);
      out = '';
      await faultListCommand(io, target, 'coin', {});
      expect(out).toBe(`no faults active on ${lab.podsOf('coin').length} instances\n`);
    } finally {
      await target.release();
    }
  });

  it('refuses what the kind target cannot inject, before touching the cluster', async () => {
    const target = kind();
    const refused = await faultAddCommand(io, target, 'reset', 'coin', {
      percent: 50,
      leaseMs: 1_000,
      injector: 'netem',
    }).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(CliError);
    expect((refused as Error).message).toBe(
      'the kind target cannot inject reset: injector netem cannot apply reset (reset is applied by fault-proxy)',
    );
    const both = await faultAddCommand(io, target, 'latency', 'coin', {
      delay: 100,
      direction: 0.5,
      leaseMs: 1_000,
      injector: 'netem',
    }).catch((err: unknown) => err);
    expect(both).toBeInstanceOf(CliError);
    expect((both as Error).message).toContain('netem delays only what the pod sends');
    await target.release();
  });
});
