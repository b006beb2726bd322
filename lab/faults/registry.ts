/**
 * Every fault kind the lab can inject, one module each (kinds/*.ts). Experiments, `chaos-lab fault`,
 * both targets, results and calibration read this registry; a new kind is its module, its test and
 * one line here.
 */
import type { z } from 'zod';
import type { BackendName } from '../../services/topology.ts';
import type { FaultInjector } from './injector.ts';
import {
  type FaultKindDef,
  type FaultPlace,
  type FaultService,
  INJECTOR_TEXT,
  type InjectorName,
  type Params,
} from './kind.ts';
import { httpDelay } from './kinds/http-delay.ts';
import { httpError } from './kinds/http-error.ts';
import { kill } from './kinds/kill.ts';
import { latency } from './kinds/latency.ts';
import { loss } from './kinds/loss.ts';
import { reset } from './kinds/reset.ts';
import { workerPanic } from './kinds/worker-panic.ts';

/** In the order the docs and the CLI's help list them. */
export const FAULT_KINDS = {
  latency,
  loss,
  'http-error': httpError,
  'worker-panic': workerPanic,
  kill,
  'http-delay': httpDelay,
  reset,
} as const;

export type FaultKind = keyof typeof FAULT_KINDS;
export const FAULT_KIND_NAMES = Object.keys(FAULT_KINDS) as [FaultKind, ...FaultKind[]];

type ParamsOf<D> = D extends FaultKindDef<string, infer P, z.ZodRawShape> ? P : never;

type FaultOn<S extends FaultService> = {
  [K in FaultKind]: FaultPlace<S> & { readonly kind: K } & ParamsOf<(typeof FAULT_KINDS)[K]>;
}[FaultKind];

/** One fault of an experiment: where it acts (a backend), its kind, and that kind's parameters in the lab's units. */
export type Fault = FaultOn<BackendName>;
/** A fault applied by hand (`chaos-lab fault add`), which may also hit the gateways. */
export type AnyFault = FaultOn<FaultService>;

// The registry's functions take any fault; the kinds' own functions take their own parameters.
type AnyDef = FaultKindDef<string, Params, z.ZodRawShape>;

export function faultKind(kind: FaultKind): AnyDef {
  return FAULT_KINDS[kind] as unknown as AnyDef;
}

export function isFaultKind(name: string): name is FaultKind {
  return Object.hasOwn(FAULT_KINDS, name);
}

/** A fault's parameters in the lab's units, as results show them: `{ delayMs, jitterMs }`, `{}` for kill. */
export function paramsOf(fault: AnyFault): Params {
  const { kind: _kind, service: _service, instances: _instances, ...params } = fault;
  return params as Params;
}

/** `delay 400ms, jitter 20ms`; '' for a kind without parameters. */
export function describeParams(fault: AnyFault): string {
  return faultKind(fault.kind).describe(paramsOf(fault));
}

/** The configured figures calibration compares with what was observed; undefined: not calibrated. */
export function configuredOf(fault: AnyFault): Params | undefined {
  return faultKind(fault.kind).configured?.(paramsOf(fault));
}

/** The injector a target with `injectors` uses for `kind`: the first of the kind's that it has. */
export function injectorFor<I extends { readonly name: InjectorName }>(
  injectors: readonly I[],
  kind: FaultKind,
): I | undefined {
  for (const name of faultKind(kind).injectors) {
    const found = injectors.find((i) => i.name === name);
    if (found) return found;
  }
  return undefined;
}

/** Why a target with `injectors` cannot inject `kind`, or undefined when it can. */
export function unsupportedBy(
  target: { readonly name: string; readonly injectors: readonly { readonly name: InjectorName }[] },
  kind: FaultKind,
): string | undefined {
  if (injectorFor(target.injectors, kind)) return undefined;
  const needs = faultKind(kind).injectors.map((i) => INJECTOR_TEXT[i]);
  return `${kind} needs ${needs.join(' or ')}, which the ${target.name} target does not have`;
}

export type { FaultInjector };
