/**
 * The shape of an experiment file, as written (durations still strings, defaults not filled in).
 * It is the single source for both the validation (`experiment.ts`) and the JSON Schema editors use
 * (`experimentJsonSchema()`), so every `.describe()` text here is what an attendee sees on hover.
 *
 * Every leaf carries its own error text (`expecting(...)`) so that a rejected value is answered with what
 * would be valid, in the lab's words, not zod's.
 */
import { z } from 'zod';
import { TRUST_MODES } from '../../services/lib/trust.ts';
import { BACKENDS, STRATEGIES, topology } from '../../services/topology.ts';
import { CHOSEN_INJECTORS, type ChosenInjector, INJECTOR_TEXT, type InjectorName } from '../faults/kind.ts';
import { FAULT_KIND_NAMES, type FaultKind, FAULT_KINDS as KIND_DEFS } from '../faults/registry.ts';
import { ENDPOINT_PATHS, type EndpointName } from '../load/endpoints.ts';
import { durationField, expecting, oneOf, problemOf } from '../schema-fields.ts';

/** Every kind the lab can inject is available in experiment files, in the registry's order. */
export const FAULT_KINDS = FAULT_KIND_NAMES;
export type { FaultKind };

/** The load generator's endpoints are the ones an experiment may name. */
export const ENDPOINTS = Object.keys(ENDPOINT_PATHS) as [EndpointName, ...EndpointName[]];
export type Endpoint = EndpointName;

/** What drives the load: the built-in open-model generator, or k6 running experiments/load/video-page.ts. */
export const DRIVERS = ['builtin', 'k6'] as const;
export type Driver = (typeof DRIVERS)[number];

export const OPERATORS = ['>=', '<=', '==', '>', '<'] as const;
export type Operator = (typeof OPERATORS)[number];

/** Metrics measured per gateway, per phase. */
export const GATEWAY_METRICS = [
  'successRate',
  'degradedRate',
  'p50',
  'p95',
  'p99',
  'max',
  'achievedRps',
] as const;
export type GatewayMetric = (typeof GATEWAY_METRICS)[number];
/** Metrics counted per service (all its instances), per phase. */
export const SERVICE_METRICS = ['restarts', 'panicsRecovered', 'rogueServed'] as const;
export type ServiceMetric = (typeof SERVICE_METRICS)[number];
export type Metric = GatewayMetric | ServiceMetric;

/** What a metric's threshold is, which decides how a comparison like `< 350ms` is read. */
export type MetricUnit = 'share' | 'duration' | 'rate' | 'count';
export const METRIC_UNITS: Readonly<Record<Metric, MetricUnit>> = {
  successRate: 'share',
  degradedRate: 'share',
  p50: 'duration',
  p95: 'duration',
  p99: 'duration',
  max: 'duration',
  achievedRps: 'rate',
  restarts: 'count',
  panicsRecovered: 'count',
  rogueServed: 'share',
};

export const LIMITS = {
  rate: { min: 1, max: 2000 },
  timeoutMs: { min: 1, max: 60_000, default: 2_000 },
  phaseMs: { min: 1_000, max: 3_600_000 },
  /** Phases in a file, and the run's whole length (every variant runs every phase). */
  phases: { max: 50 },
  totalMs: 6 * 3_600_000,
  /** An experiment file's size, checked before it is read. */
  fileBytes: 256 * 1024,
  /** Rogue calls in one phase. */
  rogueCalls: { max: 1_000 },
} as const;

// ---------------------------------------------------------------------------------------------------------
// Leaves

const NAME_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;
const NAME_EXPECTED = 'a name of lowercase letters, digits and hyphens, such as weak-dependency-latency';

function nameField(description: string) {
  return z
    .string(expecting(NAME_EXPECTED))
    .regex(NAME_PATTERN, expecting(NAME_EXPECTED))
    .describe(description);
}

const SERVICE_EXPECTED = `${oneOf(BACKENDS)} (faults target backends; the gateways are what is measured)`;
const serviceField = z
  .enum(BACKENDS, expecting(SERVICE_EXPECTED))
  .describe(`The backend the fault hits: ${BACKENDS.join(', ')}. Gateways are measured, not faulted.`);

export const INSTANCE_PATTERN = /^([a-z]+)-([1-9][0-9]*)$/;
const INSTANCE_EXPECTED = 'an instance id <service>-<n>, such as coin-1';
const replicaList = BACKENDS.map((name) => `${name} ${topology.backends[name].replicas}`).join(', ');
const instancesField = z
  .array(
    z.string(expecting(INSTANCE_EXPECTED)).regex(INSTANCE_PATTERN, expecting(INSTANCE_EXPECTED)),
    expecting(`a list of instance ids, such as [coin-1]`),
  )
  .min(1, expecting('at least one instance id (leave `instances` out to hit every instance)'))
  .describe(
    `Which instances of the service the fault hits, as <service>-<n> with n from 1 to the service's replicas ` +
      `(${replicaList}). Default: every instance.`,
  );

// ---------------------------------------------------------------------------------------------------------
// Faults: one object per kind of the registry, its fields the kind's own (lab/faults/kinds/)

const faultBase = { service: serviceField, instances: instancesField.optional() };

/**
 * `injector: netem`, for a kind more than one injector can apply: which one (named in the results).
 * Without it, the target's first of the kind's: the fault proxy where there is one.
 */
function injectorField(kind: FaultKind) {
  const def = KIND_DEFS[kind];
  const choices = (Object.keys(CHOSEN_INJECTORS) as ChosenInjector[]).filter((c) =>
    (def.injectors as readonly InjectorName[]).includes(CHOSEN_INJECTORS[c]),
  );
  if (choices.length < 2) return {};
  const text = choices.map((c) => `\`${c}\` (${INJECTOR_TEXT[CHOSEN_INJECTORS[c]]})`).join(' or ');
  return {
    injector: z
      .enum(choices as [ChosenInjector, ...ChosenInjector[]], {
        error: (issue) => `${problemOf(issue)}; expected ${oneOf(choices)}`,
      })
      .optional()
      .describe(
        `Which injector applies it: ${text}. Default: the first of these the target has (netem only on Kubernetes, and only where the node kernel has sch_netem).`,
      ),
  };
}

function faultObject(kind: FaultKind) {
  const def = KIND_DEFS[kind];
  return z
    .object({
      kind: z.literal(kind).describe(def.schemaText.kind),
      ...faultBase,
      ...def.fields,
      ...injectorField(kind),
    })
    .strict()
    .describe(def.schemaText.fault);
}

/**
 * What `faultObject(kind)` builds, kind by kind: TypeScript cannot follow a kind's literal to its own
 * fields through `FAULT_KINDS.map`, so the file's types (`FaultFile`) are stated here once.
 */
type FaultObject = {
  [K in FaultKind]: z.ZodObject<FaultShape<K>, z.core.$strict>;
}[FaultKind];
type FaultShape<K extends FaultKind> = { kind: z.ZodLiteral<K> } & typeof faultBase &
  (typeof KIND_DEFS)[K]['fields'] extends infer S extends z.ZodRawShape
  ? S
  : never;

const FAULT_KIND_EXPECTED = `a fault kind: ${oneOf(FAULT_KINDS)}`;
const FAULT_EXPECTED = 'a fault mapping such as { kind: latency, service: coin, delay: 400ms }';

export const FaultSchema = z.discriminatedUnion(
  'kind',
  FAULT_KINDS.map(faultObject) as [FaultObject, ...FaultObject[]],
  {
    error: (issue) =>
      issue.code === 'invalid_union'
        ? `${problemOf(kindOf(issue.input))}; expected ${FAULT_KIND_EXPECTED}`
        : `${problemOf(issue)}; expected ${FAULT_EXPECTED}`,
  },
);

function kindOf(input: unknown): { input?: unknown } {
  return typeof input === 'object' && input !== null ? { input: (input as { kind?: unknown }).kind } : {};
}

// ---------------------------------------------------------------------------------------------------------
// Phases, variants, load

const PhaseSchema = z
  .object(
    {
      name: nameField('Unique within the experiment, e.g. baseline, fault, recovery.'),
      duration: durationField(LIMITS.phaseMs, 'How long load is driven in this phase.'),
      faults: z
        .array(FaultSchema, expecting('a list of faults'))
        .optional()
        .describe(
          'Faults active during this phase; injected at its start, removed at its end. Default: none.',
        ),
      rogue: z
        .object(
          {
            service: z
              .enum(BACKENDS, expecting(oneOf(BACKENDS)))
              .describe('The backend the rogue client calls.'),
            calls: z
              .number(expecting(`a whole number from 1 to ${LIMITS.rogueCalls.max}`))
              .int(expecting(`a whole number from 1 to ${LIMITS.rogueCalls.max}`))
              .min(1, expecting(`a whole number from 1 to ${LIMITS.rogueCalls.max}`))
              .max(LIMITS.rogueCalls.max, expecting(`a whole number from 1 to ${LIMITS.rogueCalls.max}`))
              .describe('How many calls, spread over the phase.'),
          },
          expecting('a rogue mapping such as { service: coin, calls: 20 }'),
        )
        .strict()
        .optional()
        .describe(
          'A rogue client in this phase: calls straight to an instance of the service, around the gateway and the fault proxy, unsigned and in plain HTTP. The phase counts how many were served (claim rogueServed); the trust mode decides.',
        ),
    },
    expecting('a phase mapping such as { name: baseline, duration: 10s }'),
  )
  .strict()
  .describe('A stretch of the run with its own faults; measurements are kept per phase.');

const VariantSchema = z
  .object(
    {
      name: nameField('Unique within the experiment, e.g. recovery-off.'),
      settings: z
        .object(
          {
            workerRecovery: z
              .boolean(expecting('true or false'))
              .optional()
              .describe(
                'Whether background workers recover from panics (default: the services default, on).',
              ),
            trust: z
              .enum(TRUST_MODES, expecting(oneOf(TRUST_MODES)))
              .optional()
              .describe(
                "Trust between the gateways and the backends for this variant: zero (none), half (signed calls), full (signed calls over mutual TLS). Default: the lab's (`up --trust`).",
              ),
          },
          expecting('a settings mapping such as { workerRecovery: true } or { trust: full }'),
        )
        .strict()
        .optional()
        .describe('Service settings applied before the phases run.'),
    },
    expecting('a variant mapping such as { name: recovery-on, settings: { workerRecovery: true } }'),
  )
  .strict()
  .describe('The phases are run once per variant, with its settings applied.');

const LoadSchema = z
  .object(
    {
      rate: z
        .number(expecting(`a number of requests per second from ${LIMITS.rate.min} to ${LIMITS.rate.max}`))
        .min(LIMITS.rate.min, expecting(`a number from ${LIMITS.rate.min} to ${LIMITS.rate.max}`))
        .max(LIMITS.rate.max, expecting(`a number from ${LIMITS.rate.min} to ${LIMITS.rate.max}`))
        .describe(
          'Requests per second sent to EACH gateway (open model: sent on schedule whether or not earlier ' +
            `requests have finished), ${LIMITS.rate.min} to ${LIMITS.rate.max}.`,
        ),
      endpoint: z
        .enum(ENDPOINTS, expecting(oneOf(ENDPOINTS)))
        .describe('The gateway scenario called: video = GET /api/video/:aid with a random video.'),
      timeout: durationField(
        LIMITS.timeoutMs,
        'A request not answered within this is counted as a timeout (default 2s).',
      ).optional(),
      driver: z
        .enum(DRIVERS, expecting(oneOf(DRIVERS)))
        .optional()
        .describe(
          'What drives the load (default builtin): builtin = the built-in generator, latency from the ' +
            'intended send time; k6 = k6 v2 running experiments/load/video-page.ts, latency from the actual ' +
            'send. `chaos-lab run --driver` overrides it.',
        ),
    },
    expecting('a load mapping such as { rate: 50, endpoint: video }'),
  )
  .strict()
  .describe('The load driven at every gateway at the same time.');

// ---------------------------------------------------------------------------------------------------------
// Claims

const OPERATOR_RE = '(>=|<=|==|>|<)';
const VALUE_RE: Readonly<Record<MetricUnit, string>> = {
  share: '(0(?:\\.\\d+)?|1(?:\\.0+)?|\\.\\d+)',
  duration: '(\\d+(?:\\.\\d+)?(?:ms|s|m|h))',
  rate: '(\\d+(?:\\.\\d+)?)',
  count: '(\\d+)',
};
export function comparisonPattern(unit: MetricUnit): string {
  return `^\\s*${OPERATOR_RE}\\s*${VALUE_RE[unit]}\\s*$`;
}

const COMPARISON_EXPECTED: Readonly<Record<MetricUnit, string>> = {
  share: 'a comparison with a share from 0 to 1, such as ">= 0.99"',
  duration: 'a comparison with a duration, such as "< 350ms"',
  rate: 'a comparison with requests per second, such as ">= 45"',
  count: 'a comparison with a whole number, such as "== 0" or "> 0"',
};

const METRIC_DESCRIPTIONS: Readonly<Record<Metric, string>> = {
  successRate: 'Share of requests answered 2xx, complete or degraded (0 to 1). Gateway claims only.',
  degradedRate:
    'Share of requests answered 2xx with a weak dependency missing (0 to 1). Gateway claims only.',
  p50: 'Median latency, measured from the intended send time. Gateway claims only.',
  p95: '95th percentile latency. Gateway claims only.',
  p99: '99th percentile latency. Gateway claims only.',
  max: 'Highest latency. Gateway claims only.',
  achievedRps: 'Requests per second actually sent to the gateway in the phase. Gateway claims only.',
  restarts: 'Restarts of the service instances within the phase. Service claims only.',
  panicsRecovered: 'Worker panics recovered by the service within the phase. Service claims only.',
  rogueServed:
    "Share of the phase's rogue calls (see a phase's `rogue`) the service served instead of refusing (0 to 1). Service claims only.",
};

function comparisonField(metric: Metric) {
  const unit = METRIC_UNITS[metric];
  return z
    .string(expecting(COMPARISON_EXPECTED[unit]))
    .regex(new RegExp(comparisonPattern(unit)), expecting(COMPARISON_EXPECTED[unit]))
    .optional()
    .describe(
      `${METRIC_DESCRIPTIONS[metric]} Operators: ${OPERATORS.join(' ')}. Quote it: "${example(unit)}".`,
    );
}

function example(unit: MetricUnit): string {
  return { share: '>= 0.99', duration: '< 350ms', rate: '>= 45', count: '== 0' }[unit];
}

const ALL_METRICS = [...GATEWAY_METRICS, ...SERVICE_METRICS] as const;
const ExpectSchema = z
  .object(
    Object.fromEntries(ALL_METRICS.map((metric) => [metric, comparisonField(metric)])) as Record<
      Metric,
      ReturnType<typeof comparisonField>
    >,
    expecting(`a mapping of metric to comparison, such as { successRate: ">= 0.99", p99: "< 350ms" }`),
  )
  .strict()
  .refine((expect) => Object.values(expect).some((v) => v !== undefined), {
    error: () => `got an empty mapping; expected at least one metric: ${ALL_METRICS.join(', ')}`,
  })
  .describe(
    `Metric → comparison. With \`gateway\`: ${GATEWAY_METRICS.join(', ')}. ` +
      `With \`service\`: ${SERVICE_METRICS.join(', ')}.`,
  );

const ClaimSchema = z
  .object(
    {
      gateway: z
        .enum(STRATEGIES, expecting(oneOf(STRATEGIES)))
        .optional()
        .describe(
          `The gateway measured (${STRATEGIES.join(', ')}); must be one of the experiment's gateways. ` +
            'Give either gateway or service.',
        ),
      service: z
        .enum(BACKENDS, expecting(oneOf(BACKENDS)))
        .optional()
        .describe(
          `The backend counted (${BACKENDS.join(', ')}), for ${SERVICE_METRICS.join(' and ')}. ` +
            'Give either gateway or service.',
        ),
      variant: z
        .string(expecting('the name of one of the experiment variants'))
        .optional()
        .describe('The variant the claim is about. Default: the claim must hold in every variant.'),
      phase: z.string(expecting('the name of one of the experiment phases')).describe('The phase measured.'),
      expect: ExpectSchema,
    },
    expecting('a claim mapping such as { gateway: resilient, phase: fault, expect: { p99: "< 350ms" } }'),
  )
  .strict()
  .describe(
    'What the experiment sets out to show. A gateway claim ({ gateway, phase, expect }) compares ' +
      `${GATEWAY_METRICS.join(', ')}; a service claim ({ service, phase, expect }) compares ` +
      `${SERVICE_METRICS.join(', ')}. Each metric in expect becomes one checked claim.`,
  );

// ---------------------------------------------------------------------------------------------------------
// The file

export const ExperimentFileSchema = z
  .object(
    {
      name: nameField('Identifies the experiment in `chaos-lab list`, results and reports.'),
      description: z
        .string(expecting('a one-line description of what the experiment shows'))
        .min(1, expecting('a one-line description of what the experiment shows'))
        .describe('One line: what the experiment shows. Shown by `chaos-lab list` and in the report.'),
      load: LoadSchema,
      gateways: z
        .array(
          z.enum(STRATEGIES, expecting(oneOf(STRATEGIES))),
          expecting(`a list of gateways, such as [${STRATEGIES.join(', ')}]`),
        )
        .min(1, expecting(`at least one of ${STRATEGIES.join(', ')} (leave \`gateways\` out for all)`))
        .optional()
        .describe(`Gateway strategies driven side by side: ${STRATEGIES.join(', ')}. Default: all.`),
      variants: z
        .array(VariantSchema, expecting('a list of variants, each { name, settings }'))
        .min(1, expecting('at least one variant (leave `variants` out for one variant named "default")'))
        .optional()
        .describe('Runs of the phases with different settings. Default: one variant named "default".'),
      phases: z
        .array(PhaseSchema, expecting('a list of phases, each { name, duration, faults? }'))
        .min(1, expecting('at least one phase, such as { name: baseline, duration: 10s }'))
        .max(LIMITS.phases.max, expecting(`at most ${LIMITS.phases.max} phases`))
        .describe('Run in order, for every variant.'),
      claims: z
        .array(ClaimSchema, expecting('a list of claims, each { gateway or service, phase, expect }'))
        .optional()
        .describe('What must hold for the experiment to pass. Default: none.'),
    },
    expecting('an experiment mapping with name, description, load and phases'),
  )
  .strict()
  .describe(
    'A chaos-lab experiment. Put `# yaml-language-server: $schema=./schema.json` at the top of the file ' +
      'for completion in editors.',
  );

export type ExperimentFile = z.input<typeof ExperimentFileSchema>;
export type FaultFile = z.input<typeof FaultSchema>;

/** The JSON Schema (draft-07, the draft editors' YAML plugins support best) of an experiment file. */
export function experimentJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(ExperimentFileSchema, { io: 'input', target: 'draft-07' }) as Record<
    string,
    unknown
  >;
  return { ...schema, title: 'chaos-lab experiment' };
}
