import { FAULT_ID_EXPECTED, FAULT_ID_PATTERN } from '../services/fault-bounds.ts';
import type { ProxyStatsSnapshot } from '../services/fault-proxy/stats.ts';
import type { TrustMode } from '../services/lib/trust.ts';
import type { LabStatus } from './local/control-server.ts';
import type { LabState } from './local/state.ts';
/**
 * A client of the fault admin APIs — the fault agent's (`/__chaos` on every instance) and the
 * fault proxy's (`/__chaos` on each proxy's admin port), which share paths, bodies and lease
 * rules — and of the supervisor's control API. Failures come back as AdminError values that
 * say which instance, what it answered and why, ready for a one-line message.
 */

/** A fault lease as the agent reports it (see the admin API contract). */
export interface FaultLease {
  readonly id: string;
  readonly kind: string;
  readonly params: Readonly<Record<string, number>>;
  readonly leaseMs: number;
  readonly appliedAt: number;
  readonly expiresAt: number;
}

export interface AgentSettings {
  readonly workerRecovery: boolean;
  /** The trust mode in force (gateways and backends). */
  readonly trust?: TrustMode;
  readonly overridden: boolean;
  /** What the override in force sets. */
  readonly override?: SettingsOverride;
  readonly expiresAt: number | null;
}

/** What a variant may override on the lab's processes for a while. */
export interface SettingsOverride {
  readonly workerRecovery?: boolean;
  readonly trust?: TrustMode;
}

export interface AgentView {
  readonly service: string;
  readonly instance: string;
  readonly faults: readonly FaultLease[];
  readonly settings: AgentSettings;
}

/** A fault proxy's listing: the agent's, without worker settings (a proxy runs no workers). */
export interface ProxyView {
  readonly service: string;
  readonly instance: string;
  readonly injector: 'fault-proxy';
  /** `host:port` of the instance behind it. */
  readonly upstream: string;
  readonly faults: readonly FaultLease[];
}

/** A proxy's calibration figures over one window: the proxy's own wire type. */
export type ProxyStats = ProxyStatsSnapshot;

export interface Target {
  readonly id: string;
  readonly url: string;
}

export class AdminError extends Error {
  constructor(
    readonly instance: string,
    message: string,
    /** HTTP status, or undefined when the instance could not be reached. */
    readonly status?: number,
    readonly reason?: string,
  ) {
    super(message);
    this.name = 'AdminError';
  }
}

const DEFAULT_TIMEOUT_MS = 3_000;

function describeNetworkError(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  if (cause?.code === 'ECONNREFUSED') return 'connection refused (not running, or restarting)';
  if ((err as Error).name === 'TimeoutError') return 'no answer in time';
  // fetch's own message is a bare "fetch failed"; the cause says why.
  return cause?.code ?? cause?.message ?? (err as Error).message;
}

/** One JSON call with a bearer token; non-2xx answers become AdminError with the agent's reason. */
export async function callJson<T>(
  target: Target,
  token: string,
  method: string,
  path: string,
  body?: unknown,
  timeoutMs = DEFAULT_TIMEOUT_MS,
): Promise<T> {
  return (await exchange<T>(target, token, method, path, body, timeoutMs)).body;
}

async function exchange<T>(
  target: Target,
  token: string,
  method: string,
  path: string,
  body?: unknown,
  timeoutMs = DEFAULT_TIMEOUT_MS,
): Promise<{ status: number; body: T }> {
  let res: Response;
  try {
    res = await fetch(`${target.url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    throw new AdminError(target.id, `${target.id} (${target.url}): ${describeNetworkError(err)}`);
  }
  const text = await res.text();
  let json: unknown;
  try {
    json = text === '' ? undefined : JSON.parse(text);
  } catch {
    json = undefined;
  }
  if (!res.ok) {
    const error = (json as { error?: { reason?: string; message?: string } } | undefined)?.error;
    const reason = error?.reason ?? `HTTP ${res.status}`;
    throw new AdminError(
      target.id,
      `${target.id} refused ${method} ${path}: ${res.status} ${reason}${error?.message ? ` — ${error.message}` : ''}`,
      res.status,
      error?.reason,
    );
  }
  return { status: res.status, body: json as T };
}

/** True when the instance could not be reached at all (down, restarting), rather than saying no. */
export function isUnreachable(err: unknown): boolean {
  return err instanceof AdminError && err.status === undefined;
}

/** A lease id as a path segment; any other (`.`, `..`) would name another route once the URL is normalised. */
function leasePath(target: Target, id: string): string {
  if (!FAULT_ID_PATTERN.test(id)) {
    throw new AdminError(
      target.id,
      `${target.id}: ${JSON.stringify(id)} is not a fault id (expected ${FAULT_ID_EXPECTED})`,
    );
  }
  return `/__chaos/faults/${id}`;
}

/** The lease routes both fault admin APIs share. */
class LeaseClient {
  constructor(protected readonly token: string) {}

  /** Applies or renews a fault; `created` is false when an existing lease was renewed. */
  async put(
    target: Target,
    id: string,
    fault: { kind: string; params: Record<string, number>; leaseMs: number },
  ): Promise<{ fault: FaultLease; created: boolean }> {
    const answer = await exchange<{ fault: FaultLease }>(
      target,
      this.token,
      'PUT',
      leasePath(target, id),
      fault,
    );
    return { fault: answer.body.fault, created: answer.status === 201 };
  }

  remove(target: Target, id: string): Promise<{ removed: boolean }> {
    return callJson(target, this.token, 'DELETE', leasePath(target, id));
  }

  clear(target: Target): Promise<{ removed: number }> {
    return callJson(target, this.token, 'DELETE', '/__chaos/faults');
  }
}

export class AgentClient extends LeaseClient {
  view(target: Target): Promise<AgentView> {
    return callJson<AgentView>(target, this.token, 'GET', '/__chaos/faults');
  }

  setRecovery(
    target: Target,
    workerRecovery: boolean,
    leaseMs: number,
  ): Promise<{ settings: AgentSettings }> {
    return this.setSettings(target, { workerRecovery }, leaseMs);
  }

  /** Overrides some settings for `leaseMs`; those not named keep their override or default. */
  setSettings(
    target: Target,
    settings: SettingsOverride,
    leaseMs: number,
  ): Promise<{ settings: AgentSettings }> {
    return callJson(target, this.token, 'PUT', '/__chaos/settings', { ...settings, leaseMs });
  }

  resetSettings(target: Target): Promise<{ settings: AgentSettings }> {
    return callJson(target, this.token, 'DELETE', '/__chaos/settings');
  }
}

export class ProxyClient extends LeaseClient {
  view(target: Target): Promise<ProxyView> {
    return callJson<ProxyView>(target, this.token, 'GET', '/__chaos/faults');
  }

  /** The figures of the current window, which goes on. */
  async stats(target: Target): Promise<ProxyStats> {
    return (await callJson<{ stats: ProxyStats }>(target, this.token, 'GET', '/__chaos/stats')).stats;
  }

  /** The figures of the current window, and a new window from now. */
  async takeStats(target: Target): Promise<ProxyStats> {
    return (await callJson<{ stats: ProxyStats }>(target, this.token, 'DELETE', '/__chaos/stats')).stats;
  }
}

/** Runs `call` on every target at once; the failures and successes, each by target. */
export async function onEvery<U extends Target, T>(
  targets: readonly U[],
  call: (target: U) => Promise<T>,
): Promise<{ ok: { target: U; value: T }[]; failed: { target: U; error: AdminError }[] }> {
  const settled = await Promise.allSettled(targets.map((t) => call(t)));
  const ok: { target: U; value: T }[] = [];
  const failed: { target: U; error: AdminError }[] = [];
  settled.forEach((result, i) => {
    const target = targets[i]!;
    if (result.status === 'fulfilled') ok.push({ target, value: result.value });
    else {
      const error =
        result.reason instanceof AdminError
          ? result.reason
          : new AdminError(target.id, `${target.id}: ${(result.reason as Error).message}`);
      failed.push({ target, error });
    }
  });
  return { ok, failed };
}

/** The lab's live status from its supervisor's control API; fails saying the supervisor does not answer. */
export async function fetchLabStatus(state: LabState): Promise<LabStatus> {
  try {
    return await callJson<LabStatus>(
      { id: 'supervisor', url: state.controlUrl },
      state.adminToken,
      'GET',
      '/status',
    );
  } catch (err) {
    throw new Error(`the lab's supervisor (pid ${state.pid}) does not answer: ${(err as Error).message}`);
  }
}
