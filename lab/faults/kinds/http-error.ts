import { percentField, statusField } from '../../schema-fields.ts';
import { defineFaultKind } from '../kind.ts';

/** The fault agent inside each instance answers a share of requests with an error status. */
export const httpError = defineFaultKind({
  kind: 'http-error',
  summary: 'answer a share of requests with an error status',
  fields: {
    status: statusField('The status to answer with, 400 to 599 (e.g. 503).'),
    percent: percentField('Share of requests answered with `status`, 0 to 100.'),
  },
  schemaText: {
    kind: 'Answers some requests with an HTTP error instead of serving them.',
    fault: 'http-error: the service answers `percent` of its requests with `status`.',
  },
  fromFile: (file) => ({ status: file.status, percent: file.percent }),
  flags: ['status', 'percent'],
  fromFlags: (given) => ({ status: given.status ?? 503, percent: given.percent ?? 100 }),
  describe: (p) => `${p.status} on ${p.percent}%`,
  configured: (p) => ({ errorRate: p.percent / 100 }),
  injectors: ['fault-agent'],
  onGateways: true,
  lease: (p) => ({ kind: 'http-error', params: { status: p.status, percent: p.percent } }),
});
