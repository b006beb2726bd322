import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Direction } from './emulation.ts';
import { PROXY_FAULT_KINDS, type ProxyFault } from './faults.ts';
import type { ProxyObserver } from './stats.ts';

/**
 * The proxy's Prometheus metrics. The `chaos_*` families have the fault agent's names and
 * labels, so a dashboard shows every injector the same way.
 */
export interface ProxyMetrics extends ProxyObserver {
  readonly applied: Counter<'kind'>;
  readonly renewed: Counter<'kind'>;
  readonly expired: Counter<'kind'>;
}

export function proxyMetrics(registry: Registry, faults: () => readonly ProxyFault[]): ProxyMetrics {
  const connections = new Counter({
    name: 'proxy_connections_total',
    help: 'Client connections accepted',
    registers: [registry],
  });
  const active = new Gauge({
    name: 'proxy_connections_active',
    help: 'Client connections open now',
    registers: [registry],
  });
  const upstreamFailures = new Counter({
    name: 'proxy_upstream_failures_total',
    help: 'Connections that failed on the upstream side (refused, reset, unreachable)',
    registers: [registry],
  });
  const bytes = new Counter({
    name: 'proxy_bytes_total',
    help: 'Bytes relayed: upstream = client to backend, downstream = backend to client',
    labelNames: ['direction'] as const,
    registers: [registry],
  });
  const addedDelay = new Histogram({
    name: 'proxy_added_delay_seconds',
    help: 'Delay added by faults: latency per chunk held (as released, either way), loss per lost chunk or SYN',
    labelNames: ['kind'] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.4, 0.8, 1, 2, 3, 5, 10, 30],
    registers: [registry],
  });
  const losses = new Counter({
    name: 'proxy_losses_total',
    help: 'Emulated losses: a chunk transmission (segment) or a connection attempt (syn)',
    labelNames: ['what'] as const,
    registers: [registry],
  });
  const resets = new Counter({
    name: 'proxy_resets_total',
    help: 'Connections reset by the reset fault',
    registers: [registry],
  });
  const kindCounter = (name: string, help: string) =>
    new Counter({ name, help, labelNames: ['kind'] as const, registers: [registry] });
  const applied = kindCounter('chaos_faults_applied_total', 'Faults applied (new leases)');
  const renewed = kindCounter('chaos_faults_renewed_total', 'Fault leases renewed');
  const expired = kindCounter(
    'chaos_faults_expired_total',
    'Fault leases that ran out without being renewed',
  );
  const injected = kindCounter('chaos_injected_total', 'Times a fault actually hit a chunk or a connection');
  // At zero from the start, so a dashboard sees every series before the first fault bites.
  for (const kind of PROXY_FAULT_KINDS) injected.inc({ kind }, 0);
  for (const kind of ['latency', 'loss'] as const) addedDelay.zero({ kind });
  for (const what of ['syn', 'segment'] as const) losses.inc({ what }, 0);
  for (const direction of ['upstream', 'downstream'] satisfies Direction[]) bytes.inc({ direction }, 0);
  new Gauge({
    name: 'chaos_faults_active',
    help: 'Fault leases in force',
    labelNames: ['kind'] as const,
    registers: [registry],
    collect() {
      const now = faults();
      for (const kind of PROXY_FAULT_KINDS) this.set({ kind }, now.filter((f) => f.kind === kind).length);
    },
  });

  // Counted for every chunk relayed: the label's child is looked up once, not per chunk.
  const bytesTo = {
    upstream: bytes.labels({ direction: 'upstream' }),
    downstream: bytes.labels({ direction: 'downstream' }),
  };

  return {
    applied,
    renewed,
    expired,
    accepted() {
      connections.inc();
      active.inc();
    },
    closed() {
      active.dec();
    },
    upstreamFailed() {
      upstreamFailures.inc();
    },
    bytes(direction, count) {
      bytesTo[direction].inc(count);
    },
    syn(result) {
      if (result.lost === 0) return;
      losses.inc({ what: 'syn' }, result.lost);
      injected.inc({ kind: 'loss' }, result.lost);
      addedDelay.observe({ kind: 'loss' }, result.penaltyMs / 1000);
    },
    segment(_direction, result) {
      if (result.lost === 0) return;
      losses.inc({ what: 'segment' }, result.lost);
      injected.inc({ kind: 'loss' }, result.lost);
      addedDelay.observe({ kind: 'loss' }, result.penaltyMs / 1000);
    },
    released(_direction, holdMs, latency) {
      if (latency !== 'delayed') return;
      injected.inc({ kind: 'latency' });
      addedDelay.observe({ kind: 'latency' }, holdMs / 1000);
    },
    resetRolled(reset) {
      if (!reset) return;
      resets.inc();
      injected.inc({ kind: 'reset' });
    },
  };
}
