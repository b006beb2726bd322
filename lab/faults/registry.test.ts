import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { KIND_INJECTORS } from '../kube/kube-target.ts';
import { parseExperiment } from '../runner/experiment.ts';
import { LOCAL_INJECTORS } from '../runner/local-target.ts';
import type { InjectorName } from './kind.ts';
import {
  configuredOf,
  describeParams,
  FAULT_KIND_NAMES,
  FAULT_KINDS,
  type Fault,
  type FaultKind,
  faultKind,
  isFaultKind,
  paramsOf,
  unsupportedBy,
} from './registry.ts';

/** Each target as the registry sees it: a name and the injectors it has. */
const TARGETS = {
  local: { name: 'local', injectors: LOCAL_INJECTORS.map((name) => ({ name })) },
  kind: { name: 'kind', injectors: KIND_INJECTORS.map((name) => ({ name })) },
} as const;

/** One fault of each kind as an experiment file writes it, and as the runner gets it. */
const EXAMPLES: { readonly [K in FaultKind]: { readonly file: string; readonly fault: Fault } } = {
  latency: {
    file: '{ kind: latency, service: coin, delay: 1.5s, jitter: 20ms }',
    fault: {
      kind: 'latency',
      service: 'coin',
      instances: ['coin-1', 'coin-2'],
      delayMs: 1500,
      jitterMs: 20,
      requestShare: 0.5,
    },
  },
  loss: {
    file: '{ kind: loss, service: like, percent: 30, instances: [like-2] }',
    fault: { kind: 'loss', service: 'like', instances: ['like-2'], percent: 30 },
  },
  'http-error': {
    file: '{ kind: http-error, service: vip, status: 502, percent: 50 }',
    fault: { kind: 'http-error', service: 'vip', instances: ['vip-1', 'vip-2'], status: 502, percent: 50 },
  },
  'worker-panic': {
    file: '{ kind: worker-panic, service: archive, percent: 100 }',
    fault: { kind: 'worker-panic', service: 'archive', instances: ['archive-1', 'archive-2'], percent: 100 },
  },
  kill: {
    file: '{ kind: kill, service: account, instances: [account-1] }',
    fault: { kind: 'kill', service: 'account', instances: ['account-1'] },
  },
  'http-delay': {
    file: '{ kind: http-delay, service: coin, delay: 1m }',
    fault: {
      kind: 'http-delay',
      service: 'coin',
      instances: ['coin-1', 'coin-2'],
      delayMs: 60_000,
      jitterMs: 0,
    },
  },
  reset: {
    file: '{ kind: reset, service: like, percent: 25 }',
    fault: { kind: 'reset', service: 'like', instances: ['like-1', 'like-2'], percent: 25 },
  },
};

function experimentWith(fault: string): string {
  return [
    'name: one-fault',
    'description: one fault of one kind',
    'load: { rate: 10, endpoint: video }',
    'phases:',
    `  - { name: fault, duration: 10s, faults: [${fault}] }`,
    '',
  ].join('\n');
}

describe('the fault-kind registry', () => {
  it('lists the seven kinds in the order the docs and the help show them', () => {
    expect(FAULT_KIND_NAMES).toEqual([
      'latency',
      'loss',
      'http-error',
      'worker-panic',
      'kill',
      'http-delay',
      'reset',
    ]);
  });

  it('files each kind under its own name', () => {
    for (const kind of FAULT_KIND_NAMES) expect(FAULT_KINDS[kind].kind).toBe(kind);
  });

  it('knows its kinds, and nothing an object inherits', () => {
    expect(isFaultKind('http-delay')).toBe(true);
    expect(isFaultKind('latncy')).toBe(false);
    expect(isFaultKind('toString')).toBe(false);
  });

  it.each(FAULT_KIND_NAMES)('reads a %s fault from an experiment file into the typed fault', (kind) => {
    const { file, fault } = EXAMPLES[kind];
    expect(parseExperiment(experimentWith(file), `${kind}.yaml`).phases[0]?.faults).toEqual([fault]);
  });

  it.each(FAULT_KIND_NAMES)(
    'applies a %s fault by a lease, netem or a kill, as its injectors need',
    (kind) => {
      const def = faultKind(kind);
      const injectors = Object.values(def.injectors);
      const leased = injectors.some((i) => i === 'fault-agent' || i === 'fault-proxy');
      expect(def.lease !== undefined).toBe(leased);
      expect(def.netem !== undefined).toBe(injectors.includes('tc-netem'));
      // Every kind runs in the local lab.
      expect(unsupportedBy(TARGETS.local, kind)).toBeUndefined();
    },
  );

  it('says which kinds a target cannot inject, and why', () => {
    for (const kind of FAULT_KIND_NAMES) expect(unsupportedBy(TARGETS.local, kind)).toBeUndefined();
    const bare = {
      name: 'bare',
      injectors: [{ name: 'fault-agent' as const }, { name: 'tc-netem' as const }],
    };
    expect(FAULT_KIND_NAMES.filter((kind) => unsupportedBy(bare, kind) !== undefined)).toEqual([
      'kill',
      'reset',
    ]);
    expect(unsupportedBy(bare, 'reset')).toBe(
      'reset needs the fault proxy in front of each instance, which the bare target does not have',
    );
  });

  it('refuses a latency on requests where netem would apply it, and lets one on responses through', () => {
    const netemOnly = { name: 'bare', injectors: [{ name: 'tc-netem' as const }] };
    const latency = (requestShare: number): Fault => ({
      kind: 'latency',
      service: 'coin',
      instances: ['coin-1'],
      delayMs: 300,
      jitterMs: 0,
      requestShare,
    });
    expect(unsupportedBy(netemOnly, latency(0.5))).toMatch(
      /^netem delays only what the pod sends \(its responses\): direction both needs the fault proxy/,
    );
    expect(unsupportedBy(netemOnly, latency(1))).toMatch(/direction requests needs the fault proxy/);
    expect(unsupportedBy(netemOnly, latency(0))).toBeUndefined();
    expect(unsupportedBy(TARGETS.local, latency(0.5))).toBeUndefined();
  });

  it("gives a fault's parameters in the lab's units, without where it acts", () => {
    expect(FAULT_KIND_NAMES.map((kind) => paramsOf(EXAMPLES[kind].fault))).toEqual([
      { delayMs: 1500, jitterMs: 20, requestShare: 0.5 },
      { percent: 30 },
      { status: 502, percent: 50 },
      { percent: 100 },
      {},
      { delayMs: 60_000, jitterMs: 0 },
      { percent: 25 },
    ]);
  });

  it('describes a fault by its kind, and calibrates only the kinds that say what they configure', () => {
    expect(FAULT_KIND_NAMES.map((kind) => describeParams(EXAMPLES[kind].fault))).toEqual([
      'delay 1.5s, jitter 20ms',
      '30%',
      '502 on 50%',
      '100% of tasks',
      '',
      'delay 1m',
      '25% of connections',
    ]);
    expect(FAULT_KIND_NAMES.map((kind) => configuredOf(EXAMPLES[kind].fault))).toEqual([
      { addedLatencyMs: 1500, jitterMs: 20, requestLatencyMs: 750, responseLatencyMs: 750 },
      { lossRate: 0.3 },
      { errorRate: 0.5 },
      undefined,
      undefined,
      undefined,
      undefined,
    ]);
  });
});

/** How the docs name each injector. */
const INJECTOR_WORDS: Readonly<Record<InjectorName, string>> = {
  'fault-agent': 'fault agent',
  'fault-proxy': 'fault proxy',
  supervisor: 'supervisor',
  'tc-netem': 'netem',
  'fault-sidecar': 'fault sidecar',
};

/** The rows of the markdown table whose header starts with `header`, by the kind in their first cell. */
function tableRows(doc: string, header: string): Map<string, string> {
  const lines = readFileSync(new URL(`../../${doc}`, import.meta.url), 'utf8').split('\n');
  const start = lines.findIndex((line) => line.startsWith(header));
  expect(start, `${doc} has a table headed ${header}`).toBeGreaterThanOrEqual(0);
  const end = lines.findIndex((line, i) => i > start && !line.startsWith('|'));
  const rows = lines.slice(start + 2, end);
  return new Map(rows.map((row) => [/^\| `([a-z-]+)` \|/.exec(row)?.[1] ?? row, row]));
}

describe.each([
  ['README.md', '| fault | parameters |'],
  ['experiments/README.md', '| kind | fields |'],
])('the fault kinds %s lists', (doc, header) => {
  const rows = tableRows(doc, header);

  it("are the registry's, in its order", () => {
    expect([...rows.keys()]).toEqual(FAULT_KIND_NAMES);
  });

  it.each(FAULT_KIND_NAMES)('%s: with its fields and the injector of each target', (kind) => {
    const def = faultKind(kind);
    const row = rows.get(kind) ?? '';
    for (const field of Object.keys(def.fields)) expect(row).toContain(`\`${field}\``);
    for (const injector of def.injectors) expect(row).toContain(INJECTOR_WORDS[injector]);
    if (unsupportedBy(TARGETS.kind, kind) !== undefined) expect(row).toContain('local only');
  });
});
