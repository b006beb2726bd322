import { percentField } from '../../schema-fields.ts';
import { defineFaultKind } from '../kind.ts';

/** Connection resets: the fault proxy accepts a share of new connections and resets them at once. */
export const reset = defineFaultKind({
  kind: 'reset',
  summary: 'reset a share of new connections to a backend instance (fault proxy)',
  fields: { percent: percentField('Share of new connections reset, 0 to 100.') },
  schemaText: {
    kind: 'Resets new connections to the service.',
    fault: 'reset: the fault proxy in front of each instance resets `percent` of the new connections to it.',
  },
  fromFile: (file) => ({ percent: file.percent }),
  flags: ['percent'],
  fromFlags: (given) => ({ percent: given.percent ?? 100 }),
  describe: (p) => `${p.percent}% of connections`,
  injectors: ['fault-proxy'],
  onGateways: false,
  lease: (p) => ({ kind: 'reset', params: { percent: p.percent } }),
});
