import { z } from 'zod';
import { faultParameter } from '../lib/admin-api.ts';
import { DELAY_PARAMS, type FaultParams, type ParamsSchema } from '../lib/lease-router.ts';
import type { Lease } from '../lib/leases.ts';

/**
 * The network faults the proxy injects, as plain declarative values checked whole before
 * anything is applied, by the lease routes the fault agent serves too (`lease-router.ts`),
 * so one client speaks to both.
 */

/** The kinds of fault the proxy injects, each with the parameters it takes. */
export const PROXY_FAULT_PARAMS = {
  latency: DELAY_PARAMS,
  loss: z.strictObject({ percent: faultParameter('percent') }),
  reset: z.strictObject({ percent: faultParameter('percent') }),
} as const satisfies Record<string, ParamsSchema>;

export type ProxyFaultKind = keyof typeof PROXY_FAULT_PARAMS;
export const PROXY_FAULT_KINDS = Object.keys(PROXY_FAULT_PARAMS) as readonly ProxyFaultKind[];

export type ProxyFault = Lease<ProxyFaultKind, FaultParams>;
