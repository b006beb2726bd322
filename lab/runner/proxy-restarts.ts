/**
 * What a fault proxy's restart during a phase did to the run's faults, for the result and the terminal.
 *
 * A proxy keeps its leases in memory: a restart loses every fault in force on it, and the instance
 * behind it is out of the gateways' reach until the proxy is back. Nothing tells the runner; but its
 * lease renewal (every leaseMs/3) PUTs every lease again, and a proxy that lost one takes it as new
 * (201, not 200): that is how the run knows it put a fault back, and when.
 */
import type { PhaseRecord, ProxyRestart } from './result.ts';
import type { ProxyCounters } from './target.ts';

/** `10:31:07`, local time, as the terminal shows times. */
function clockTime(iso: string): string {
  return new Date(iso).toTimeString().slice(0, 8);
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

/**
 * The proxies whose restarts rose from `before` to `after` (read at the phase's start and end), each with
 * what became of this run's faults on it, judged by its last exit against the phase's fault windows and
 * the renewals that put faults back (`record.reapplied`). `now` ends a window still open.
 */
export function proxyRestartsOf(
  before: Readonly<Record<string, ProxyCounters>>,
  after: Readonly<Record<string, ProxyCounters>>,
  record: Pick<PhaseRecord, 'faults' | 'reapplied'>,
  now: number,
): ProxyRestart[] {
  return Object.entries(after).flatMap(([instance, counters]): ProxyRestart[] => {
    const restarts = counters.restarts - (before[instance]?.restarts ?? 0);
    if (restarts <= 0) return [];
    const windows = record.faults
      .filter((f) => f.injector === 'fault-proxy' && f.instances.includes(instance))
      .map((f) => ({ from: Date.parse(f.injectedAt), to: f.removedAt ? Date.parse(f.removedAt) : now }));
    const reappliedAt = [
      ...new Set(
        record.reapplied
          .filter((r) => r.injector === 'fault-proxy' && r.instance === instance)
          .map((r) => r.at),
      ),
    ];
    const exit = counters.lastExitAt === null ? undefined : Date.parse(counters.lastExitAt);
    const hit = exit !== undefined && windows.some((w) => w.from <= exit && exit < w.to);
    const putBack = reappliedAt.find((at) => exit !== undefined && Date.parse(at) >= exit);
    const faults = hit ? (putBack ? 'reapplied' : 'lost') : reappliedAt.length > 0 ? 'reapplied' : 'none';

    const restarted = `${instance}'s fault proxy restarted${restarts > 1 ? ` ${restarts} times` : ''}`;
    const lostThem = `and lost this run's faults on it (a proxy keeps them in memory; its calibration figures start again too)`;
    let note: string;
    if (faults === 'none') {
      note = `${restarted}; no fault of this run was on it then (${instance} was out of the gateways' reach until it was back)`;
    } else if (faults === 'lost') {
      note = `${restarted} ${lostThem}; they were not put back before the phase's faults were removed: ${instance} was without them from ${clockTime(counters.lastExitAt as string)} to the phase's end`;
    } else {
      const gap =
        putBack && exit !== undefined ? ` (${seconds(Date.parse(putBack) - exit)} after its last exit)` : '';
      note = `${restarted} ${lostThem}; the lease renewal put them back at ${reappliedAt.map(clockTime).join(', ')}${gap}: ${instance} was without them until then`;
    }
    return [{ instance, restarts, lastExitAt: counters.lastExitAt, faults, reappliedAt, note }];
  });
}
