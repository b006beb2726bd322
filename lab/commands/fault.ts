/**
 * `chaos-lab fault …`: drives the fault agents of a running lab over their admin API, with
 * the admin token from the lab's state file. A fault goes to every instance of a service
 * (or one, with --instance) under one id, so it can be listed, renewed and cleared as one.
 */

import { randomBytes } from 'node:crypto';
import { AgentClient, type AgentView, onEvery, type Target } from '../admin-client.ts';
import { CliError, usageError } from '../cli-error.ts';
import { formatDuration } from '../duration.ts';
import { type FaultKind, faultParams, type ParamValues } from '../fault-kinds.ts';
import { requireLab } from '../find-lab.ts';
import { type Io, say, table, warn } from '../io.ts';
import type { LabState, StateInstance } from '../state.ts';

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

function newFaultId(kind: string): string {
  return `cli-${kind}-${randomBytes(2).toString('hex')}`;
}

function describeParams(params: Readonly<Record<string, number>>): string {
  return Object.entries(params)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
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
  if (givenId !== undefined && !FAULT_ID.test(givenId)) {
    throw usageError(
      `--id ${JSON.stringify(givenId)} is not a valid fault id`,
      'use lower-case letters, digits and dashes, e.g. --id coin-slow',
    );
  }
  const state = requireLab(io, home);
  const targets = selectTargets(state, service, instance);
  const id = givenId ?? newFaultId(kind);
  const agents = new AgentClient(state.adminToken);
  const { ok, failed } = await onEvery(targets, (t) => agents.put(t, id, { kind, params, leaseMs }));
  if (failed.length > 0) {
    // All or nothing: a fault on half the instances would make any measurement misleading.
    await onEvery(
      ok.filter((o) => o.value.created).map((o) => o.target),
      (t) => agents.remove(t, id),
    );
    throw unreachable(failed);
  }
  const renewed = ok.filter((o) => !o.value.created).length;
  say(
    io,
    `${renewed === ok.length ? 'renewed' : 'applied'} ${kind} ${id} (${describeParams(params)}) on ${targets.map((t) => t.id).join(', ')} for ${formatDuration(leaseMs)}`,
  );
  say(io, `clear it early with: npx chaos-lab fault clear ${service} --id ${id}`);
  return 0;
}

interface ListedFault {
  readonly instance: string;
  readonly service: string;
  readonly id: string;
  readonly kind: string;
  readonly params: Readonly<Record<string, number>>;
  readonly leaseMs: number;
  readonly appliedAt: number;
  readonly expiresAt: number;
  readonly remainingMs: number;
}

export async function faultListCommand(
  io: Io,
  home: string,
  service: string | undefined,
  options: { json?: boolean; instance?: string },
): Promise<number> {
  const state = requireLab(io, home);
  const targets = selectTargets(state, service, options.instance);
  const agents = new AgentClient(state.adminToken);
  const { ok, failed } = await onEvery(targets, (t) => agents.view(t));
  const now = Date.now();
  const serviceOf = new Map(state.instances.map((i) => [i.id, i.service]));
  const views: { target: Target; value: AgentView }[] = ok;
  const faults: ListedFault[] = views.flatMap(({ target, value }) =>
    value.faults.map((f) => ({
      instance: target.id,
      service: serviceOf.get(target.id) ?? value.service,
      id: f.id,
      kind: f.kind,
      params: f.params,
      leaseMs: f.leaseMs,
      appliedAt: f.appliedAt,
      expiresAt: f.expiresAt,
      remainingMs: Math.max(0, f.expiresAt - now),
    })),
  );
  const settings = views.map(({ target, value }) => ({
    instance: target.id,
    service: serviceOf.get(target.id) ?? value.service,
    ...value.settings,
  }));
  const missing = failed.map((f) => ({ instance: f.target.id, error: f.error.message }));
  if (options.json) {
    say(io, JSON.stringify({ faults, settings, unreachable: missing }, null, 2));
  } else {
    if (faults.length === 0)
      say(io, `no faults active on ${views.length} instance${views.length === 1 ? '' : 's'}`);
    else {
      const rows = faults.map((f) => [
        f.instance,
        f.id,
        f.kind,
        describeParams(f.params),
        formatDuration(f.remainingMs),
      ]);
      for (const line of table([['INSTANCE', 'FAULT', 'KIND', 'PARAMS', 'EXPIRES IN'], ...rows]))
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
  const targets = selectTargets(state, service, options.instance);
  const agents = new AgentClient(state.adminToken);
  const scope = targets.length === 1 ? targets[0]!.id : `${targets.length} instances`;
  if (options.id !== undefined) {
    const id = options.id;
    const { ok, failed } = await onEvery(targets, (t) => agents.remove(t, id));
    if (failed.length > 0) throw unreachable(failed);
    const removed = ok.filter((o) => o.value.removed).length;
    say(io, removed > 0 ? `cleared ${id} on ${removed} of ${scope}` : `no fault ${id} on ${scope}`);
    return 0;
  }
  const { ok, failed } = await onEvery(targets, (t) => agents.clear(t));
  const removed = ok.reduce((sum, o) => sum + o.value.removed, 0);
  say(io, `cleared ${removed} fault${removed === 1 ? '' : 's'} and any worker-recovery override on ${scope}`);
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
