/**
 * What a fault kind is, in one place: the registry (registry.ts) holds one module per kind
 * (kinds/*.ts), and everything that speaks of faults reads it — the experiment schema and its unit
 * conversion, the CLI's `fault add` flags, the results' parameters, calibration, and which injector
 * each target uses. A kind that an injector already supports is its module, its test and one line in
 * the registry.
 */
import type { z } from 'zod';
import type { BackendName } from '../../services/topology.ts';
import type { ParamName, ParamValues } from './flags.ts';

/**
 * The mechanisms that apply faults; results name them, so a surprising number can be traced to its cause.
 * `supervisor`: the local lab's supervisor SIGKILLs an instance; `fault-sidecar`: on Kubernetes, the
 * pod's sidecar SIGKILLs the service's process; `tc-netem`: the sidecar's qdisc on the pod's interface.
 */
export type InjectorName = 'fault-agent' | 'fault-proxy' | 'supervisor' | 'tc-netem' | 'fault-sidecar';

/** What each injector is, in the words of a refusal ("reset needs the fault proxy in front of each instance"). */
export const INJECTOR_TEXT: Readonly<Record<InjectorName, string>> = {
  'fault-agent': 'the fault agent inside each instance',
  'fault-proxy': 'the fault proxy in front of each instance',
  supervisor: "the local lab's supervisor",
  'tc-netem': "netem in each pod's fault sidecar",
  'fault-sidecar': "each pod's fault sidecar",
};

/**
 * The injectors an experiment file (`injector: netem`) or `fault add --injector` may ask for, by the
 * name the user writes, for a kind that more than one injector can apply. Without it a target uses
 * the first of the kind's injectors that it has.
 */
export const CHOSEN_INJECTORS = {
  'fault-proxy': 'fault-proxy',
  netem: 'tc-netem',
} as const satisfies Readonly<Record<string, InjectorName>>;
export type ChosenInjector = keyof typeof CHOSEN_INJECTORS;

/** What a kind's `fromFile`/`fromFlags` is told beside its own fields: the injector asked for, if any. */
export interface InjectorChoice {
  readonly injector?: ChosenInjector | undefined;
}

/** A fault's parameters in the lab's units (milliseconds, percent, status codes). */
export type Params = Readonly<Record<string, number>>;

/** What a fault can hit: a backend, or `gateway` for a fault applied by hand to the gateways (agent faults only). */
export type FaultService = BackendName | 'gateway';

/** Where a fault acts: experiments fault backends only. */
export interface FaultPlace<S extends FaultService = BackendName> {
  readonly service: S;
  /** Instance ids (`coin-1`); every instance of the service when none are named. */
  readonly instances: readonly string[];
}

/** The body of an agent's or a proxy's lease: the kind in that injector's vocabulary, and its params. */
export interface LeaseSpec {
  readonly kind: string;
  readonly params: Params;
}

export interface FaultKindDef<K extends string, P extends Params, S extends z.ZodRawShape> {
  readonly kind: K;
  /** One line for `fault add --help` and the docs. */
  readonly summary: string;
  /** The experiment file's fields beyond `kind`, `service` and `instances`, as written (`delay: 400ms`). */
  readonly fields: S;
  /** What the JSON Schema shows on hover for the kind, and for the fault as a whole. */
  readonly schemaText: { readonly kind: string; readonly fault: string };
  /** The file's validated fields in the lab's units (a default may depend on the injector asked for). */
  fromFile(file: z.output<z.ZodObject<S>> & InjectorChoice): P;
  /** The `fault add` flags it takes. */
  readonly flags: readonly ParamName[];
  /** Its parameters from the flags given; throws a usage error for one it needs and was not given. */
  fromFlags(given: ParamValues & InjectorChoice): P;
  /** `delay 400ms, jitter 20ms`; '' when it has none. */
  describe(params: P): string;
  /**
   * Calibration: the configured figures under the keys the injector's `observe()` returns for this kind
   * (`addedLatencyMs`, `lossRate`, `errorRate`), so that a result shows them side by side. Absent: the
   * kind is not calibrated.
   */
  configured?(params: P): Params;
  /**
   * The injectors that can apply it, in order of preference: a target uses the first it has (the local
   * lab has the fault agents, the fault proxies and the supervisor; Kubernetes the fault agents and the
   * pods' sidecars, netem and kill). A target with none of them cannot inject the kind.
   */
  readonly injectors: readonly [InjectorName, ...InjectorName[]];
  /** Whether it can be applied by hand to the gateways (they have a fault agent, no proxy, no sidecar). */
  readonly onGateways: boolean;
  /** The lease body for the fault agent or the fault proxy. */
  lease?(params: P): LeaseSpec;
  /** The `tc qdisc … netem` arguments for the netem sidecar. */
  netem?(params: P): readonly string[];
  /**
   * Why `injector` cannot apply a fault with these parameters (netem delays only what a pod sends:
   * latency on requests needs the fault proxy), or undefined when it can. Checked before anything starts.
   */
  refuses?(params: P, injector: InjectorName): string | undefined;
}

/** A kind's definition, checked and typed by its literal (`defineFaultKind({ kind: 'latency', … })`). */
export function defineFaultKind<const K extends string, P extends Params, S extends z.ZodRawShape>(
  def: FaultKindDef<K, P, S>,
): FaultKindDef<K, P, S> {
  return def;
}
