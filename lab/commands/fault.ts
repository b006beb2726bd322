/**
 * `chaos-lab fault …`: drives the injectors of a running lab over their admin APIs, with the
 * admin token from the lab's state file — the fault agent inside every instance (http-delay,
 * http-error, worker-panic, worker settings) and the fault proxy in front of every backend
 * instance (latency, loss, reset). A fault goes to every instance of a service (or one, with
 * --instance) under one id, so it can be listed, renewed and cleared as one.
 */

import { randomBytes } from 'node:crypto';
import {
  AgentClient,
  type AgentView,
  type FaultLease,
  onEvery,
  ProxyClient,
  type ProxyView,
  type Target,
} from '../admin-client.ts';
import { CliError, usageError } from '../cli-error.ts';
import { formatDuration } from '../duration.ts';
import {
  type CliInjector,
  FAULT_KINDS,
  type FaultKind,
  faultParams,
  type ParamValues,
} from '../fault-kinds.ts';
import { type Io, say, table, warn } from '../io.ts';
import { requireLab } from '../local/find-lab.ts';
import type { LabState, StateInstance } from '../local/state.ts';

export const DEFAULT_LEASE_MS = 60_000;
const FAULT_ID = /^[a-z0-9][a-z0-9-]{0,63}$/;

/** The instances a command acts on: all, those of `service`, or the one `instance` names. */
export function selectTargets(state: LabState, service?: string, instance?: string): StateInstance[] {
  const ofService = service ? state.instances.filter((i) => i.service === service) : state.instances;
  if (instance === undefined) return ofService;
  const match = ofService.find((i) => i.id === instance);
  if (!match) {
    const scope = service ? `of ${service}` : 'in this lab';
    throw usageError(
      `no instance ${JSON.stringify(instance)} ${scope}`,
      `valid ids: ${ofService.map((i) => i.id).join(', ')}`,
    );
  }
  return [match];
}

/** A fault proxy as an admin target; `instance` is the one it fronts. */
export interface ProxyTarget extends Target {
  readonly instance: string;
}

/**
 * The fault proxies in front of `instances` (gateways have none, so they are skipped).
 * A lab started before the proxies existed has none at all: that is an error when `required`.
 */
export function proxyTargets(
  state: LabState,
  instances: readonly StateInstance[],
  required: boolean,
): ProxyTarget[] {
  if (!state.proxies) {
    if (!required) return [];
    throw new CliError('this lab runs no fault proxies: it was started by an older chaos-lab', {
      hint: 'restart it: npx chaos-lab down && npx chaos-lab up',
    });
  }
  const byInstance = new Map(state.proxies.map((p) => [p.instance, p]));
  return instances.flatMap((i) => {
    const proxy = byInstance.get(i.id);
    return proxy ? [{ id: proxy.id, url: proxy.adminUrl, instance: i.id }] : [];
  });
}

function newFaultId(kind: string): string {
  return `cli-${kind}-${randomBytes(2).toString('hex')}`;
}

function describeParams(params: Readonly<Record<string, number>>): string {
  return Object.entries(params)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
}

/** `coin-1`, `13 instances`, `13 instances and 10 fault proxies`, for messages. */
function describeScope(instances: readonly Target[], proxies: readonly Target[]): string {
  const first = instances.length === 1 ? instances[0]!.id : `${instances.length} instances`;
  if (proxies.length === 0) return first;
  if (instances.length === 1 && proxies.length === 1) return `${first} and its fault proxy`;
  return `${first} and ${proxies.length} fault ${proxies.length === 1 ? 'proxy' : 'proxies'}`;
}

function unreachable(failed: { target: Target; error: Error }[]): CliError {
  const first = failed[0]?.error.message ?? '';
  return new CliError(failed.length === 1 ? first : `${failed.length} instances failed; first: ${first}`, {
    hint: 'see which instances run with: npx chaos-lab status',
  });
}

export interface FaultAddOptions extends ParamValues {
  readonly leaseMs: number;
  readonly instance?: string;
  readonly id?: string;
}

export async function faultAddCommand(
  io: Io,
  home: string,
  kind: FaultKind,
  service: string,
  options: FaultAddOptions,
): Promise<number> {
  const { leaseMs, instance, id: givenId, ...given } = options;
  const params = faultParams(kind, given);
  const injector: CliInjector = FAULT_KINDS[kind].injector;
  if (givenId !== undefined && !FAULT_ID.test(givenId)) {
    throw usageError(
      `--id ${JSON.stringify(givenId)} is not a valid fault id`,
      'use lower-case letters, digits and dashes, e.g. --id coin-slow',
    );
  }
  if (injector === 'fault-proxy' && service === 'gateway') {
    throw usageError(
      `${kind} cannot be applied to the gateways: network faults are injected by the fault proxies in front of the backend instances, and the gateways have none`,
      `choose a backend (the gateways then see the fault on their calls to it), or use http-delay / http-error on the gateway itself`,
    );
  }
  const state = requireLab(io, home);
  const instances = selectTargets(state, service, instance);
  const targets: Target[] = injector === 'fault-agent' ? instances : proxyTargets(state, instances, true);
  const id = givenId ?? newFaultId(kind);
  const client =
    injector === 'fault-agent' ? new AgentClient(state.adminToken) : new ProxyClient(state.adminToken);
  const { ok, failed } = await onEvery(targets, (t) => client.put(t, id, { kind, params, leaseMs }));
  if (failed.length > 0) {
    // All or nothing: a fault on half the instances would make any measurement misleading.
    await onEvery(
      ok.filter((o) => o.value.created).map((o) => o.target),
      (t) => client.remove(t, id),
    );
    throw unreachable(failed);
  }
  const renewed = ok.filter((o) => !o.value.created).length;
  const by =
    injector !== 'fault-proxy'
      ? ''
      : instances.length === 1
        ? ', by its fault proxy'
        : ', by their fault proxies';
  say(
    io,
    `${renewed === ok.length ? 'renewed' : 'applied'} ${kind} ${id} (${describeParams(params)}) on ${instances.map((t) => t.id).join(', ')} for ${formatDuration(leaseMs)}${by}`,
  );
  say(io, `clear it early with: npx chaos-lab fault clear ${service} --id ${id}`);
  return 0;
}

interface ListedFault extends FaultLease {
  /** The instance the fault acts on (for a proxy's fault, the one it fronts). */
  readonly instance: string;
  readonly service: string;
  readonly injector: CliInjector;
  readonly remainingMs: number;
}

export async function faultListCommand(
  io: Io,
  home: string,
  service: string | undefined,
  options: { json?: boolean; instance?: string },
): Promise<number> {
  const state = requireLab(io, home);
  const instances = selectTargets(state, service, options.instance);
  const proxies = proxyTargets(state, instances, false);
  const token = state.adminToken;
  const [agentViews, proxyViews] = await Promise.all([
    onEvery(instances, (t) => new AgentClient(token).view(t)),
    onEvery(proxies, (t) => new ProxyClient(token).view(t)),
  ]);
  const now = Date.now();
  const serviceOf = new Map(state.instances.map((i) => [i.id, i.service]));
  const listed = (instance: string, injector: CliInjector, view: AgentView | ProxyView): ListedFault[] =>
    view.faults.map((f) => ({
      instance,
      service: serviceOf.get(instance) ?? view.service,
      injector,
      id: f.id,
      kind: f.kind,
      params: f.params,
      leaseMs: f.leaseMs,
      appliedAt: f.appliedAt,
      expiresAt: f.expiresAt,
      remainingMs: Math.max(0, f.expiresAt - now),
    }));
  const faults: ListedFault[] = [
    ...agentViews.ok.flatMap(({ target, value }) => listed(target.id, 'fault-agent', value)),
    ...proxyViews.ok.flatMap(({ target, value }) => listed(target.instance, 'fault-proxy', value)),
  ].sort((a, b) => a.instance.localeCompare(b.instance) || a.id.localeCompare(b.id));
  const settings = agentViews.ok.map(({ target, value }) => ({
    instance: target.id,
    service: serviceOf.get(target.id) ?? value.service,
    ...value.settings,
  }));
  const failed = [...agentViews.failed, ...proxyViews.failed];
  const missing = failed.map((f) => ({ instance: f.target.id, error: f.error.message }));
  if (options.json) {
    say(io, JSON.stringify({ faults, settings, unreachable: missing }, null, 2));
  } else {
    if (faults.length === 0) {
      const scope = describeScope(
        agentViews.ok.map((o) => o.target),
        proxyViews.ok.map((o) => o.target),
      );
      say(io, `no faults active on ${scope}`);
    } else {
      const rows = faults.map((f) => [
        f.instance,
        f.id,
        f.kind,
        describeParams(f.params),
        f.injector,
        formatDuration(f.remainingMs),
      ]);
      for (const line of table([['INSTANCE', 'FAULT', 'KIND', 'PARAMS', 'INJECTOR', 'EXPIRES IN'], ...rows]))
        say(io, line);
    }
    for (const s of settings.filter((x) => x.overridden)) {
      const left = s.expiresAt === null ? '' : ` for ${formatDuration(Math.max(0, s.expiresAt - now))}`;
      say(io, `worker recovery on ${s.instance}: ${s.workerRecovery ? 'on' : 'off'}${left} (overridden)`);
    }
  }
  if (failed.length > 0) {
    for (const m of missing) warn(io, `could not list ${m.error}`);
    throw unreachable(failed);
  }
  return 0;
}

export async function faultClearCommand(
  io: Io,
  home: string,
  service: string | undefined,
  options: { instance?: string; id?: string },
): Promise<number> {
  const state = requireLab(io, home);
  const instances = selectTargets(state, service, options.instance);
  const proxies = proxyTargets(state, instances, false);
  const agents = new AgentClient(state.adminToken);
  const proxyClient = new ProxyClient(state.adminToken);
  const scope = describeScope(instances, proxies);
  if (options.id !== undefined) {
    const id = options.id;
    const [a, p] = await Promise.all([
      onEvery(instances, (t) => agents.remove(t, id)),
      onEvery(proxies, (t) => proxyClient.remove(t, id)),
    ]);
    const failed = [...a.failed, ...p.failed];
    if (failed.length > 0) throw unreachable(failed);
    const removedFrom = [...a.ok, ...p.ok].filter((o) => o.value.removed).map((o) => o.target.id);
    say(
      io,
      removedFrom.length > 0 ? `cleared ${id} on ${removedFrom.join(', ')}` : `no fault ${id} on ${scope}`,
    );
    return 0;
  }
  const [a, p] = await Promise.all([
    onEvery(instances, (t) => agents.clear(t)),
    onEvery(proxies, (t) => proxyClient.clear(t)),
  ]);
  const removed = [...a.ok, ...p.ok].reduce((sum, o) => sum + o.value.removed, 0);
  say(io, `cleared ${removed} fault${removed === 1 ? '' : 's'} and any worker-recovery override on ${scope}`);
  const failed = [...a.failed, ...p.failed];
  if (failed.length > 0) throw unreachable(failed);
  return 0;
}

export type RecoveryChoice = 'on' | 'off' | 'default';

export async function faultRecoveryCommand(
  io: Io,
  home: string,
  choice: RecoveryChoice,
  service: string,
  options: { leaseMs: number; instance?: string },
): Promise<number> {
  const state = requireLab(io, home);
  const targets = selectTargets(state, service, options.instance);
  const agents = new AgentClient(state.adminToken);
  const names = targets.map((t) => t.id).join(', ');
  const labDefault = state.workerRecovery ? 'on' : 'off';
  if (choice === 'default') {
    const { failed } = await onEvery(targets, (t) => agents.resetSettings(t));
    if (failed.length > 0) throw unreachable(failed);
    say(io, `worker recovery back to the lab default (${labDefault}) on ${names}`);
    return 0;
  }
  const { failed } = await onEvery(targets, (t) => agents.setRecovery(t, choice === 'on', options.leaseMs));
  if (failed.length > 0) throw unreachable(failed);
  say(
    io,
    `worker recovery ${choice} on ${names} for ${formatDuration(options.leaseMs)} (then back to the lab default: ${labDefault})`,
  );
  return 0;
}
