import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { DURATION_PATTERN } from '../schema-fields.ts';
import {
  claimHolds,
  ExperimentError,
  experimentJsonSchema,
  FAULT_KINDS,
  formatProblem,
  loadExperiment,
  parseDuration,
  parseExperiment,
} from './experiment.ts';
import { schemaIsCurrent } from './schema-cli.ts';

// The example from the issue, verbatim: what an attendee will copy.
const EXAMPLE = `name: weak-dependency-latency
description: Latency on a weak dependency — does the page still load?
load: { rate: 50, endpoint: video }        # requests per second to EACH gateway, open model
gateways: [naive, parallel, resilient]     # default: all
variants:                                  # optional; default one variant "default"
  - { name: recovered, settings: { workerRecovery: true } }
phases:
  - { name: baseline, duration: 10s }
  - name: fault
    duration: 20s
    faults:
      - { kind: latency, service: coin, delay: 400ms, jitter: 20ms }
  - { name: recovery, duration: 10s }
claims:
  - { gateway: resilient, phase: fault, expect: { successRate: ">= 0.99", p99: "< 350ms" } }
  - { gateway: naive, phase: fault, expect: { p99: "> 400ms" } }
`;

/** The example with one line replaced; fails the test if the line is not there. */
function edit(from: string, to: string): string {
  expect(EXAMPLE).toContain(from);
  return EXAMPLE.replace(from, to);
}

/** Every problem of a file, formatted as the user sees it. */
function problems(text: string, file = 'exp.yaml'): string[] {
  try {
    parseExperiment(text, file);
  } catch (error) {
    expect(error).toBeInstanceOf(ExperimentError);
    return (error as ExperimentError).problems.map((p) => formatProblem(file, p));
  }
  throw new Error('expected the experiment to be rejected');
}

describe('parseExperiment', () => {
  it('reads the example into typed values with durations in ms and defaults filled in', () => {
    const experiment = parseExperiment(EXAMPLE, 'exp.yaml');
    expect(experiment).toMatchObject({
      file: 'exp.yaml',
      name: 'weak-dependency-latency',
      load: { rate: 50, endpoint: 'video', timeoutMs: 2000 },
      gateways: ['naive', 'parallel', 'resilient'],
      variants: [{ name: 'recovered', settings: { workerRecovery: true } }],
    });
    expect(experiment.phases.map((p) => [p.name, p.durationMs])).toEqual([
      ['baseline', 10_000],
      ['fault', 20_000],
      ['recovery', 10_000],
    ]);
    expect(experiment.phases[1]?.faults).toEqual([
      {
        kind: 'latency',
        service: 'coin',
        instances: ['coin-1', 'coin-2'],
        delayMs: 400,
        jitterMs: 20,
        requestShare: 0.5,
      },
    ]);
    expect(experiment.claims).toEqual([
      {
        subject: 'gateway',
        gateway: 'resilient',
        variant: undefined,
        phase: 'fault',
        metric: 'successRate',
        operator: '>=',
        threshold: 0.99,
        expected: '>= 0.99',
      },
      expect.objectContaining({ gateway: 'resilient', metric: 'p99', operator: '<', threshold: 350 }),
      expect.objectContaining({ gateway: 'naive', metric: 'p99', operator: '>', threshold: 400 }),
    ]);
  });

  it('fills in every default: all gateways, one "default" variant, no faults, no claims', () => {
    const experiment = parseExperiment(
      'name: minimal\ndescription: d\nload: { rate: 10, endpoint: video, timeout: 1.5s }\nphases: [{ name: only, duration: 1m }]\n',
      'min.yaml',
    );
    expect(experiment.gateways).toEqual(['naive', 'parallel', 'resilient']);
    expect(experiment.variants).toEqual([{ name: 'default', settings: {} }]);
    expect(experiment.phases).toEqual([{ name: 'only', durationMs: 60_000, faults: [] }]);
    expect(experiment.claims).toEqual([]);
    expect(experiment.load.timeoutMs).toBe(1500);
  });

  it('reads every fault kind, explicit instances and service claims', () => {
    const experiment = parseExperiment(
      edit(
        '      - { kind: latency, service: coin, delay: 400ms, jitter: 20ms }\n',
        [
          '      - { kind: loss, service: like, percent: 30 }',
          '      - { kind: http-error, service: vip, status: 503, percent: 50, instances: [vip-2] }',
          '      - { kind: worker-panic, service: archive, percent: 100 }',
          '      - { kind: kill, service: account, instances: [account-1] }',
          '',
        ].join('\n'),
      ).replace(
        '  - { gateway: naive,',
        '  - { service: archive, variant: recovered, phase: fault, expect: { panicsRecovered: "> 0", restarts: "== 0" } }\n  - { gateway: naive,',
      ),
      'kinds.yaml',
    );
    expect(experiment.phases[1]?.faults).toEqual([
      { kind: 'loss', service: 'like', instances: ['like-1', 'like-2'], percent: 30 },
      { kind: 'http-error', service: 'vip', instances: ['vip-2'], status: 503, percent: 50 },
      { kind: 'worker-panic', service: 'archive', instances: ['archive-1', 'archive-2'], percent: 100 },
      { kind: 'kill', service: 'account', instances: ['account-1'] },
    ]);
    expect(experiment.claims.filter((c) => c.subject === 'service')).toEqual([
      expect.objectContaining({
        service: 'archive',
        variant: 'recovered',
        metric: 'panicsRecovered',
        threshold: 0,
      }),
      expect.objectContaining({ service: 'archive', metric: 'restarts', operator: '==', threshold: 0 }),
    ]);
  });

  it('reads http-delay and reset faults, which experiments can use as the CLI does', () => {
    const experiment = parseExperiment(
      edit(
        '      - { kind: latency, service: coin, delay: 400ms, jitter: 20ms }\n',
        [
          '      - { kind: http-delay, service: like, delay: 1.5s, jitter: 20ms, instances: [like-1] }',
          '      - { kind: http-delay, service: vip, delay: 300ms }',
          '      - { kind: reset, service: coin, percent: 25 }',
          '',
        ].join('\n'),
      ),
      'new-kinds.yaml',
    );
    expect(experiment.phases[1]?.faults).toEqual([
      { kind: 'http-delay', service: 'like', instances: ['like-1'], delayMs: 1500, jitterMs: 20 },
      { kind: 'http-delay', service: 'vip', instances: ['vip-1', 'vip-2'], delayMs: 300, jitterMs: 0 },
      { kind: 'reset', service: 'coin', instances: ['coin-1', 'coin-2'], percent: 25 },
    ]);
  });

  it('rejects an http-delay without a delay, a reset of 150% and a field of another kind', () => {
    const text = edit(
      '      - { kind: latency, service: coin, delay: 400ms, jitter: 20ms }\n',
      [
        '      - { kind: http-delay, service: like, jitter: 20ms }',
        '      - { kind: reset, service: coin, percent: 150 }',
        '      - { kind: reset, service: vip, percent: 10, status: 503 }',
        '',
      ].join('\n'),
    );
    expect(problems(text)).toEqual([
      'exp.yaml:12:9: phases[1].faults[0].delay: missing; expected a duration with a unit, such as 300ms, 1.5s, 20s or 2m, from 1ms to 1m',
      'exp.yaml:13:48: phases[1].faults[1].percent: got 150; expected a percentage from 0 to 100',
      'exp.yaml:14:51: phases[1].faults[2].status: unknown key "status"; expected one of kind, service, instances, percent',
    ]);
  });

  it('rejects two http-delay faults on one instance in a phase, as for every kind', () => {
    const text = edit(
      '      - { kind: latency, service: coin, delay: 400ms, jitter: 20ms }\n',
      [
        '      - { kind: http-delay, service: coin, delay: 100ms }',
        '      - { kind: http-delay, service: coin, delay: 200ms, instances: [coin-2] }',
        '',
      ].join('\n'),
    );
    expect(problems(text)).toEqual([
      'exp.yaml:13:9: phases[1].faults[1]: a second http-delay fault on coin-2 in this phase (the first is phases[1].faults[0]); expected at most one fault of each kind per instance and phase',
    ]);
  });

  it('rejects an unknown fault kind, listing the valid kinds', () => {
    expect(problems(edit('kind: latency', 'kind: latncy'))).toEqual([
      'exp.yaml:12:17: phases[1].faults[0].kind: got "latncy"; expected a fault kind: one of latency, loss, http-error, worker-panic, kill, http-delay, reset',
    ]);
  });

  it('rejects a loss of 150%', () => {
    const text = edit(
      '{ kind: latency, service: coin, delay: 400ms, jitter: 20ms }',
      '{ kind: loss, service: coin, percent: 150 }',
    );
    expect(problems(text)).toEqual([
      'exp.yaml:12:47: phases[1].faults[0].percent: got 150; expected a percentage from 0 to 100',
    ]);
  });

  it('rejects a file without phases', () => {
    const text = EXAMPLE.replace(/^phases:[\s\S]*?(?=^claims:)/m, '').replace(/^claims:[\s\S]*/m, '');
    expect(problems(text)).toEqual([
      'exp.yaml:1:1: phases: missing; expected a list of phases, each { name, duration, faults? }',
    ]);
    expect(problems(`${text}phases: []\n`)).toEqual([
      'exp.yaml:7:9: phases: got an empty list; expected at least one phase, such as { name: baseline, duration: 10s }',
    ]);
  });

  it('rejects an unknown service, listing the backends', () => {
    expect(problems(edit('service: coin', 'service: coins'))).toEqual([
      'exp.yaml:12:35: phases[1].faults[0].service: got "coins"; expected one of account, archive, vip, like, coin (faults target backends; the gateways are what is measured)',
    ]);
  });

  it('reports malformed YAML with its line and column', () => {
    expect(problems(edit('[naive, parallel, resilient]', '[naive, parallel, resilient'))).toEqual([
      expect.stringMatching(/^exp\.yaml:5:1: YAML: .*\]/),
    ]);
    // The commonest slip: a comparison starting with `>` unquoted.
    expect(problems(edit('{ p99: "> 400ms" }', '{ p99: > 400ms }'))).toEqual([
      'exp.yaml:16:52: YAML: Plain value cannot start with block scalar indicator >; expected a quoted string when a value starts with > or |, such as p99: "> 300ms"',
    ]);
  });

  it('reads the load driver: builtin unless the file says k6', () => {
    expect(parseExperiment(EXAMPLE, 'exp.yaml').load.driver).toBe('builtin');
    const k6 = edit('load: { rate: 50, endpoint: video }', 'load: { rate: 50, endpoint: video, driver: k6 }');
    expect(parseExperiment(k6, 'exp.yaml').load.driver).toBe('k6');
    expect(
      problems(
        edit('load: { rate: 50, endpoint: video }', 'load: { rate: 50, endpoint: video, driver: k7 }'),
      ),
    ).toEqual(['exp.yaml:3:44: load.driver: got "k7"; expected one of builtin, k6']);
  });

  it('rejects an unknown key where it is written, suggesting the likely one', () => {
    expect(
      problems(
        edit('load: { rate: 50, endpoint: video }', 'load: { rate: 50, endpoint: video, timout: 2s }'),
      ),
    ).toEqual([
      'exp.yaml:3:36: load.timout: unknown key "timout" (did you mean "timeout"?); expected one of rate, endpoint, timeout, driver',
    ]);
    expect(problems(`${EXAMPLE}duration: 1m\n`)).toEqual([
      'exp.yaml:17:1: duration: unknown key "duration"; expected one of name, description, load, gateways, variants, phases, claims',
    ]);
  });

  it('rejects a claim on a phase, variant or gateway the experiment does not have', () => {
    const text = edit(
      'gateway: naive, phase: fault',
      'gateway: naive, variant: recoverd, phase: falt',
    ).replace('gateways: [naive, parallel, resilient]', 'gateways: [parallel, resilient]');
    expect(problems(text)).toEqual([
      'exp.yaml:16:16: claims[1].gateway: gateway "naive" is not driven by this experiment; expected one of parallel, resilient (the experiment\'s gateways)',
      'exp.yaml:16:32: claims[1].variant: no variant named "recoverd" (did you mean "recovered"?); expected recovered (or leave `variant` out for every variant)',
      'exp.yaml:16:49: claims[1].phase: no phase named "falt" (did you mean "fault"?); expected one of baseline, fault, recovery',
    ]);
  });

  it('rejects a claim whose metric does not fit its subject', () => {
    const text = edit(
      '{ gateway: naive, phase: fault, expect: { p99: "> 400ms" } }',
      '{ gateway: naive, phase: fault, expect: { restarts: "== 0" } }',
    );
    expect(problems(text)).toEqual([
      'exp.yaml:16:47: claims[1].expect.restarts: restarts is counted per service, but this claim names a gateway; expected a claim with service: <account|archive|vip|like|coin> for restarts, or a gateway metric (successRate, degradedRate, p50, p95, p99, max, achievedRps)',
    ]);
  });

  it('rejects bad durations, numbers without a unit included', () => {
    expect(problems(edit('delay: 400ms', 'delay: 400'))).toEqual([
      'exp.yaml:12:48: phases[1].faults[0].delay: got 400; expected a duration with a unit, such as 300ms, 1.5s, 20s or 2m, from 1ms to 1m',
    ]);
    expect(
      problems(edit('{ name: baseline, duration: 10s }', '{ name: baseline, duration: 10 sec }')),
    ).toEqual([
      'exp.yaml:8:33: phases[0].duration: got "10 sec"; expected a duration with a unit, such as 300ms, 1.5s, 20s or 2m, from 1s to 1h',
    ]);
    expect(problems(edit('p99: "< 350ms"', 'p99: "< 350"'))).toEqual([
      'exp.yaml:15:80: claims[0].expect.p99: got "< 350"; expected a comparison with a duration, such as "< 350ms"',
    ]);
  });

  it('rejects an instance beyond the service replicas', () => {
    const text = edit('jitter: 20ms }', 'jitter: 20ms, instances: [coin-1, coin-3] }');
    expect(problems(text)).toEqual([
      'exp.yaml:12:89: phases[1].faults[0].instances[1]: "coin-3" does not exist: coin runs 2 replicas; expected one of coin-1, coin-2',
    ]);
  });

  it('reports every problem of a file at once, in file order', () => {
    const text = edit('kind: latency', 'kind: latncy')
      .replace('rate: 50', 'rate: 5000')
      .replace('{ name: recovery, duration: 10s }', '{ name: baseline, duration: 10s }')
      .replace('phase: fault, expect: { successRate', 'phase: falt, expect: { successRate');
    expect(problems(text)).toEqual([
      'exp.yaml:3:15: load.rate: got 5000; expected a number from 1 to 2000',
      'exp.yaml:12:17: phases[1].faults[0].kind: got "latncy"; expected a fault kind: one of latency, loss, http-error, worker-panic, kill, http-delay, reset',
      'exp.yaml:13:13: phases[2].name: phase name "baseline" is already used by phases[0]; expected a name no other phase has',
      'exp.yaml:15:34: claims[0].phase: no phase named "falt" (did you mean "fault"?); expected one of baseline, fault',
    ]);
  });

  it('says which file, how many problems, and each one in its message', () => {
    try {
      parseExperiment(edit('rate: 50', 'rate: 0'), 'experiments/x.yaml');
      expect.unreachable();
    } catch (error) {
      expect((error as Error).message).toBe(
        'invalid experiment experiments/x.yaml (1 problem):\nexperiments/x.yaml:3:15: load.rate: got 0; expected a number from 1 to 2000',
      );
      expect((error as ExperimentError).problems).toEqual([
        { path: 'load.rate', line: 3, col: 15, message: 'got 0; expected a number from 1 to 2000' },
      ]);
    }
  });
});

describe('loadExperiment', () => {
  it('reads a file, and names a missing one', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'experiment-'));
    try {
      await writeFile(join(dir, 'x.yaml'), EXAMPLE);
      expect((await loadExperiment(join(dir, 'x.yaml'))).name).toBe('weak-dependency-latency');
      const missing = join(dir, 'nope.yaml');
      await expect(loadExperiment(missing)).rejects.toThrow(
        `${missing}: cannot read the file (no such file); expected a path to an experiment YAML file`,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('experiment files too large or not text', () => {
  it('refuses a file over the size bound before reading it, and one that is not UTF-8', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'experiment-'));
    try {
      const huge = join(dir, 'huge.yaml');
      // Valid YAML all along (a comment), so only the size can refuse it.
      await writeFile(huge, `${EXAMPLE}\n#${'x'.repeat(300 * 1024)}\n`);
      await expect(loadExperiment(huge)).rejects.toThrow(
        /the file is 3\d\d KiB; an experiment file is at most 256 KiB/,
      );
      const latin1 = join(dir, 'latin1.yaml');
      await writeFile(
        latin1,
        Buffer.concat([
          Buffer.from(EXAMPLE.replace('description:', '#\ndescription:')),
          Buffer.from([0xe9, 0x0a]),
        ]),
      );
      await expect(loadExperiment(latin1)).rejects.toThrow(/the file is not UTF-8 text/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses more than 50 phases, and a run longer than 6 hours in all', () => {
    const phases = (n: number, duration: string) =>
      Array.from({ length: n }, (_, i) => `  - { name: p${i}, duration: ${duration} }`).join('\n');
    const file = (body: string) =>
      `name: long\ndescription: d\nload: { rate: 1, endpoint: video }\nphases:\n${body}\n`;
    expect(() => parseExperiment(file(phases(51, '1s')), 'many.yaml')).toThrow(/at most 50 phases/);
    expect(() => parseExperiment(file(phases(7, '1h')), 'long.yaml')).toThrow(
      /the run would last 7h \(1 variant × 7h of phases\); expected at most 6h in all/,
    );
    expect(parseExperiment(file(phases(6, '1h')), 'ok.yaml').phases).toHaveLength(6);
  });
});

describe('trust and rogue calls', () => {
  const TRUST = `name: trust
description: d
load: { rate: 10, endpoint: video }
variants:
  - { name: zero, settings: { trust: zero } }
  - { name: full, settings: { trust: full, workerRecovery: true } }
phases:
  - { name: rogue, duration: 10s, rogue: { service: coin, calls: 20 } }
claims:
  - { variant: full, service: coin, phase: rogue, expect: { rogueServed: "== 0" } }
`;

  it('reads a variant’s trust, a phase’s rogue client and a rogueServed claim', () => {
    const experiment = parseExperiment(TRUST, 'exp.yaml');
    expect(experiment.variants.map((v) => v.settings)).toEqual([
      { trust: 'zero' },
      { trust: 'full', workerRecovery: true },
    ]);
    expect(experiment.phases[0]?.rogue).toEqual({ service: 'coin', calls: 20 });
    expect(experiment.claims[0]).toMatchObject({
      subject: 'service',
      service: 'coin',
      metric: 'rogueServed',
    });
  });

  it.each([
    [
      'trust: full',
      'trust: total',
      /variants\[1\]\.settings\.trust: got "total"; expected one of zero, half, full/,
    ],
    ['calls: 20', 'calls: 0', /phases\[0\]\.rogue\.calls: .*expected a whole number from 1 to 1000/],
    ['calls: 20', 'calls: 1001', /phases\[0\]\.rogue\.calls: .*expected a whole number from 1 to 1000/],
    ['service: coin, calls', 'service: gateway, calls', /phases\[0\]\.rogue\.service: got "gateway"/],
    ['calls: 20 }', 'calls: 20, via: proxy }', /phases\[0\]\.rogue/],
  ])('refuses %j → %j with the field and what is valid', (from, to, message) => {
    expect(TRUST).toContain(from);
    const found = problems(TRUST.replace(from, to));
    expect(found.join('\n')).toMatch(message);
  });
});

describe('durations', () => {
  // The experiment schema spells the CLI's duration grammar (lab/duration.ts) as a pattern for editors;
  // the two must agree on what a duration is.
  it.each([
    '300ms',
    '1.5s',
    '20s',
    '2m',
    '1h',
    '0ms',
    '300',
    '1.5',
    '-1s',
    '1m30s',
    '1 s',
    '.5s',
    's',
    '10sec',
  ])('the schema pattern and parseDuration agree on %j', (text) => {
    const byPattern = new RegExp(DURATION_PATTERN).test(text);
    const byParser = (() => {
      try {
        parseDuration(text);
        return true;
      } catch {
        return false;
      }
    })();
    expect(byPattern).toBe(byParser);
  });

  it('refuses a fraction of a millisecond with the range that is valid', () => {
    expect(problems(edit('jitter: 20ms', 'jitter: 0.5ms'))).toEqual([
      'exp.yaml:12:63: phases[1].faults[0].jitter: got "0.5ms"; expected a duration with a unit, such as 300ms, 1.5s, 20s or 2m, from 0ms to 1m',
    ]);
  });
});

describe('claimHolds', () => {
  it.each([
    ['>=', 0.99, 0.99, true],
    ['>=', 0.99, 0.98, false],
    ['>', 400, 400, false],
    ['<', 350, 349.9, true],
    ['<=', 350, 350, true],
    ['==', 0, 0, true],
    ['==', 0, 1, false],
  ] as const)('%s %d with %d → %s', (operator, threshold, actual, holds) => {
    expect(claimHolds({ operator, threshold }, actual)).toBe(holds);
  });
});

describe('the JSON Schema', () => {
  const schema = experimentJsonSchema();

  it('accepts the example as an editor would read it', () => {
    expect(validate(schema, parse(EXAMPLE))).toEqual([]);
  });

  it('accepts every fault kind of the registry, http-delay and reset included', () => {
    const file = parse(
      edit(
        '      - { kind: latency, service: coin, delay: 400ms, jitter: 20ms }\n',
        [
          '      - { kind: http-delay, service: like, delay: 1.5s, jitter: 20ms }',
          '      - { kind: reset, service: coin, percent: 25 }',
          '',
        ].join('\n'),
      ),
    );
    expect(validate(schema, file)).toEqual([]);
    const faults = at(schema, 'properties', 'phases', 'items', 'properties', 'faults', 'items', 'oneOf');
    const kinds = (faults as JsonSchema[]).map((fault) => at(fault, 'properties', 'kind', 'const'));
    expect(kinds).toEqual([...FAULT_KINDS]);
    expect(kinds).toEqual(['latency', 'loss', 'http-error', 'worker-panic', 'kill', 'http-delay', 'reset']);
  });

  it('rejects what the validation rejects: an unknown key, a fault kind, a bare number duration', () => {
    const bad = parse(
      edit('kind: latency', 'kind: latncy')
        .replace('rate: 50', 'rate: 50, extra: 1')
        .replace('10s }', '10 }'),
    );
    expect(validate(schema, bad)).toEqual([
      '/load: unknown key extra',
      '/phases/0/duration: not a string',
      '/phases/1/faults/0: matches none of oneOf',
    ]);
  });

  it('is what experiments/schema.json holds (regenerate with lab/runner/schema-cli.ts)', async () => {
    expect(await schemaIsCurrent()).toBe(true);
  });
});

type JsonSchema = Record<string, unknown>;

/** The value at `path` in a JSON Schema; fails the test when a step is missing. */
function at(schema: unknown, ...path: string[]): unknown {
  return path.reduce((node, key) => {
    expect(node, `no ${key} in the schema`).toHaveProperty([key]);
    return (node as JsonSchema)[key];
  }, schema);
}

/**
 * The subset of JSON Schema draft-07 the generated schema uses, checked against a value. Fails loudly on
 * any other keyword, so a schema change cannot slip past this test unchecked.
 */
function validate(schema: JsonSchema, value: unknown, path = ''): string[] {
  const known = new Set([
    '$schema',
    'title',
    'description',
    'type',
    'properties',
    'required',
    'additionalProperties',
    'items',
    'minItems',
    'maxItems',
    'enum',
    'const',
    'pattern',
    'minLength',
    'minimum',
    'maximum',
    'oneOf',
  ]);
  for (const key of Object.keys(schema)) if (!known.has(key)) throw new Error(`unhandled keyword ${key}`);
  const at = path || '/';
  if (schema.oneOf) {
    const matches = (schema.oneOf as JsonSchema[]).filter(
      (option) => validate(option, value, path).length === 0,
    );
    return matches.length === 1
      ? []
      : [`${at}: matches ${matches.length === 0 ? 'none' : 'several'} of oneOf`];
  }
  const errors: string[] = [];
  switch (schema.type) {
    case 'object': {
      if (typeof value !== 'object' || value === null || Array.isArray(value))
        return [`${at}: not an object`];
      const record = value as Record<string, unknown>;
      const properties = (schema.properties ?? {}) as Record<string, JsonSchema>;
      for (const key of (schema.required ?? []) as string[]) {
        if (!(key in record)) errors.push(`${at}: missing ${key}`);
      }
      for (const [key, item] of Object.entries(record)) {
        const property = properties[key];
        if (property) errors.push(...validate(property, item, `${path}/${key}`));
        else if (schema.additionalProperties === false) errors.push(`${at}: unknown key ${key}`);
      }
      return errors;
    }
    case 'array': {
      if (!Array.isArray(value)) return [`${at}: not an array`];
      if (typeof schema.minItems === 'number' && value.length < schema.minItems)
        errors.push(`${at}: too few items`);
      if (typeof schema.maxItems === 'number' && value.length > schema.maxItems)
        errors.push(`${at}: too many items`);
      value.forEach((item, i) => {
        errors.push(...validate(schema.items as JsonSchema, item, `${path}/${i}`));
      });
      return errors;
    }
    case 'string':
      if (typeof value !== 'string') return [`${at}: not a string`];
      if (schema.pattern && !new RegExp(schema.pattern as string).test(value)) errors.push(`${at}: pattern`);
      if (typeof schema.minLength === 'number' && value.length < schema.minLength)
        errors.push(`${at}: too short`);
      break;
    case 'number':
    case 'integer':
      if (typeof value !== 'number') return [`${at}: not a number`];
      if (schema.type === 'integer' && !Number.isInteger(value)) errors.push(`${at}: not an integer`);
      if (typeof schema.minimum === 'number' && value < schema.minimum) errors.push(`${at}: below minimum`);
      if (typeof schema.maximum === 'number' && value > schema.maximum) errors.push(`${at}: above maximum`);
      break;
    case 'boolean':
      if (typeof value !== 'boolean') return [`${at}: not a boolean`];
      break;
    default:
      throw new Error(`unhandled type ${String(schema.type)}`);
  }
  if (schema.enum && !(schema.enum as unknown[]).includes(value)) errors.push(`${at}: not in enum`);
  if ('const' in schema && schema.const !== value) errors.push(`${at}: not ${String(schema.const)}`);
  return errors;
}
