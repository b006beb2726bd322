/**
 * Every fault kind the lab can inject, one module each (kinds/*.ts). Experiments, `chaos-lab fault`,
 * both targets, results and calibration read this registry; a new kind is its module, its test and
 * one line here.
 */
import type { z } from 'zod';
import type { BackendName } from '../../services/topology.ts';
import type { FaultInjector } from './injector.ts';
import {
  CHOSEN_INJECTORS,
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

type ParamsOf<D> = D extends { fromFlags(given: never): infer P } ? P : never;

/** The injector a fault asked for (`injector: netem`); without one a target uses its first of the kind's. */
interface AskedInjector {
  readonly injector?: InjectorName;
}

type FaultOn<S extends FaultService> = {
  [K in FaultKind]: FaultPlace<S> & { readonly kind: K } & AskedInjector & ParamsOf<(typeof FAULT_KINDS)[K]>;
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
  const { kind: _kind, service: _service, instances: _instances, injector: _injector, ...params } = fault;
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

/**
 * The injector a target with `injectors` uses for a fault: the one it asked for (`injector: netem`),
 * else the first of its kind's that the target has.
 */
export function injectorFor<I extends { readonly name: InjectorName }>(
  injectors: readonly I[],
  fault: FaultKind | { readonly kind: FaultKind; readonly injector?: InjectorName | undefined },
): I | undefined {
  const { kind, injector: asked } = typeof fault === 'string' ? { kind: fault, injector: undefined } : fault;
  const names = asked ? [asked] : faultKind(kind).injectors;
  for (const name of names) {
    const found = injectors.find((i) => i.name === name);
    if (found) return found;
  }
  return undefined;
}

/** The name a user writes for an injector (`netem`), or the injector's own. */
export function chosenName(injector: InjectorName): string {
  return Object.entries(CHOSEN_INJECTORS).find(([, name]) => name === injector)?.[0] ?? injector;
}

/**
 * Why a target with `injectors` cannot inject a fault of `kind` (with the injector it asked for, and
 * these parameters), or undefined when it can.
 */
export function unsupportedBy(
  target: { readonly name: string; readonly injectors: readonly { readonly name: InjectorName }[] },
  fault: FaultKind | AnyFault,
): string | undefined {
  const kind = typeof fault === 'string' ? fault : fault.kind;
  const asked = typeof fault === 'string' ? undefined : fault.injector;
  const def = faultKind(kind);
  if (asked && !def.injectors.includes(asked)) {
    const choices = def.injectors.map(chosenName).join(' or ');
    return `injector ${chosenName(asked)} cannot apply ${kind} (${kind} is applied by ${choices})`;
  }
  const injector = injectorFor(target.injectors, fault);
  if (!injector) {
    if (asked) {
      const has = def.injectors.filter((i) => target.injectors.some((t) => t.name === i));
      return `injector ${chosenName(asked)} (${INJECTOR_TEXT[asked]}) is not on the ${target.name} target${has.length > 0 ? `: leave injector out to use ${INJECTOR_TEXT[has[0] as InjectorName]}` : ''}`;
    }
    const needs = def.injectors.map((i) => INJECTOR_TEXT[i]);
    return `${kind} needs ${needs.join(' or ')}, which the ${target.name} target does not have`;
  }
  return typeof fault === 'string' ? undefined : def.refuses?.(paramsOf(fault), injector.name);
}

export type { FaultInjector };
