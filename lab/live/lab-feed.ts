/**
 * The lab feed: what a lab started with `chaos-lab up` is doing, with no experiment running. Once a
 * second it reads the three gateways' /metrics and turns the counters' and the request-duration
 * histogram's deltas into the per-second figures a run reports (rate, success and degraded rate, p50 and
 * p99), and lists the faults every fault agent and fault proxy holds, each drawn as a shaded window while
 * it lasts.
 *
 * These latencies are not the run's: the gateway measures from the moment it read the request, and p50
 * and p99 are estimated from histogram buckets (the bucket holding the rank, interpolated linearly, as
 * Prometheus' histogram_quantile does). The page says so.
 *
 * It scrapes only while someone watches (a page is connected): an idle lab is left alone.
 */
import { REQUEST_DURATION_METRIC } from '../../services/names.ts';
import type { BackendName } from '../../services/topology.ts';
import { AgentClient, type FaultLease, ProxyClient, type Target } from '../admin-client.ts';
import { parsePromText, type Sample } from '../prom-text.ts';
import { formatParams } from '../report/format.ts';
import type { GatewaySecond } from '../runner/result.ts';
import { type LiveFault, LiveModel } from './model.ts';

const REQUESTS = 'gateway_requests_total';
/** The service app's request-duration histogram's buckets. */
export const DURATION_BUCKET = `${REQUEST_DURATION_METRIC}_bucket`;
/** The video page's route as the service app labels it. */
export const VIDEO_ROUTE = '/api/video/:aid';

const LATENCY_NOTE =
  "latency as each gateway measures it: p50 and p99 estimated from its histogram's buckets";

export interface AdminTarget extends Target {
  /** `coin`, or `gateway`. */
  readonly service: string;
  /** The instance the faults apply to: the target itself, or the one a proxy fronts. */
  readonly instance: string;
}

export interface LabFeedOptions {
  /** Strategy → the gateway's base URL. */
  readonly gateways: Readonly<Record<string, string>>;
  /** Every instance's fault agent (backends and gateways). */
  readonly agents: readonly AdminTarget[];
  /** Every fault proxy's admin API. */
  readonly proxies: readonly AdminTarget[];
  readonly adminToken: string;
  /** Shown under the title, e.g. `port base 18000 · trust half`. */
  readonly subtitle?: string;
  /** Epoch milliseconds. @default Date.now */
  readonly now?: () => number;
  /** @default 1000 */
  readonly intervalMs?: number;
  /** Each scrape's bound. @default 800 */
  readonly timeoutMs?: number;
  /** @default 600 */
  readonly historySeconds?: number;
}

export interface LabFeed {
  readonly model: LiveModel;
  /** How many pages watch: scraping runs while there is at least one. */
  watchers(count: number): void;
  /** One scrape of everything, now (the ticker calls it; tests too). */
  scrape(): Promise<void>;
  close(): void;
}

// ---------------------------------------------------------------------------------------------------------
// From two scrapes of one gateway to one second

export interface GatewayScrape {
  readonly samples: readonly Sample[];
  /** Epoch ms. */
  readonly at: number;
}

/**
 * The figures between two scrapes of one gateway, or undefined when they cannot be compared (a counter
 * went down: the gateway restarted in between). Rates are per second of the real interval.
 */
export function secondBetween(
  before: GatewayScrape,
  after: GatewayScrape,
): { second: GatewaySecond; requests: number } | undefined {
  const seconds = (after.at - before.at) / 1000;
  if (!(seconds > 0)) return undefined;
  const byStatus = (samples: readonly Sample[]) => {
    let total = 0;
    let ok = 0;
    let degraded = 0;
    for (const s of samples) {
      if (s.name !== REQUESTS) continue;
      total += s.value;
      if (/^2\d\d$/.test(s.labels.status ?? '')) {
        ok += s.value;
        if (s.labels.degraded === 'true') degraded += s.value;
      }
    }
    return { total, ok, degraded };
  };
  const b = byStatus(before.samples);
  const a = byStatus(after.samples);
  const requests = a.total - b.total;
  const ok = a.ok - b.ok;
  const degraded = a.degraded - b.degraded;
  if (requests < 0 || ok < 0 || degraded < 0) return undefined;
  const buckets = bucketDeltas(before.samples, after.samples);
  return {
    requests,
    second: {
      rps: requests / seconds,
      successRate: requests > 0 ? ok / requests : null,
      degradedRate: requests > 0 ? degraded / requests : null,
      p50: buckets ? histogramQuantile(0.5, buckets) : null,
      p95: buckets ? histogramQuantile(0.95, buckets) : null,
      p99: buckets ? histogramQuantile(0.99, buckets) : null,
      errors: requests - ok,
    },
  };
}

/** A cumulative bucket: `count` observations at or below `le` (seconds; Infinity for `+Inf`). */
export interface Bucket {
  readonly le: number;
  readonly count: number;
}

/** The video route's buckets summed over methods and statuses, after minus before; undefined if reset. */
function bucketDeltas(before: readonly Sample[], after: readonly Sample[]): Bucket[] | undefined {
  const sum = (samples: readonly Sample[]) => {
    const byLe = new Map<number, number>();
    for (const s of samples) {
      if (s.name !== DURATION_BUCKET || s.labels.route !== VIDEO_ROUTE) continue;
      const le = s.labels.le === '+Inf' ? Number.POSITIVE_INFINITY : Number(s.labels.le);
      if (Number.isNaN(le)) continue;
      byLe.set(le, (byLe.get(le) ?? 0) + s.value);
    }
    return byLe;
  };
  const b = sum(before);
  const a = sum(after);
  const buckets: Bucket[] = [];
  for (const [le, count] of a) {
    const delta = count - (b.get(le) ?? 0);
    if (delta < 0) return undefined;
    buckets.push({ le, count: delta });
  }
  return buckets.sort((x, y) => x.le - y.le);
}

/**
 * The q-quantile in milliseconds from cumulative buckets, as Prometheus' histogram_quantile estimates it:
 * linear within the bucket that holds the rank (from 0 for the first); a rank in the +Inf bucket gets the
 * highest finite bound. Null without observations.
 */
export function histogramQuantile(q: number, buckets: readonly Bucket[]): number | null {
  const total = buckets.at(-1)?.count ?? 0;
  if (!(total > 0)) return null;
  const rank = q * total;
  let lowerBound = 0;
  let below = 0;
  for (const bucket of buckets) {
    if (bucket.count >= rank) {
      if (!Number.isFinite(bucket.le)) return lowerBound * 1000;
      const inBucket = bucket.count - below;
      const share = inBucket > 0 ? (rank - below) / inBucket : 1;
      return (lowerBound + (bucket.le - lowerBound) * share) * 1000;
    }
    lowerBound = bucket.le;
    below = bucket.count;
  }
  return lowerBound * 1000;
}

// ---------------------------------------------------------------------------------------------------------
// Faults: one entry per lease id and injector, over every instance that holds it

export interface ListedFaults {
  readonly injector: 'fault-agent' | 'fault-proxy';
  readonly service: string;
  readonly instance: string;
  readonly faults: readonly FaultLease[];
  /** A worker-recovery override, when one is in force. */
  readonly recovery?: { readonly workerRecovery: boolean; readonly expiresAt: number | null };
}

/** A fault as the lab page lists it, and how its window is drawn. */
export interface LabFault extends LiveFault {
  /** The band's label: `latency on coin`. */
  readonly label: string;
  /** The band's second line: the parameters. */
  readonly detail?: string;
  /** A fault gets a window on the charts; a worker-recovery override is only listed. */
  readonly shaded: boolean;
}

/** The active faults as the page lists them: a fault applied to both coin instances is one entry. */
export function groupFaults(listings: readonly ListedFaults[]): LabFault[] {
  const groups = new Map<
    string,
    { lease: FaultLease; service: string; instances: string[]; expiresAt: number }
  >();
  const overrides: LabFault[] = [];
  for (const listing of listings) {
    for (const lease of listing.faults) {
      const key = `${listing.injector}:${lease.id}:${lease.kind}`;
      const group = groups.get(key);
      if (group) {
        group.instances.push(listing.instance);
        group.expiresAt = Math.max(group.expiresAt, lease.expiresAt);
      } else {
        groups.set(key, {
          lease,
          service: listing.service,
          instances: [listing.instance],
          expiresAt: lease.expiresAt,
        });
      }
    }
    if (listing.recovery) {
      const description = `worker panic recovery ${listing.recovery.workerRecovery ? 'on' : 'off'} on ${listing.service}`;
      overrides.push({
        key: `recovery:${listing.instance}`,
        description,
        instances: [listing.instance],
        expiresAt: listing.recovery.expiresAt,
        label: description,
        shaded: false,
      });
    }
  }
  const faults = [...groups].map(([key, g]): LabFault => {
    const label = `${g.lease.kind} on ${g.service}`;
    const detail = Object.keys(g.lease.params).length > 0 ? formatParams(g.lease.params) : undefined;
    return {
      key,
      description: detail === undefined ? label : `${label} (${detail})`,
      instances: g.instances.sort(),
      expiresAt: g.expiresAt,
      label,
      ...(detail !== undefined ? { detail } : {}),
      shaded: true,
    };
  });
  return [...faults, ...overrides];
}

// ---------------------------------------------------------------------------------------------------------
// The feed

export function createLabFeed(options: LabFeedOptions): LabFeed {
  const now = options.now ?? Date.now;
  const intervalMs = options.intervalMs ?? 1_000;
  const timeoutMs = options.timeoutMs ?? 800;
  const startedAt = now();
  const position = () => (now() - startedAt) / 1000;
  const gatewayNames = Object.keys(options.gateways);
  const model = new LiveModel({
    feed: 'lab',
    title: 'chaos-lab · the local lab',
    subtitle: options.subtitle ?? '',
    gateways: gatewayNames,
    latencyNote: LATENCY_NOTE,
    xTitle: 'seconds since the lab started',
    position,
    now,
    ...(options.historySeconds !== undefined ? { historySeconds: options.historySeconds } : {}),
  });
  model.setStage({
    label: 'watching the lab',
    step: 'no experiment: send traffic or add faults by hand',
    faults: [],
    endsAt: null,
    tone: 'idle',
  });

  const agents = new AgentClient(options.adminToken);
  const proxies = new ProxyClient(options.adminToken);
  const previous = new Map<string, GatewayScrape>();
  /** The last listing each injector gave: an instance restarting keeps its faults on the page until they expire. */
  const lastListing = new Map<string, ListedFaults>();
  let ticker: NodeJS.Timeout | undefined;
  let scraping: Promise<void> | undefined;
  let closed = false;

  const scrapeGateway = async (name: string, url: string): Promise<GatewayScrape | undefined> => {
    try {
      const res = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(timeoutMs) });
      if (!res.ok) return undefined;
      return { samples: parsePromText(await res.text()), at: now() };
    } catch {
      // Down or restarting: a gap in its lines, and the next scrape starts afresh.
      previous.delete(name);
      return undefined;
    }
  };

  const listFaults = async (): Promise<ListedFaults[]> => {
    const fromAgents = options.agents.map(async (target): Promise<ListedFaults | undefined> => {
      const view = await agents.view(target);
      return {
        injector: 'fault-agent',
        service: target.service,
        instance: target.instance,
        faults: view.faults,
        ...(view.settings.overridden
          ? {
              recovery: {
                workerRecovery: view.settings.workerRecovery,
                expiresAt: view.settings.expiresAt,
              },
            }
          : {}),
      };
    });
    const fromProxies = options.proxies.map(async (target): Promise<ListedFaults | undefined> => {
      const view = await proxies.view(target);
      return {
        injector: 'fault-proxy',
        service: target.service,
        instance: target.instance,
        faults: view.faults,
      };
    });
    const all = [...options.agents, ...options.proxies];
    const settled = await Promise.allSettled([...fromAgents, ...fromProxies]);
    const at = now();
    return settled.flatMap((result, i) => {
      const target = all[i]!;
      if (result.status === 'fulfilled' && result.value) {
        lastListing.set(target.id, result.value);
        return [result.value];
      }
      const last = lastListing.get(target.id);
      if (!last) return [];
      return [{ ...last, faults: last.faults.filter((f) => f.expiresAt > at) }];
    });
  };

  const scrape = async (): Promise<void> => {
    const [scrapes, listings] = await Promise.all([
      Promise.all(gatewayNames.map((name) => scrapeGateway(name, options.gateways[name] ?? ''))),
      listFaults(),
    ]);
    if (closed) return;
    const gateways: Partial<Record<string, GatewaySecond>> = {};
    const requests: Record<string, number> = {};
    let from: number | undefined;
    gatewayNames.forEach((name, i) => {
      const after = scrapes[i];
      if (!after) return;
      const before = previous.get(name);
      previous.set(name, after);
      if (!before) return;
      const figures = secondBetween(before, after);
      if (!figures) return;
      gateways[name] = figures.second;
      requests[name] = figures.requests;
      from = Math.min(from ?? Number.POSITIVE_INFINITY, (before.at - startedAt) / 1000);
    });
    if (from !== undefined) model.addSecond({ t: from, gateways }, requests);
    showFaults(groupFaults(listings));
  };

  const showFaults = (faults: readonly LabFault[]) => {
    const x = position();
    const shaded = faults.filter((f) => f.shaded);
    const keys = new Set(shaded.map((f) => f.key));
    for (const band of model.snapshot().bands) {
      if (band.to === null && !keys.has(band.key)) model.closeBand(band.key, x);
    }
    for (const fault of shaded) {
      if (model.isOpen(fault.key)) continue;
      model.openBand({
        key: fault.key,
        from: x,
        label: fault.label,
        tone: 'strong',
        ...(fault.detail !== undefined ? { detail: fault.detail } : {}),
      });
    }
    model.setFaults(
      faults.map(
        ({ key, description, instances, expiresAt }): LiveFault => ({
          key,
          description,
          instances,
          expiresAt,
        }),
      ),
    );
  };

  const tick = () => {
    // A scrape that outlasts the interval is not stacked on: the next tick skips.
    if (scraping || closed) return;
    scraping = scrape().finally(() => {
      scraping = undefined;
    });
  };

  return {
    model,
    scrape,
    watchers(count) {
      if (closed) return;
      if (count > 0 && !ticker) {
        // Nothing was measured while nobody watched: a break in the lines, not a slope across the gap.
        model.addSecond({ t: position(), gateways: {} });
        tick();
        ticker = setInterval(tick, intervalMs);
        ticker.unref();
      } else if (count === 0 && ticker) {
        clearInterval(ticker);
        ticker = undefined;
        // The next watcher's first scrape is a fresh baseline: no rate across the unwatched gap.
        previous.clear();
      }
    },
    close() {
      closed = true;
      clearInterval(ticker);
      ticker = undefined;
    },
  };
}

/** The feed's targets for a lab laid out by lab/local/layout.ts. */
export function labTargets(layout: {
  readonly instances: readonly { readonly id: string; readonly service: string; readonly url: string }[];
  readonly proxies: readonly {
    readonly id: string;
    readonly instance: string;
    readonly service: BackendName;
    readonly adminUrl: string;
  }[];
}): { agents: AdminTarget[]; proxies: AdminTarget[] } {
  return {
    agents: layout.instances.map((i) => ({ id: i.id, url: i.url, service: i.service, instance: i.id })),
    proxies: layout.proxies.map((p) => ({
      id: p.id,
      url: p.adminUrl,
      service: p.service,
      instance: p.instance,
    })),
  };
}
