import { usageError } from '../../cli-error.ts';
import { percentField } from '../../schema-fields.ts';
import { defineFaultKind } from '../kind.ts';

/** Packet loss: emulated by the local fault proxy as what TCP makes of it; netem on Kubernetes. */
export const loss = defineFaultKind({
  kind: 'loss',
  summary: 'packet loss, emulated by what TCP makes of it: retransmission timeouts (fault proxy)',
  fields: { percent: percentField('Share of packets lost, 0 to 100.') },
  schemaText: {
    kind: 'Drops packets on the way to the service.',
    fault:
      'loss: packets to the service are lost; on the local target this is emulated by its effect on TCP.',
  },
  fromFile: (file) => ({ percent: file.percent }),
  flags: ['percent'],
  fromFlags: (given) => {
    // No default: 100 % loss stalls every connection for the 30 s cap, which nobody means.
    if (given.percent === undefined) throw usageError('loss needs --percent', 'e.g. --percent 10');
    return { percent: given.percent };
  },
  describe: (p) => `${p.percent}%`,
  configured: (p) => ({ lossRate: p.percent / 100 }),
  injectors: ['fault-proxy', 'tc-netem'],
  onGateways: false,
  lease: (p) => ({ kind: 'loss', params: { percent: p.percent } }),
  netem: (p) => ['loss', `${p.percent}%`],
});
