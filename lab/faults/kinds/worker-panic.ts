import { percentField } from '../../schema-fields.ts';
import { defineFaultKind } from '../kind.ts';

/** A goroutine panic: the fault agent makes a share of the service's background tasks throw. */
export const workerPanic = defineFaultKind({
  kind: 'worker-panic',
  summary: 'make a share of background tasks throw (a goroutine panic)',
  fields: { percent: percentField('Share of background tasks that panic, 0 to 100.') },
  schemaText: {
    kind: 'Makes background tasks throw.',
    fault:
      'worker-panic: `percent` of the service background tasks throw; without recovery the process dies ' +
      'and is restarted, with recovery (`settings.workerRecovery`) the panic is recovered and counted.',
  },
  fromFile: (file) => ({ percent: file.percent }),
  flags: ['percent'],
  fromFlags: (given) => ({ percent: given.percent ?? 100 }),
  describe: (p) => `${p.percent}% of tasks`,
  injectors: ['fault-agent'],
  onGateways: true,
  lease: (p) => ({ kind: 'worker-panic', params: { percent: p.percent } }),
});
