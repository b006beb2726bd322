import { z } from 'zod';
import { FAULT_BOUNDS } from '../../../services/fault-bounds.ts';
import { usageError } from '../../cli-error.ts';
import { formatDuration, parseDuration } from '../../duration.ts';
import { durationField, expecting, oneOf } from '../../schema-fields.ts';
import { defineFaultKind, type InjectorChoice } from '../kind.ts';

/** An experiment's latency is at least 1 ms: 0ms would be a fault that does nothing. */
const DELAY = { ...FAULT_BOUNDS.delayMs, min: Math.max(1, FAULT_BOUNDS.delayMs.min) };

/** `delay 400ms, jitter 20ms`, or `delay 400ms` without jitter. */
export function describeDelay(p: { readonly delayMs: number; readonly jitterMs: number }): string {
  return p.jitterMs > 0
    ? `delay ${formatDuration(p.delayMs)}, jitter ${formatDuration(p.jitterMs)}`
    : `delay ${formatDuration(p.delayMs)}`;
}

/** `--delay` (required) and `--jitter` (default 0), for the kinds that delay. */
export function delayFromFlags(kind: string, given: { delay?: number; jitter?: number }) {
  if (given.delay === undefined) throw usageError(`${kind} needs --delay`, 'e.g. --delay 300ms');
  return { delayMs: given.delay, jitterMs: given.jitter ?? 0 };
}

/** The file's `delay` and `jitter` fields, for the kinds that delay. */
export function delayFields(what: string) {
  return {
    delay: durationField(DELAY, what),
    jitter: durationField(FAULT_BOUNDS.jitterMs, 'Random spread around `delay` (default 0ms).').optional(),
  };
}

export function delayFromFile(file: { readonly delay: string; readonly jitter?: string | undefined }) {
  return {
    delayMs: parseDuration(file.delay),
    jitterMs: file.jitter === undefined ? 0 : parseDuration(file.jitter),
  };
}

/**
 * The way a latency is paid, as files and flags say it, and the share of its delay and jitter paid
 * on the way to the backend (the fault proxy's `requestShare`); the rest is paid on the way back.
 * `delay` is what each call pays in all, whichever way, so a lesson's figures do not depend on it.
 */
export const LATENCY_DIRECTIONS = { requests: 1, responses: 0, both: 0.5 } as const;
export type LatencyDirection = keyof typeof LATENCY_DIRECTIONS;
const DIRECTION_NAMES = Object.keys(LATENCY_DIRECTIONS) as [LatencyDirection, ...LatencyDirection[]];

/** Without a direction: both ways, half each; but netem delays only what the pod sends, its responses. */
function defaultShare(choice: InjectorChoice): number {
  return choice.injector === 'netem' ? LATENCY_DIRECTIONS.responses : LATENCY_DIRECTIONS.both;
}

/** The direction a share is written as; undefined for a split the lab does not write. */
function directionOf(requestShare: number): LatencyDirection | undefined {
  return DIRECTION_NAMES.find((d) => LATENCY_DIRECTIONS[d] === requestShare);
}

// A type, not an interface: the fault kinds' params are records of numbers, which an interface is not.
export type LatencyParams = {
  readonly delayMs: number;
  readonly jitterMs: number;
  /** The share of the delay and jitter paid on the way to the backend, 0 to 1. */
  readonly requestShare: number;
};

/**
 * Network latency in front of a backend: the fault proxy delays the requests to it, its responses, or
 * both (half each way); on Kubernetes netem on the pod's interface delays what it sends, its responses.
 */
export const latency = defineFaultKind({
  kind: 'latency',
  summary:
    'network latency in front of a backend instance: every call waits, on its requests, its responses or both (fault proxy)',
  fields: {
    ...delayFields('What every call pays in all, whichever `direction`.'),
    direction: z
      .enum(DIRECTION_NAMES, expecting(oneOf(DIRECTION_NAMES)))
      .optional()
      .describe(
        'Which way the delay is paid: `requests` (on the way to the service), `responses` (on the way back) or `both`, half the delay and half the jitter each way. Default: both; responses with `injector: netem`, which delays only what the pod sends.',
      ),
  },
  schemaText: {
    kind: 'Adds delay to every call of the service: to its requests, its responses or both.',
    fault:
      'latency: every call to the service is delayed by `delay` ± `jitter` in all, on its requests, its responses or both (half each way, the default).',
  },
  fromFile: (file): LatencyParams => ({
    ...delayFromFile(file),
    requestShare: file.direction === undefined ? defaultShare(file) : LATENCY_DIRECTIONS[file.direction],
  }),
  flags: ['delay', 'jitter', 'direction'],
  fromFlags: (given): LatencyParams => ({
    ...delayFromFlags('latency', given),
    requestShare: given.direction ?? defaultShare(given),
  }),
  // Both ways is the plain delay, as before directions: what a call pays in all.
  describe: (p) => {
    const direction = directionOf(p.requestShare);
    return direction === 'requests' || direction === 'responses'
      ? `${describeDelay(p)} on ${direction}`
      : describeDelay(p);
  },
  configured: (p) => ({
    addedLatencyMs: p.delayMs,
    jitterMs: p.jitterMs,
    requestLatencyMs: p.delayMs * p.requestShare,
    responseLatencyMs: p.delayMs * (1 - p.requestShare),
  }),
  injectors: ['fault-proxy', 'tc-netem'],
  onGateways: false,
  lease: (p) => ({
    kind: 'latency',
    params: { delayMs: p.delayMs, jitterMs: p.jitterMs, requestShare: p.requestShare },
  }),
  // Without a distribution table netem's jitter is uniform within ±jitter, as the local proxy's.
  netem: (p) =>
    p.jitterMs > 0 ? ['delay', `${p.delayMs}ms`, `${p.jitterMs}ms`] : ['delay', `${p.delayMs}ms`],
  refuses: (p, injector) =>
    injector === 'tc-netem' && p.requestShare > 0
      ? `netem delays only what the pod sends (its responses): direction ${directionOf(p.requestShare) ?? 'requests or both'} needs the fault proxy — leave injector out, or write direction: responses`
      : undefined,
});
