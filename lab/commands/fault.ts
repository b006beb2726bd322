/**
 * `chaos-lab fault …`: faults by hand, through the same targets and the same fault model as a run
 * (runner/faults.ts) — the fault agent inside every instance, the fault proxy in front of every
 * backend instance of the local lab, netem and the kill sidecar on Kubernetes — so it works on
 * every `--target`, with the same lease rules and errors. A fault goes to every instance of a
 * service (or one, with --instance) under one id, so it can be listed, renewed and cleared as one.
 */

import { randomBytes } from 'node:crypto';
import { FAULT_ID_EXPECTED, FAULT_ID_PATTERN } from '../../services/fault-bounds.ts';
import { AdminError } from '../admin-client.ts';
import { CliError, usageError } from '../cli-error.ts';
import { formatDuration } from '../duration.ts';
import type { ParamName, ParamValues } from '../faults/flags.ts';
import {
  CHOSEN_INJECTORS,
  type ChosenInjector,
  type FaultService,
  type InjectorChoice,
  type Params,
} from '../faults/kind.ts';
import { type AnyFault, type FaultKind, faultKind } from '../faults/registry.ts';
import { type Io, say, table, warn } from '../io.ts';
import { faultsOf } from '../runner/faults.ts';
import { describeHolder, type Target, type TargetInfo, type TargetInstance } from '../runner/target.ts';

export const DEFAULT_LEASE_MS = 60_000;
const STATUS_HINT = 'see which instances run with: npx chaos-lab status';

/** The params of `kind` from the flags given, refusing flags that kind does not take. */
export function faultParams(kind: FaultKind, given: ParamValues & InjectorChoice): Params {
  const def = faultKind(kind);
  const foreign = (Object.keys(given) as (ParamName | 'injector')[]).filter(
    (p) => p !== 'injector' && given[p] !== undefined && !def.flags.includes(p),
  );
  if (foreign.length > 0) {
    const takes =
      def.flags.length > 0
        ? `${kind} takes ${def.flags.map((t) => `--${t}`).join(', ')}`
        : `${kind} takes none`;
    throw usageError(`${foreign.map((f) => `--${f}`).join(', ')} does not apply to ${kind}`, takes);
  }
  return def.fromFlags(given);
}

/** The lab the target leads to, as it runs now: `chaos-lab fault` never starts one. */
async function attach(io: Io, target: Target): Promise<TargetInfo> {
  return target.prepare((line) => warn(io, line), new AbortController().signal, { start: false });
}

/**
 * The instances a command acts on: all, those of `service`, or the one `instance` names — by its id,
 * or on Kubernetes as `coin-2` (the service's second pod in name order), as experiments name them.
 */
async function selectInstances(
  target: Target,
  service: string | undefined,
  instance: string | undefined,
): Promise<readonly TargetInstance[]> {
  const all = await target.instances();
  const ofService = service ? all.filter((i) => i.service === service) : all;
  if (instance === undefined) return ofService;
  const match =
    ofService.find((i) => i.id === instance) ?? (await aliased(target, ofService, service, instance));
  if (!match) {
    const scope = service ? `of ${service}` : 'in this lab';
    throw usageError(
      `no instance ${JSON.stringify(instance)} ${scope}`,
      `valid ids: ${ofService.map((i) => i.id).join(', ')}`,
    );
  }
  return [match];
}

/** The instance a target gives `coin-2` (its pods have other names), if any. */
async function aliased(
  target: Target,
  candidates: readonly TargetInstance[],
  service: string | undefined,
  instance: string,
): Promise<TargetInstance | undefined> {
  const named = service ?? /^([a-z]+)-[1-9][0-9]*$/.exec(instance)?.[1];
  const place = candidates.find((i) => i.service === named);
  if (!place) return undefined;
  try {
    const [id] = await target.resolve({ service: place.service, instances: [instance] });
    return candidates.find((i) => i.id === id);
  } catch {
    return undefined;
  }
}

/** The lease routes' own rule, on every command that takes --id (`.` would become "every fault"). */
function checkId(id: string): void {
  if (!FAULT_ID_PATTERN.test(id)) {
    throw usageError(
      `--id ${JSON.stringify(id)} is not a valid fault id: expected ${FAULT_ID_EXPECTED}`,
      'e.g. --id coin-slow (see the ids with: npx chaos-lab fault list)',
    );
  }
}

function newFaultId(kind: string): string {
  return `cli-${kind}-${randomBytes(2).toString('hex')}`;
}

function describeParams(params: Readonly<Record<string, number>>): string {
  return Object.entries(params)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
}

/** `coin-1`, `13 instances`, for messages. */
function describeScope(instances: readonly { id: string }[]): string {
  return instances.length === 1 ? (instances[0]?.id ?? '') : `${instances.length} instances`;
}

/** The reason an injector's admin API gave for refusing, if `err` (or what caused it) is its refusal. */
function refusalReason(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (e instanceof AdminError && e.reason !== undefined) return e.reason;
  }
  return undefined;
}

function failure(err: unknown, service?: string): CliError {
  if (err instanceof CliError) return err;
  const message = (err as Error).message;
  if (refusalReason(err) === 'TOO_MANY_FAULTS') {
    const scope = service ? ` ${service}` : '';
    return new CliError(message, {
      hint: `see the faults in force with: npx chaos-lab fault list${scope}; clear one with: npx chaos-lab fault clear${scope} --id <id>`,
    });
  }
  return new CliError(message, { hint: STATUS_HINT });
}

export interface FaultAddOptions extends ParamValues {
  readonly leaseMs: number;
  readonly instance?: string;
  readonly id?: string;
  /** The injector asked for (`--injector netem`); default: the target's first of the kind's. */
  readonly injector?: ChosenInjector;
}

export async function faultAddCommand(
  io: Io,
  target: Target,
  kind: FaultKind,
  service: FaultService,
  options: FaultAddOptions,
): Promise<number> {
  const { leaseMs, instance, id: givenId, injector: _injector, ...given } = options;
  const params = faultParams(kind, { ...given, ...(options.injector ? { injector: options.injector } : {}) });
  const def = faultKind(kind);
  if (givenId !== undefined) checkId(givenId);
  if (service === 'gateway' && !def.onGateways) {
    throw usageError(
      `${kind} cannot be applied to the gateways: network faults are injected by the fault proxies in front of the backend instances, and the gateways have none`,
      `choose a backend (the gateways then see the fault on their calls to it), or use http-delay / http-error on the gateway itself`,
    );
  }
  const asked = options.injector === undefined ? undefined : CHOSEN_INJECTORS[options.injector];
  const unplaced = {
    kind,
    service,
    instances: [],
    ...(asked ? { injector: asked } : {}),
    ...params,
  } as AnyFault;
  const why = target.unsupported(unplaced);
  if (why) throw new CliError(`the ${target.name} target cannot inject ${kind}: ${why}`);
  if (asked && target.refusedInjectors) {
    const refused = (await target.refusedInjectors([asked], new AbortController().signal))[asked];
    if (refused) {
      throw new CliError(
        `injector ${options.injector} cannot work on the ${target.name} target: ${refused}`,
        {
          hint: 'leave --injector out: the fault proxy applies latency and loss',
        },
      );
    }
  }
  await attach(io, target);
  const holder = await target.labHolder?.();
  if (holder) {
    warn(
      io,
      `warning: ${describeHolder(holder)} holds this lab: this fault will interfere with its measurements and its verdict`,
    );
  }
  const instances = (await selectInstances(target, service, instance)).map((i) => i.id);
  const id = givenId ?? newFaultId(kind);
  const fault = { ...unplaced, instances: instance ? instances : [] } as AnyFault;
  let applied: Awaited<ReturnType<ReturnType<typeof faultsOf>['inject']>>;
  try {
    applied = await faultsOf(target).inject(fault, id, leaseMs);
  } catch (err) {
    throw failure(err, service);
  }
  const renewed = applied.length > 0 && applied.every((a) => a.renewed);
  const injector = applied[0]?.injector;
  const by =
    injector !== 'fault-proxy'
      ? ''
      : applied.length === 1
        ? ', by its fault proxy'
        : ', by their fault proxies';
  const lease = kind === 'kill' ? '' : ` for ${formatDuration(leaseMs)}`;
  say(
    io,
    `${kind === 'kill' ? 'killed' : renewed ? 'renewed' : 'applied'} ${kind} ${id}${Object.keys(params).length > 0 ? ` (${describeParams(params)})` : ''} on ${applied.map((a) => a.instance).join(', ')}${lease}${by}`,
  );
  if (kind !== 'kill') say(io, `clear it early with: npx chaos-lab fault clear ${service} --id ${id}`);
  return 0;
}

export async function faultListCommand(
  io: Io,
  target: Target,
  service: string | undefined,
  options: { json?: boolean; instance?: string },
): Promise<number> {
  await attach(io, target);
  const instances = await selectInstances(target, service, options.instance);
  const listing = await faultsOf(target).list(instances.map((i) => i.id));
  const now = Date.now();
  const serviceOf = new Map(instances.map((i) => [i.id, i.service]));
  const faults = listing.leases.map((l) => ({
    instance: l.instance,
    service: serviceOf.get(l.instance) ?? '',
    injector: l.injector,
    id: l.id,
    kind: l.kind,
    params: l.params,
    leaseMs: l.leaseMs,
    appliedAt: l.appliedAt,
    expiresAt: l.expiresAt,
    remainingMs: l.expiresAt === null ? null : Math.max(0, l.expiresAt - now),
  }));
  const missing = listing.failed.map((f) => ({ instance: f.instance, error: f.error.message }));
  if (options.json) {
    say(io, JSON.stringify({ faults, settings: listing.settings, unreachable: missing }, null, 2));
  } else {
    if (faults.length === 0) {
      say(io, `no faults active on ${describeScope(instances)}`);
    } else {
      const rows = faults.map((f) => [
        f.instance,
        f.id,
        f.kind,
        describeParams(f.params),
        f.injector,
        f.remainingMs === null ? '-' : formatDuration(f.remainingMs),
      ]);
      for (const line of table([['INSTANCE', 'FAULT', 'KIND', 'PARAMS', 'INJECTOR', 'EXPIRES IN'], ...rows]))
        say(io, line);
    }
    for (const s of listing.settings.filter((x) => x.overridden)) {
      const left = s.expiresAt === null ? '' : ` for ${formatDuration(Math.max(0, s.expiresAt - now))}`;
      say(io, `worker recovery on ${s.instance}: ${s.workerRecovery ? 'on' : 'off'}${left} (overridden)`);
    }
  }
  if (missing.length > 0) {
    for (const m of missing) warn(io, `could not list ${m.error}`);
    const first = missing[0]?.error ?? '';
    throw new CliError(missing.length === 1 ? first : `${missing.length} instances failed; first: ${first}`, {
      hint: STATUS_HINT,
    });
  }
  return 0;
}

export async function faultClearCommand(
  io: Io,
  target: Target,
  service: string | undefined,
  options: { instance?: string; id?: string },
): Promise<number> {
  if (options.id !== undefined) checkId(options.id);
  await attach(io, target);
  const instances = await selectInstances(target, service, options.instance);
  const scope = instances.map((i) => i.id);
  const faults = faultsOf(target);
  try {
    if (options.id !== undefined) {
      const id = options.id;
      const removedFrom = await faults.removeById(id, scope);
      say(
        io,
        removedFrom.length > 0
          ? `cleared ${id} on ${removedFrom.join(', ')}`
          : `no fault ${id} on ${describeScope(instances)}`,
      );
      return 0;
    }
    const removed = await faults.clearAll(scope);
    say(
      io,
      `cleared ${removed} fault${removed === 1 ? '' : 's'} and any worker-recovery override on ${describeScope(instances)}`,
    );
  } catch (err) {
    throw failure(err);
  }
  return 0;
}

export type RecoveryChoice = 'on' | 'off' | 'default';

export async function faultRecoveryCommand(
  io: Io,
  target: Target,
  choice: RecoveryChoice,
  service: string,
  options: { leaseMs: number; instance?: string },
): Promise<number> {
  const info = await attach(io, target);
  const instances = (await selectInstances(target, service, options.instance)).map((i) => i.id);
  const names = instances.join(', ');
  const labDefault = info.workerRecovery === undefined ? '' : ` (${info.workerRecovery ? 'on' : 'off'})`;
  try {
    if (choice === 'default') {
      await target.agents().resetSettings(instances);
      say(io, `worker recovery back to the lab default${labDefault} on ${names}`);
      return 0;
    }
    await target.agents().setRecovery(instances, choice === 'on', options.leaseMs, `cli-recovery-${choice}`);
  } catch (err) {
    throw failure(err);
  }
  say(
    io,
    `worker recovery ${choice} on ${names} for ${formatDuration(options.leaseMs)} (then back to the lab default${labDefault ? `: ${labDefault.slice(2, -1)}` : ''})`,
  );
  return 0;
}
