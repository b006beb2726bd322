/**
 * One run per lab on Kubernetes: a coordination.k8s.io/v1 Lease, `chaos-lab-run` in the lab's
 * namespace, names the run that holds the lab. The lab is shared by everyone whose kubeconfig
 * reaches the cluster, on any machine, so the lock lives in the cluster, as the local lab's
 * run.lock lives in its home.
 *
 * - Taken by a create, which the API server makes atomic: a second run gets 409 AlreadyExists,
 *   reads the Lease and is refused with LabBusyError naming the holder (host, pid, experiment,
 *   since when) — unless the Lease is stale (its renewTime plus leaseDurationSeconds is past: a run
 *   killed without a chance to release). A stale Lease is taken over by an update that carries the
 *   resourceVersion read, so of two runs taking over the same stale Lease only one can win.
 * - Renewed while the run goes (every 10 s, for 30 s): a killed runner's Lease expires by itself.
 *   Staleness compares the holder's renewTime with this machine's clock, so clocks more than a few
 *   seconds apart shorten or lengthen that grace accordingly.
 * - Released (deleted, guarded by its resourceVersion) at the end of the run, failed or aborted
 *   ones included; a Lease that cannot be deleted then expires by itself. `down --target kind`
 *   deletes the namespace, and the Lease with it.
 *
 * If a renewal finds that another run took the Lease over (this one could not renew it for longer
 * than its duration), `onLost` says so: the run is no longer alone on the lab.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { LABELS, PART_OF } from '../../services/names.ts';
import { CliError } from '../cli-error.ts';
import { describeHolder, LabBusyError, type RunHolder } from '../runner/target.ts';
import { type Cluster, KubeError, type LeaseRecord } from './cluster.ts';

export const RUN_LEASE_NAME = 'chaos-lab-run';
/** The annotation that carries the holder as JSON: `{pid, experiment, startedAt, host}`. */
export const RUN_LEASE_ANNOTATION = 'chaos-lab.dev/run';

export interface RunLeaseTiming {
  /** The Lease's leaseDurationSeconds: how long it outlives its last renewal. */
  readonly durationSeconds: number;
  readonly renewEveryMs: number;
}

export const RUN_LEASE_TIMING: RunLeaseTiming = { durationSeconds: 30, renewEveryMs: 10_000 };

/** Bound of each call about the Lease: a hung API server must not hold a run's start or end. */
const CALL_TIMEOUT_MS = 5_000;

export interface RunLeaseOptions {
  readonly cluster: Cluster;
  readonly namespace: string;
  /** @default RUN_LEASE_TIMING */
  readonly timing?: Partial<RunLeaseTiming>;
  /** Told once, why, when another run took the Lease over while this one held it. */
  readonly onLost?: (why: string) => void;
}

export interface RunLeaseHold {
  /** Stops renewing and deletes the Lease if it is still this run's. Never throws. */
  release(): Promise<void>;
}

/**
 * Takes the lab in `namespace` for `holder` (its host is added), or throws LabBusyError naming the
 * run that holds it. No namespace (no lab deployed, or it is being deleted): nothing to hold, and
 * the run's prepare() says what is wrong. Any other failure is a CliError: nothing has started.
 */
export async function holdRunLease(options: RunLeaseOptions, holder: RunHolder): Promise<RunLeaseHold> {
  const { cluster, namespace } = options;
  const timing = { ...RUN_LEASE_TIMING, ...options.timing };
  const run: RunHolder = { ...holder, host: holder.host ?? hostname() };
  const identity = `${run.host}/${run.pid}/${randomBytes(3).toString('hex')}`;
  const where = `Lease ${namespace}/${RUN_LEASE_NAME}`;
  const fresh = (previous?: LeaseRecord): LeaseRecord => {
    const now = new Date().toISOString();
    return {
      name: RUN_LEASE_NAME,
      holderIdentity: identity,
      leaseDurationSeconds: timing.durationSeconds,
      acquireTime: now,
      renewTime: now,
      leaseTransitions: previous ? (previous.leaseTransitions ?? 0) + 1 : 0,
      labels: { [LABELS.partOf]: PART_OF },
      annotations: { [RUN_LEASE_ANNOTATION]: JSON.stringify(run) },
      ...(previous?.resourceVersion !== undefined ? { resourceVersion: previous.resourceVersion } : {}),
    };
  };

  let taken: LeaseRecord | undefined;
  try {
    // Three tries at most: each lost race (the Lease deleted or taken over between two calls) reads again.
    for (let attempt = 0; attempt < 3 && !taken; attempt++) {
      try {
        taken = await cluster.createLease(namespace, fresh(), timeout());
        break;
      } catch (err) {
        if (noNamespace(err, namespace)) return { release: async () => {} };
        if (!(err instanceof KubeError && err.status === 409)) throw err;
      }
      const current = await cluster.readLease(namespace, RUN_LEASE_NAME, timeout());
      if (!current) continue;
      if (isLive(current)) throw new LabBusyError(holderOf(current));
      try {
        taken = await cluster.replaceLease(namespace, fresh(current), timeout());
      } catch (err) {
        if (!(err instanceof KubeError && (err.status === 409 || err.status === 404))) throw err;
      }
    }
  } catch (err) {
    if (err instanceof LabBusyError) throw err;
    const forbidden = err instanceof KubeError && err.status === 403;
    throw new CliError(
      `cannot take the lab for this run: ${(err as Error).message}; nothing was started`,
      forbidden
        ? {
            hint: `a run on Kubernetes holds the lab with the ${where}: the kubeconfig's user needs create, get, update and delete on leases (coordination.k8s.io) in namespace ${namespace}`,
          }
        : {},
    );
  }
  if (!taken)
    throw new CliError(`could not take the ${where}: other runs kept taking it; nothing was started`);
  return keep(options, taken, identity, timing);
}

/** Renews `taken` until released; see the file's comment. */
function keep(
  options: RunLeaseOptions,
  taken: LeaseRecord,
  identity: string,
  timing: RunLeaseTiming,
): RunLeaseHold {
  const { cluster, namespace } = options;
  let current = taken;
  let lost = false;
  let released = false;
  let timer: NodeJS.Timeout | undefined;
  let renewing: Promise<void> = Promise.resolve();

  const takenBy = (other: LeaseRecord) => {
    lost = true;
    options.onLost?.(
      `another run took the lab over: ${describeHolder(holderOf(other))} holds the Lease ${namespace}/${RUN_LEASE_NAME} now, as this run could not renew it within ${timing.durationSeconds} s`,
    );
  };

  const renew = async () => {
    try {
      current = await cluster.replaceLease(
        namespace,
        { ...current, renewTime: new Date().toISOString() },
        timeout(),
      );
    } catch (err) {
      if (!(err instanceof KubeError)) return;
      if (err.status === 409) {
        const now = await cluster.readLease(namespace, RUN_LEASE_NAME, timeout()).catch(() => undefined);
        if (now && now.holderIdentity !== identity) takenBy(now);
        else if (now) current = now;
      } else if (err.status === 404) {
        // Deleted under the run (by hand): take it again, unless another run did first. A namespace
        // going is the lab watch's to report.
        try {
          current = await cluster.createLease(
            namespace,
            { ...current, resourceVersion: undefined },
            timeout(),
          );
        } catch (again) {
          if (again instanceof KubeError && again.status === 409) {
            const other = await cluster
              .readLease(namespace, RUN_LEASE_NAME, timeout())
              .catch(() => undefined);
            if (other && other.holderIdentity !== identity) takenBy(other);
          }
        }
      }
      // Anything else (the API server unreachable for a moment): the next renewal tries again.
    }
  };

  const schedule = () => {
    timer = setTimeout(() => {
      renewing = renew().finally(() => {
        if (!released && !lost) schedule();
      });
    }, timing.renewEveryMs);
    timer.unref();
  };
  schedule();

  return {
    async release() {
      if (released) return;
      released = true;
      clearTimeout(timer);
      await renewing.catch(() => {});
      if (lost) return;
      try {
        await cluster.deleteLease(namespace, RUN_LEASE_NAME, current.resourceVersion, timeout());
      } catch (err) {
        if (!(err instanceof KubeError && err.status === 409)) return;
        // Changed since this run last wrote it: deleted only if it is still this run's.
        const now = await cluster.readLease(namespace, RUN_LEASE_NAME, timeout()).catch(() => undefined);
        if (now && now.holderIdentity === identity) {
          await cluster
            .deleteLease(namespace, RUN_LEASE_NAME, now.resourceVersion, timeout())
            .catch(() => {});
        }
      }
      // A Lease that could not be deleted expires by itself within its duration.
    },
  };
}

/** The run holding the lab in `namespace` now, if any (none: no Lease, or a stale one). */
export async function readRunLease(cluster: Cluster, namespace: string): Promise<RunHolder | undefined> {
  const lease = await cluster.readLease(namespace, RUN_LEASE_NAME, timeout());
  return lease && isLive(lease) ? holderOf(lease) : undefined;
}

/** Held: it has a holder, and its last renewal plus its duration is still ahead. */
export function isLive(lease: LeaseRecord, now = Date.now()): boolean {
  if (!lease.holderIdentity) return false;
  const renewed = Date.parse(lease.renewTime ?? lease.acquireTime ?? '');
  if (Number.isNaN(renewed) || lease.leaseDurationSeconds === undefined) return false;
  return renewed + lease.leaseDurationSeconds * 1000 > now;
}

/** The run a Lease names; one another tool wrote is described by what it has. */
export function holderOf(lease: LeaseRecord): RunHolder {
  try {
    const run = JSON.parse(lease.annotations?.[RUN_LEASE_ANNOTATION] ?? '') as Partial<RunHolder>;
    if (
      typeof run.pid === 'number' &&
      typeof run.experiment === 'string' &&
      typeof run.startedAt === 'string'
    ) {
      return {
        pid: run.pid,
        experiment: run.experiment,
        startedAt: run.startedAt,
        ...(typeof run.host === 'string' ? { host: run.host } : {}),
      };
    }
  } catch {
    // Not ours: described below from the Lease's own fields.
  }
  return {
    pid: 0,
    experiment: `an unknown experiment (holder ${lease.holderIdentity ?? 'unnamed'})`,
    startedAt: lease.acquireTime ?? lease.renewTime ?? 'an unknown time',
  };
}

/** The namespace does not exist (404) or is being deleted (403 NamespaceTerminating): there is no lab to hold. */
function noNamespace(err: unknown, namespace: string): boolean {
  if (!(err instanceof KubeError)) return false;
  if (err.status === 404) return err.message.includes(`namespaces "${namespace}" not found`);
  return err.status === 403 && err.message.includes('because it is being terminated');
}

function timeout(): AbortSignal {
  return AbortSignal.timeout(CALL_TIMEOUT_MS);
}
