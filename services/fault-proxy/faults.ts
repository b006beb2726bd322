import { z } from 'zod';
import { faultParameter } from '../lib/admin-api.ts';
import { DELAY_PARAMS, type FaultParams, type ParamsSchema } from '../lib/lease-router.ts';
import type { Lease } from '../lib/leases.ts';

/**
 * The network faults the proxy injects, as plain declarative values checked whole before
 * anything is applied, by the lease routes the fault agent serves too (`lease-router.ts`),
 * so one client speaks to both.
 */

/**
 * A latency's delay and jitter are what one call pays in all; `requestShare` (0 to 1) of them is
 * paid on the way to the backend, the rest on the way back. Left out it stays out of the lease
 * (a lease reads back as it was sent) and counts as 0: responses only, as before it existed.
 */
export const LATENCY_PARAMS = DELAY_PARAMS.extend({
  requestShare: faultParameter('requestShare').optional(),
});

/** The kinds of fault the proxy injects, each with the parameters it takes. */
export const PROXY_FAULT_PARAMS = {
  latency: LATENCY_PARAMS,
  loss: z.strictObject({ percent: faultParameter('percent') }),
  reset: z.strictObject({ percent: faultParameter('percent') }),
} as const satisfies Record<string, ParamsSchema>;

/**
 * The most faults a proxy holds in force at once; one more is refused with 409 TOO_MANY_FAULTS,
 * while a renewal of one in force is always taken. Every chunk is checked against every fault, and
 * latencies add up (see `emulation.ts`): thousands of leases (a client looping on new ids) would
 * make every call pay for all of them. A phase of the catalog puts at most 3 on an instance.
 */
export const MAX_PROXY_FAULTS = 16;

export type ProxyFaultKind = keyof typeof PROXY_FAULT_PARAMS;
export const PROXY_FAULT_KINDS = Object.keys(PROXY_FAULT_PARAMS) as readonly ProxyFaultKind[];

export type ProxyFault = Lease<ProxyFaultKind, FaultParams>;
