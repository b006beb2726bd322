import { defineFaultKind } from '../kind.ts';
import { delayFields, delayFromFile, delayFromFlags, describeDelay } from './latency.ts';

/** A slow handler: the fault agent inside the instance delays every request before serving it. */
export const httpDelay = defineFaultKind({
  kind: 'http-delay',
  summary: 'delay every request inside the instance (not /healthz, /readyz, /metrics)',
  fields: delayFields('Added to every request, inside the instance.'),
  schemaText: {
    kind: 'Delays every request inside the service (a slow handler), before it is served.',
    fault:
      'http-delay: the fault agent inside each instance holds every request for `delay` ± `jitter` before serving it (probes and /metrics are not held).',
  },
  fromFile: delayFromFile,
  flags: ['delay', 'jitter'],
  fromFlags: (given) => delayFromFlags('http-delay', given),
  describe: describeDelay,
  injectors: ['fault-agent'],
  onGateways: true,
  lease: (p) => ({ kind: 'http-delay', params: { delayMs: p.delayMs, jitterMs: p.jitterMs } }),
});
