import { FAULT_BOUNDS } from '../../../services/fault-bounds.ts';
import { usageError } from '../../cli-error.ts';
import { formatDuration, parseDuration } from '../../duration.ts';
import { durationField } from '../../schema-fields.ts';
import { defineFaultKind } from '../kind.ts';

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
 * Network latency in front of a backend: the local lab's fault proxy delays every response; on
 * Kubernetes, netem on the pod's interface delays what it sends.
 */
export const latency = defineFaultKind({
  kind: 'latency',
  summary: 'network latency in front of a backend instance: every response waits (fault proxy)',
  fields: delayFields('Added to every response.'),
  schemaText: {
    kind: 'Adds delay to every response of the service.',
    fault: 'latency: every response of the service is delayed by `delay` ± `jitter`.',
  },
  fromFile: delayFromFile,
  flags: ['delay', 'jitter'],
  fromFlags: (given) => delayFromFlags('latency', given),
  describe: describeDelay,
  configured: (p) => ({ addedLatencyMs: p.delayMs, jitterMs: p.jitterMs }),
  injectors: ['fault-proxy', 'tc-netem'],
  onGateways: false,
  lease: (p) => ({ kind: 'latency', params: { delayMs: p.delayMs, jitterMs: p.jitterMs } }),
  // Without a distribution table netem's jitter is uniform within ±jitter, as the local proxy's.
  netem: (p) =>
    p.jitterMs > 0 ? ['delay', `${p.delayMs}ms`, `${p.jitterMs}ms`] : ['delay', `${p.delayMs}ms`],
});
