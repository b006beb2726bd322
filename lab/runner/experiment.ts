/**
 * Experiment files: YAML in, a typed `Experiment` out, or every problem in the file at once, each saying
 * where it is (file, line, column, field path) and what would be valid.
 *
 * Two layers: the zod schema in `experiment-schema.ts` checks the shape field by field; then the
 * cross-references a schema cannot express (a claim's phase exists, an instance index is within the
 * service's replicas, names are unique). Both run on every file so that one mistake does not hide another.
 */
import { readFile, stat } from 'node:fs/promises';
import { type Document, isMap, isScalar, isSeq, LineCounter, type Node, parseDocument } from 'yaml';
import type { z } from 'zod';
import type { TrustMode } from '../../services/lib/trust.ts';
import {
  BACKENDS,
  type BackendName,
  isBackendName,
  isStrategy,
  STRATEGIES,
  type Strategy,
  topology,
} from '../../services/topology.ts';
import { formatDuration, parseDuration } from '../duration.ts';
import { CHOSEN_INJECTORS, type ChosenInjector } from '../faults/kind.ts';
import { type Fault, faultKind } from '../faults/registry.ts';
import { oneOf, problemOf, tryParseDuration } from '../schema-fields.ts';
import {
  comparisonPattern,
  type Driver,
  type Endpoint,
  type ExperimentFile,
  ExperimentFileSchema,
  type FaultFile,
  GATEWAY_METRICS,
  type GatewayMetric,
  INSTANCE_PATTERN,
  LIMITS,
  METRIC_UNITS,
  type Metric,
  type Operator,
  SERVICE_METRICS,
  type ServiceMetric,
} from './experiment-schema.ts';

export { DurationError, formatDuration, parseDuration } from '../duration.ts';
/** A phase's faults are the registry's: on a backend, parameters in the lab's units. */
export type { Fault } from '../faults/registry.ts';
export { DURATION_EXPECTED } from '../schema-fields.ts';
export {
  DRIVERS,
  type Driver,
  ENDPOINTS,
  type Endpoint,
  experimentJsonSchema,
  FAULT_KINDS,
  type FaultKind,
  GATEWAY_METRICS,
  type GatewayMetric,
  type Metric,
  OPERATORS,
  type Operator,
  SERVICE_METRICS,
  type ServiceMetric,
} from './experiment-schema.ts';

// ---------------------------------------------------------------------------------------------------------
// The typed experiment (durations in milliseconds, defaults filled in)

export interface Experiment {
  /** The file it was read from, as given; used in messages and results. */
  readonly file: string;
  readonly name: string;
  readonly description: string;
  readonly load: {
    /** Requests per second to each gateway. */
    readonly rate: number;
    readonly endpoint: Endpoint;
    /** @default 2000 */
    readonly timeoutMs: number;
    /** @default builtin */
    readonly driver: Driver;
  };
  /** @default every strategy */
  readonly gateways: readonly Strategy[];
  /** @default one variant named "default" with no settings */
  readonly variants: readonly Variant[];
  readonly phases: readonly Phase[];
  /** One claim per metric: `expect: { successRate, p99 }` in the file becomes two claims here. */
  readonly claims: readonly Claim[];
}

export interface Variant {
  readonly name: string;
  readonly settings: VariantSettings;
}

/** What a variant overrides on the lab for its phases: worker recovery (backends), trust (gateways and backends). */
export interface VariantSettings {
  readonly workerRecovery?: boolean;
  readonly trust?: TrustMode;
}

export interface Phase {
  readonly name: string;
  readonly durationMs: number;
  readonly faults: readonly Fault[];
  /** A rogue client's calls straight to a backend during the phase. */
  readonly rogue?: RogueProbe;
}

export interface RogueProbe {
  readonly service: BackendName;
  readonly calls: number;
}

interface ClaimBase {
  /** Undefined: the claim must hold in every variant. */
  readonly variant: string | undefined;
  readonly phase: string;
  readonly operator: Operator;
  /** In the metric's unit: a share 0..1, milliseconds, requests per second or a count. */
  readonly threshold: number;
  /** As written in the file, normalised (`">= 0.99"`, `"< 350ms"`), for results and reports. */
  readonly expected: string;
}
export interface GatewayClaim extends ClaimBase {
  readonly subject: 'gateway';
  readonly gateway: Strategy;
  readonly metric: GatewayMetric;
}
export interface ServiceClaim extends ClaimBase {
  readonly subject: 'service';
  readonly service: BackendName;
  readonly metric: ServiceMetric;
}
export type Claim = GatewayClaim | ServiceClaim;

/** Whether a measured value satisfies a claim. */
export function claimHolds(claim: Pick<Claim, 'operator' | 'threshold'>, actual: number): boolean {
  switch (claim.operator) {
    case '>=':
      return actual >= claim.threshold;
    case '<=':
      return actual <= claim.threshold;
    case '>':
      return actual > claim.threshold;
    case '<':
      return actual < claim.threshold;
    case '==':
      return actual === claim.threshold;
  }
}

/** `coin` → `['coin-1', 'coin-2']`, from the topology's replicas. */
export function instanceIds(service: BackendName): string[] {
  return Array.from({ length: topology.backends[service].replicas }, (_, i) => `${service}-${i + 1}`);
}

// ---------------------------------------------------------------------------------------------------------
// Problems

export interface Problem {
  /** Field path such as `phases[1].faults[0].kind`; empty for the file as a whole. */
  readonly path: string;
  /** 1-based, when the field (or its nearest parent) is in the file. */
  readonly line?: number;
  readonly col?: number;
  /** `<problem>; expected <what is valid>` */
  readonly message: string;
}

export class ExperimentError extends Error {
  override readonly name = 'ExperimentError';
  constructor(
    readonly file: string,
    readonly problems: readonly Problem[],
  ) {
    const count = problems.length === 1 ? '1 problem' : `${problems.length} problems`;
    super(
      `invalid experiment ${file} (${count}):\n${problems.map((p) => formatProblem(file, p)).join('\n')}`,
    );
  }
}

/** `<file>:<line>:<col>: <path>: <problem>; expected <what is valid>` */
export function formatProblem(file: string, problem: Problem): string {
  const where = problem.line === undefined ? file : `${file}:${problem.line}:${problem.col ?? 1}`;
  return problem.path ? `${where}: ${problem.path}: ${problem.message}` : `${where}: ${problem.message}`;
}

// ---------------------------------------------------------------------------------------------------------
// Entry points

export async function loadExperiment(path: string): Promise<Experiment> {
  const refuse = (message: string) => new ExperimentError(path, [{ path: '', message }]);
  let bytes: Buffer;
  try {
    // Refused by its size before it is read: a huge file would take memory and time to refuse later.
    const { size } = await stat(path);
    if (size > LIMITS.fileBytes) {
      throw refuse(
        `the file is ${formatBytes(size)}; an experiment file is at most ${formatBytes(LIMITS.fileBytes)}`,
      );
    }
    bytes = await readFile(path);
  } catch (error) {
    if (error instanceof ExperimentError) throw error;
    const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : String(error);
    throw refuse(`cannot read the file (${reason}); expected a path to an experiment YAML file`);
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw refuse('the file is not UTF-8 text; expected an experiment YAML file saved as UTF-8');
  }
  return parseExperiment(text, path);
}

function formatBytes(bytes: number): string {
  return bytes < 1024 ? `${bytes} bytes` : `${Math.round(bytes / 1024)} KiB`;
}

/** Parses and validates; throws `ExperimentError` listing every problem found. */
export function parseExperiment(text: string, fileName: string): Experiment {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const at = (offset: number) => lineCounter.linePos(offset);

  if (doc.errors.length > 0) {
    throw new ExperimentError(
      fileName,
      doc.errors.map((error) => ({ path: '', ...at(error.pos[0]), message: yamlMessage(error) })),
    );
  }

  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 1000 });
  } catch (error) {
    throw new ExperimentError(fileName, [
      { path: '', line: 1, col: 1, message: `YAML: ${(error as Error).message}` },
    ]);
  }

  const found: Located[] = [...shapeProblems(raw), ...crossReferenceProblems(raw)];
  if (found.length > 0) {
    const problems = found
      .map(({ path, message, on }) => ({ path: formatPath(path), ...at(offsetOf(doc, path, on)), message }))
      .sort((a, b) => a.line - b.line || a.col - b.col);
    throw new ExperimentError(fileName, dedupe(problems));
  }
  return toExperiment(raw as ExperimentFile, fileName);
}

// ---------------------------------------------------------------------------------------------------------
// YAML syntax errors

function yamlMessage(error: { code: string; message: string }): string {
  // `p99: > 300ms` reads as the start of a block scalar; it is the commonest slip in claims.
  const hint = /block scalar/i.test(error.message)
    ? 'a quoted string when a value starts with > or |, such as p99: "> 300ms"'
    : YAML_HINTS[error.code];
  // The parser's own wording for this one names its API (`parseAllDocuments`), not the user's mistake.
  const message = error.code === 'MULTIPLE_DOCS' ? 'the file holds more than one document' : error.message;
  return hint ? `YAML: ${message}; expected ${hint}` : `YAML: ${message}`;
}

const YAML_HINTS: Record<string, string> = {
  TAB_AS_INDENT: 'indentation with spaces',
  DUPLICATE_KEY: 'each key once per mapping',
  MISSING_CHAR: 'the closing quote or bracket',
  MULTIPLE_DOCS: 'one experiment per file (no second `---` document)',
};

// ---------------------------------------------------------------------------------------------------------
// Layer 1: the shape

type PathSegment = string | number;
/** A problem before it is placed: `on: 'key'` points at a mapping key rather than its value. */
interface Located {
  readonly path: readonly PathSegment[];
  readonly message: string;
  readonly on?: 'key' | 'value';
}

function shapeProblems(raw: unknown): Located[] {
  // zod reports all unknown keys of a mapping in one issue; the lab reports each one where it is written,
  // so the known keys are kept aside while zod still has the schema at hand.
  const knownKeys = new Map<string, string[]>();
  const result = ExperimentFileSchema.safeParse(raw, {
    error: (issue) => {
      if (issue.code === 'unrecognized_keys') {
        const shape = (issue.inst as { shape?: Record<string, unknown> } | undefined)?.shape ?? {};
        knownKeys.set(pathKey(issue.path ?? []), Object.keys(shape));
        return 'unknown key';
      }
      const expected =
        'expected' in issue && typeof issue.expected === 'string' ? issue.expected : 'a valid value';
      return `${problemOf(issue)}; expected ${expected}`;
    },
  });
  if (result.success) return [];
  return result.error.issues.flatMap((issue) => fromIssue(issue, knownKeys));
}

function fromIssue(issue: z.core.$ZodIssue, knownKeys: Map<string, string[]>): Located[] {
  const path = issue.path.map((segment) => (typeof segment === 'symbol' ? String(segment) : segment));
  if (issue.code !== 'unrecognized_keys') return [{ path, message: issue.message }];
  const known = knownKeys.get(pathKey(path)) ?? [];
  return issue.keys.map((key) => ({
    path: [...path, key],
    on: 'key' as const,
    message: `unknown key ${JSON.stringify(key)}${didYouMean(key, known)}; expected ${
      known.length > 0 ? `one of ${known.join(', ')}` : 'no other keys'
    }`,
  }));
}

// ---------------------------------------------------------------------------------------------------------
// Layer 2: cross-references. Written against the raw value so they run even when the shape is wrong
// elsewhere; each check looks only at the parts that have the right shape.

function crossReferenceProblems(raw: unknown): Located[] {
  if (!isRecord(raw)) return [];
  const problems: Located[] = [];
  const phaseNames = uniqueNames(raw.phases, 'phases', 'phase', problems);
  const variantNames = Array.isArray(raw.variants)
    ? uniqueNames(raw.variants, 'variants', 'variant', problems)
    : ['default'];
  const gateways = checkGateways(raw.gateways, problems);
  checkTotalDuration(raw, variantNames.length, problems);
  if (Array.isArray(raw.phases)) {
    raw.phases.forEach((phase, index) => {
      if (isRecord(phase)) checkFaults(phase.faults, ['phases', index, 'faults'], problems);
    });
  }
  if (Array.isArray(raw.claims)) {
    raw.claims.forEach((claim, index) => {
      if (isRecord(claim)) checkClaim(claim, index, { phaseNames, variantNames, gateways }, problems);
    });
  }
  return problems;
}

/** Every variant runs every phase: the whole run is bounded (a typo such as `duration: 60m` × 20 phases). */
function checkTotalDuration(raw: Record<string, unknown>, variants: number, problems: Located[]): void {
  if (!Array.isArray(raw.phases)) return;
  const perVariant = raw.phases.reduce((sum: number, phase) => {
    const text = isRecord(phase) && typeof phase.duration === 'string' ? phase.duration : undefined;
    const ms = text === undefined ? undefined : tryParseDuration(text);
    return sum + (ms ?? 0);
  }, 0);
  const total = perVariant * Math.max(1, variants);
  if (total > LIMITS.totalMs) {
    problems.push({
      path: ['phases'],
      message: `the run would last ${formatDuration(total)} (${variants} variant${variants === 1 ? '' : 's'} × ${formatDuration(perVariant)} of phases); expected at most ${formatDuration(LIMITS.totalMs)} in all`,
    });
  }
}

/** Names of the list's items that are strings; a repeated one is a problem. */
function uniqueNames(list: unknown, field: string, noun: string, problems: Located[]): string[] {
  if (!Array.isArray(list)) return [];
  const firstAt = new Map<string, number>();
  list.forEach((item, index) => {
    if (!isRecord(item) || typeof item.name !== 'string') return;
    const first = firstAt.get(item.name);
    if (first === undefined) {
      firstAt.set(item.name, index);
      return;
    }
    problems.push({
      path: [field, index, 'name'],
      message: `${noun} name ${JSON.stringify(item.name)} is already used by ${field}[${first}]; expected a name no other ${noun} has`,
    });
  });
  return [...firstAt.keys()];
}

function checkGateways(list: unknown, problems: Located[]): readonly string[] | undefined {
  if (list === undefined) return STRATEGIES;
  if (!Array.isArray(list)) return undefined;
  const seen = new Set<string>();
  list.forEach((gateway, index) => {
    if (typeof gateway !== 'string' || !isStrategy(gateway)) return;
    if (seen.has(gateway)) {
      problems.push({
        path: ['gateways', index],
        message: `gateway ${JSON.stringify(gateway)} is listed twice; expected each gateway once`,
      });
    }
    seen.add(gateway);
  });
  return [...seen];
}

function checkFaults(faults: unknown, path: PathSegment[], problems: Located[]): void {
  if (!Array.isArray(faults)) return;
  // Two faults of one kind on one instance in one phase would fight over it; which wins is not obvious.
  const claimedBy = new Map<string, number>();
  faults.forEach((fault, index) => {
    if (!isRecord(fault) || typeof fault.service !== 'string' || !isBackendName(fault.service)) return;
    const service = fault.service;
    const valid = instanceIds(service);
    let targets: string[] = valid;
    if (Array.isArray(fault.instances)) {
      targets = [];
      fault.instances.forEach((instance, i) => {
        if (typeof instance !== 'string') return;
        const match = INSTANCE_PATTERN.exec(instance);
        if (!match) return;
        const where = [...path, index, 'instances', i];
        const replicas: number = topology.backends[service].replicas;
        if (match[1] !== service) {
          problems.push({
            path: where,
            message: `${JSON.stringify(instance)} is not an instance of ${service}; expected ${oneOf(valid)}`,
          });
        } else if (Number(match[2]) > replicas) {
          problems.push({
            path: where,
            message: `${JSON.stringify(instance)} does not exist: ${service} runs ${replicas} replica${
              replicas === 1 ? '' : 's'
            }; expected ${oneOf(valid)}`,
          });
        } else if (targets.includes(instance)) {
          problems.push({
            path: where,
            message: `${JSON.stringify(instance)} is listed twice; expected each instance once`,
          });
        } else {
          targets.push(instance);
        }
      });
    }
    if (typeof fault.kind !== 'string') return;
    for (const instance of targets) {
      const key = `${fault.kind} ${instance}`;
      const first = claimedBy.get(key);
      if (first === undefined) {
        claimedBy.set(key, index);
        continue;
      }
      problems.push({
        path: [...path, index],
        message: `a second ${fault.kind} fault on ${instance} in this phase (the first is ${formatPath([
          ...path,
          first,
        ])}); expected at most one fault of each kind per instance and phase`,
      });
      break;
    }
  });
}

interface Known {
  readonly phaseNames: readonly string[];
  readonly variantNames: readonly string[];
  readonly gateways: readonly string[] | undefined;
}

function checkClaim(claim: Record<string, unknown>, index: number, known: Known, problems: Located[]): void {
  const path = ['claims', index];
  const hasGateway = claim.gateway !== undefined;
  const hasService = claim.service !== undefined;
  const subjectHelp = `exactly one of gateway (for ${GATEWAY_METRICS.join(', ')}) or service (for ${SERVICE_METRICS.join(', ')})`;
  if (hasGateway && hasService) {
    problems.push({ path, message: `names both a gateway and a service; expected ${subjectHelp}` });
  } else if (!hasGateway && !hasService) {
    problems.push({ path, message: `names neither a gateway nor a service; expected ${subjectHelp}` });
  }

  if (typeof claim.gateway === 'string' && isStrategy(claim.gateway) && known.gateways) {
    if (!known.gateways.includes(claim.gateway)) {
      problems.push({
        path: [...path, 'gateway'],
        message: `gateway ${JSON.stringify(claim.gateway)} is not driven by this experiment; expected ${oneOf(
          known.gateways,
        )} (the experiment's gateways)`,
      });
    }
  }
  if (
    typeof claim.phase === 'string' &&
    known.phaseNames.length > 0 &&
    !known.phaseNames.includes(claim.phase)
  ) {
    problems.push({
      path: [...path, 'phase'],
      message: `no phase named ${JSON.stringify(claim.phase)}${didYouMean(claim.phase, known.phaseNames)}; expected ${oneOf(
        known.phaseNames,
      )}`,
    });
  }
  if (
    typeof claim.variant === 'string' &&
    known.variantNames.length > 0 &&
    !known.variantNames.includes(claim.variant)
  ) {
    problems.push({
      path: [...path, 'variant'],
      message: `no variant named ${JSON.stringify(claim.variant)}${didYouMean(
        claim.variant,
        known.variantNames,
      )}; expected ${oneOf(known.variantNames)} (or leave \`variant\` out for every variant)`,
    });
  }

  if (!isRecord(claim.expect) || hasGateway === hasService) return;
  for (const metric of Object.keys(claim.expect)) {
    if (hasGateway && (SERVICE_METRICS as readonly string[]).includes(metric)) {
      problems.push({
        path: [...path, 'expect', metric],
        on: 'key',
        message: `${metric} is counted per service, but this claim names a gateway; expected a claim with service: <${BACKENDS.join(
          '|',
        )}> for ${metric}, or a gateway metric (${GATEWAY_METRICS.join(', ')})`,
      });
    }
    if (hasService && (GATEWAY_METRICS as readonly string[]).includes(metric)) {
      problems.push({
        path: [...path, 'expect', metric],
        on: 'key',
        message: `${metric} is measured per gateway, but this claim names a service; expected a claim with gateway: <${STRATEGIES.join(
          '|',
        )}> for ${metric}, or a service metric (${SERVICE_METRICS.join(', ')})`,
      });
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// From the file's shape to the typed experiment (only once every check passed)

function toExperiment(file: ExperimentFile, fileName: string): Experiment {
  const variants: Variant[] = file.variants?.map((v) => ({ name: v.name, settings: { ...v.settings } })) ?? [
    { name: 'default', settings: {} },
  ];
  return {
    file: fileName,
    name: file.name,
    description: file.description,
    load: {
      rate: file.load.rate,
      endpoint: file.load.endpoint,
      timeoutMs:
        file.load.timeout === undefined ? LIMITS.timeoutMs.default : parseDuration(file.load.timeout),
      driver: file.load.driver ?? 'builtin',
    },
    gateways: file.gateways ?? [...STRATEGIES],
    variants,
    phases: file.phases.map((phase) => ({
      name: phase.name,
      durationMs: parseDuration(phase.duration),
      faults: (phase.faults ?? []).map(toFault),
      ...(phase.rogue ? { rogue: phase.rogue } : {}),
    })),
    claims: (file.claims ?? []).flatMap(toClaims),
  };
}

function toFault(fault: FaultFile): Fault {
  const { kind, service } = fault;
  // `injector` is a field of the kinds more than one injector can apply (experiment-schema.ts).
  const chosen = (fault as { readonly injector?: ChosenInjector }).injector;
  // The registry pairs each kind with its own parameters; TypeScript cannot follow `faultKind(kind)`.
  return {
    kind,
    service,
    instances: fault.instances ?? instanceIds(service),
    ...(chosen ? { injector: CHOSEN_INJECTORS[chosen] } : {}),
    ...faultKind(kind).fromFile({ ...fault, injector: chosen }),
  } as Fault;
}

type ClaimFile = NonNullable<ExperimentFile['claims']>[number];

function toClaims(claim: ClaimFile): Claim[] {
  return Object.entries(claim.expect).flatMap(([name, text]): Claim[] => {
    if (text === undefined) return [];
    const metric = name as Metric;
    const { operator, threshold, expected } = parseComparison(metric, text);
    const base = { variant: claim.variant, phase: claim.phase, operator, threshold, expected };
    return claim.gateway !== undefined
      ? [{ ...base, subject: 'gateway', gateway: claim.gateway, metric: metric as GatewayMetric }]
      : [
          {
            ...base,
            subject: 'service',
            service: claim.service as BackendName,
            metric: metric as ServiceMetric,
          },
        ];
  });
}

function parseComparison(metric: Metric, text: string) {
  const unit = METRIC_UNITS[metric];
  const match = new RegExp(comparisonPattern(unit)).exec(text);
  if (!match) throw new Error(`unreachable: ${metric} comparison ${text} passed the schema`);
  const operator = match[1] as Operator;
  const value = match[2] as string;
  const threshold = unit === 'duration' ? parseDuration(value) : Number(value);
  return { operator, threshold, expected: `${operator} ${value}` };
}

// ---------------------------------------------------------------------------------------------------------
// Placing a path in the YAML source

/**
 * Offset of the node at `path`, or of its nearest ancestor present in the file (a missing key is
 * reported where its mapping starts).
 */
function offsetOf(doc: Document, path: readonly PathSegment[], on: 'key' | 'value' = 'value'): number {
  let node: Node | null = doc.contents;
  let offset = node?.range?.[0] ?? 0;
  for (const [i, segment] of path.entries()) {
    const last = i === path.length - 1;
    if (isMap(node)) {
      const pair = node.items.find(
        (item) => isScalar(item.key) && String(item.key.value) === String(segment),
      );
      if (!pair) break;
      const key = pair.key as Node;
      offset = key.range?.[0] ?? offset;
      if (last && on === 'key') break;
      node = (pair.value as Node | null) ?? null;
      if (!node) break;
    } else if (isSeq(node) && typeof segment === 'number') {
      const item = node.items[segment] as Node | undefined;
      if (!item) break;
      node = item;
    } else {
      break;
    }
    offset = node.range?.[0] ?? offset;
  }
  return offset;
}

// ---------------------------------------------------------------------------------------------------------
// Small helpers

function formatPath(path: readonly PathSegment[]): string {
  return path.reduce<string>(
    (text, segment) =>
      typeof segment === 'number' ? `${text}[${segment}]` : text ? `${text}.${segment}` : segment,
    '',
  );
}

function pathKey(path: readonly PropertyKey[]): string {
  return JSON.stringify(path.map(String));
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function dedupe<T extends Problem>(problems: T[]): T[] {
  const seen = new Set<string>();
  return problems.filter((p) => {
    const key = `${p.path}\n${p.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** ` (did you mean "fault"?)` when a known name is a typo away. */
function didYouMean(word: string, known: readonly string[]): string {
  let best: string | undefined;
  let bestDistance = Math.min(3, Math.floor(word.length / 2) + 1);
  for (const candidate of known) {
    const distance = editDistance(word.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best === undefined ? '' : ` (did you mean ${JSON.stringify(best)}?)`;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current[j] = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution);
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}
