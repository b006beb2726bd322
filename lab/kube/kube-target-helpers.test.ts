/**
 * The Kubernetes target's pure parts: netem parameters from faults, the sidecar's lease argument,
 * which pods a fault is for, latency calibration, which pods keep the lab from being settled, and
 * where a cluster's NodePorts answer (the kind configuration: kind-config.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { LABELS } from '../../charts/lab-pod.ts';
import { parsePromText } from '../prom-text.ts';
import type { Fault } from '../runner/experiment.ts';
import type { NodeInfo, PodInfo } from './cluster.ts';
import { nodePortHost, nodePortUrls } from './gateway-urls.ts';
import {
  dependencyTallies,
  leaseArg,
  netemArgs,
  observedAddedLatency,
  podsForFault,
  unsettled,
} from './kube-target.ts';

function pod(name: string, service: string, extra: Partial<PodInfo> = {}): PodInfo {
  return {
    name,
    namespace: 'chaos-lab',
    labels: { [LABELS.name]: service, [LABELS.component]: 'backend' },
    phase: 'Running',
    ready: true,
    terminating: false,
    restarts: {},
    exits: {},
    images: {},
    conditions: [],
    containerProblems: [],
    ...extra,
  };
}

function node(name: string, addresses: NodeInfo['addresses'], ready = true): NodeInfo {
  return { name, ready, allocatable: { cpuMillis: 4000, memoryBytes: 8 * 2 ** 30 }, addresses };
}

describe('NodePorts on a cluster that is not kind', () => {
  const internal = (address: string) => ({ type: 'InternalIP', address });
  const external = (address: string) => ({ type: 'ExternalIP', address });

  it('takes the InternalIP of the first Ready node, even where it has an ExternalIP', () => {
    const nodes = [
      node('c-worker', [internal('10.0.0.7')]),
      node('a-down', [internal('10.0.0.5')], false),
      node('b-worker', [external('203.0.113.9'), internal('10.0.0.6'), { type: 'Hostname', address: 'b' }]),
    ];
    expect(nodePortHost(nodes, undefined, 'ci')).toBe('10.0.0.6');
    expect(nodePortUrls('10.0.0.6')).toEqual({
      gateways: {
        naive: 'http://10.0.0.6:30080',
        parallel: 'http://10.0.0.6:30081',
        resilient: 'http://10.0.0.6:30082',
      },
      grafana: 'http://10.0.0.6:30300',
    });
    expect(nodePortHost([node('v6', [internal('fd00::4')])], undefined, 'ci')).toBe('[fd00::4]');
  });

  it('takes CHAOS_LAB_GATEWAY_HOST over the nodes, and names the nodes and it when no node will do', () => {
    expect(nodePortHost([node('a', [internal('10.0.0.5')])], ' gw.example ', 'ci')).toBe('gw.example');
    expect(() =>
      nodePortHost(
        [node('a', [internal('10.0.0.5')], false), node('b', [external('203.0.113.9')])],
        '',
        'ci',
      ),
    ).toThrow(
      "no Ready node of context ci has an InternalIP to reach the lab's NodePorts at (nodes: a (not Ready), b (no InternalIP)); set CHAOS_LAB_GATEWAY_HOST",
    );
  });
});

describe('unsettled', () => {
  it('names every live backend pod that is not Ready, with why, and a backend without pods', () => {
    const crashing = pod('like-1a-cc', 'like', {
      ready: false,
      conditions: [{ type: 'Ready', status: 'False', reason: 'ContainersNotReady' }],
      containerProblems: ['like: CrashLoopBackOff'],
    });
    const everyBackend = ['account', 'archive', 'vip', 'coin'].map((s) => pod(`${s}-1`, s));
    expect(unsettled([...everyBackend, pod('like-1a-bb', 'like')])).toEqual([]);
    expect(
      unsettled([
        ...everyBackend.filter((p) => !p.name.startsWith('vip')),
        pod('like-1a-bb', 'like'),
        crashing,
        // Going away, or ended: their Deployment runs others, which are the ones to wait for.
        pod('like-1a-old', 'like', { ready: false, terminating: true }),
        pod('coin-evicted', 'coin', { ready: false, phase: 'Failed' }),
      ]),
    ).toEqual(['vip: no pod', 'like-1a-cc: Ready=False ContainersNotReady; like: CrashLoopBackOff']);
  });
});

describe('netemArgs', () => {
  it('maps latency to delay [jitter] and loss to a percentage, exactly as tc netem takes them', () => {
    const base = { service: 'coin', instances: ['coin-1', 'coin-2'] } as const;
    expect(netemArgs({ ...base, kind: 'latency', delayMs: 400, jitterMs: 20, requestShare: 0 })).toEqual([
      'delay',
      '400ms',
      '20ms',
    ]);
    expect(netemArgs({ ...base, kind: 'latency', delayMs: 250, jitterMs: 0, requestShare: 0 })).toEqual([
      'delay',
      '250ms',
    ]);
    expect(netemArgs({ ...base, kind: 'loss', percent: 12.5 })).toEqual(['loss', '12.5%']);
    expect(netemArgs({ ...base, kind: 'http-error', status: 503, percent: 50 })).toBeUndefined();
    expect(netemArgs({ ...base, kind: 'kill' })).toBeUndefined();
  });
});

describe('leaseArg', () => {
  it('rounds up to whole seconds, never below one', () => {
    expect(leaseArg(10_000)).toBe('10s');
    expect(leaseArg(10_001)).toBe('11s');
    expect(leaseArg(300)).toBe('1s');
  });
});

describe('podsForFault', () => {
  const pods = [
    pod('coin-7f9c-zz', 'coin'),
    pod('coin-7f9c-aa', 'coin'),
    pod('coin-7f9c-old', 'coin', { terminating: true }),
    pod('coin-7f9c-new', 'coin', { phase: 'Pending' }),
    pod('like-1a-bb', 'like'),
  ];
  const fault = (instances: string[]): Fault => ({ kind: 'kill', service: 'coin', instances });

  it('gives every running pod of the service when the fault names every instance', () => {
    expect(podsForFault(fault(['coin-1', 'coin-2']), pods)).toEqual(['coin-7f9c-aa', 'coin-7f9c-zz']);
  });

  it('takes coin-N as the N-th running pod in name order, and a pod name as it is', () => {
    expect(podsForFault(fault(['coin-2']), pods)).toEqual(['coin-7f9c-zz']);
    expect(podsForFault(fault(['coin-7f9c-zz']), pods)).toEqual(['coin-7f9c-zz']);
  });

  it('says which pods there are when an instance has none', () => {
    expect(() => podsForFault(fault(['coin-3']), pods)).toThrow(
      'no pod for instance coin-3: coin has 2 running pods (coin-7f9c-aa, coin-7f9c-zz)',
    );
  });
});

describe('latency calibration from the gateways', () => {
  it('sums the time the gateways spent on each dependency, in ms', () => {
    const tallies = dependencyTallies(
      parsePromText(
        [
          'gateway_dependency_duration_seconds_sum{dependency="coin",outcome="ok"} 1.5',
          'gateway_dependency_duration_seconds_count{dependency="coin",outcome="ok"} 10',
          'gateway_dependency_duration_seconds_sum{dependency="coin",outcome="timeout"} 0.5',
          'gateway_dependency_duration_seconds_count{dependency="coin",outcome="timeout"} 1',
          'gateway_dependency_duration_seconds_sum{dependency="vip",outcome="ok"} 0.2',
          'gateway_dependency_duration_seconds_count{dependency="vip",outcome="ok"} 4',
        ].join('\n'),
      ),
    );
    expect(tallies.coin).toEqual({ sumMs: 2000, count: 11 });
    expect(tallies.vip).toEqual({ sumMs: 200, count: 4 });
    expect(tallies.like).toEqual({ sumMs: 0, count: 0 });
  });

  it('gives the mean during the fault less the mean before it', () => {
    const baseline = { from: { sumMs: 100, count: 10 }, to: { sumMs: 150, count: 20 } };
    expect(
      observedAddedLatency({ base: { sumMs: 150, count: 20 }, now: { sumMs: 4_200, count: 30 } }, baseline),
    ).toEqual({
      addedLatencyMs: 400,
      samples: 10,
    });
    // No call during the fault, or none before it: no figure.
    expect(
      observedAddedLatency({ base: { sumMs: 150, count: 20 }, now: { sumMs: 150, count: 20 } }, baseline),
    ).toEqual({
      samples: 0,
    });
    expect(
      observedAddedLatency(
        { base: { sumMs: 150, count: 20 }, now: { sumMs: 4_200, count: 30 } },
        { from: baseline.to, to: baseline.to },
      ),
    ).toEqual({ samples: 10 });
  });
});
