import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { BACKENDS, type BackendName } from '../topology.ts';
import { createGatewayMetrics, eventsCountedIn, startResilienceCountersAtZero } from './metrics.ts';
import { metric } from './test-fleet.ts';

function setup() {
  const registry = new Registry();
  return { registry, metrics: createGatewayMetrics(registry) };
}

describe('eventsCountedIn', () => {
  it('counts each policy event in the series the dashboards read', async () => {
    const { registry, metrics } = setup();
    const events = eventsCountedIn(metrics);
    events.emit({ type: 'call-finished', dependency: 'like', outcome: 'timeout', seconds: 0.3 });
    events.emit({ type: 'cache-hit', dependency: 'coin', seconds: 0.0001 });
    events.emit({ type: 'cache-stale-served', dependency: 'like', ageMs: 5_000 });
    events.emit({ type: 'breaker-rejected', dependency: 'vip' });
    events.emit({ type: 'retry', dependency: 'coin', attempt: 2 });
    events.emit({ type: 'retry-budget-exhausted', dependency: 'account' });
    events.emit({ type: 'bulkhead-rejected', limit: 128 });

    const duration = (dependency: string, outcome: string) =>
      metric(registry, 'gateway_dependency_duration_seconds_count', { dependency, outcome });
    expect(await duration('like', 'timeout')).toBe(1);
    const { values } = await metrics.dependencyDuration.get();
    const sum = values.find((v) => v.metricName?.endsWith('_sum') && v.labels.dependency === 'like');
    expect(sum?.value).toBe(0.3);
    expect(await duration('coin', 'cached')).toBe(1);
    expect(await metric(registry, 'gateway_cache_hits_total', { dependency: 'coin' })).toBe(1);
    expect(await metric(registry, 'gateway_cache_stale_serves_total', { dependency: 'like' })).toBe(1);
    expect(await metric(registry, 'gateway_breaker_drops_total', { dependency: 'vip' })).toBe(1);
    expect(await metric(registry, 'gateway_retries_total', { dependency: 'coin' })).toBe(1);
    expect(await metric(registry, 'gateway_retry_budget_exhausted_total', { dependency: 'account' })).toBe(1);
    expect(await metric(registry, 'gateway_shed_total')).toBe(1);
  });

  it('counts nothing on a bus it was not given', async () => {
    const { registry, metrics } = setup();
    eventsCountedIn(metrics);
    eventsCountedIn(createGatewayMetrics(new Registry())).emit({ type: 'bulkhead-rejected', limit: 1 });
    expect(await metric(registry, 'gateway_shed_total')).toBe(0);
  });
});

describe('sampleBreakers', () => {
  it('reads the breakers when the gauges are read, not before', async () => {
    const { registry, metrics } = setup();
    let like = 0;
    metrics.sampleBreakers(
      () =>
        Object.fromEntries(BACKENDS.map((d) => [d, { dropProbability: d === 'like' ? like : 0 }])) as Record<
          BackendName,
          { dropProbability: number }
        >,
    );
    like = 0.7;
    expect(await metric(registry, 'gateway_breaker_drop_probability', { dependency: 'like' })).toBe(0.7);
    expect(await metric(registry, 'gateway_breaker_state', { dependency: 'like' })).toBe(1);
    expect(await metric(registry, 'gateway_breaker_state', { dependency: 'coin' })).toBe(0);
    like = 0;
    expect(await metric(registry, 'gateway_breaker_state', { dependency: 'like' })).toBe(0);
  });
});

describe('startResilienceCountersAtZero', () => {
  it('shows every resilience counter of every dependency at zero, which no other strategy has', async () => {
    const { registry, metrics } = setup();
    const names = [
      'gateway_cache_hits_total',
      'gateway_cache_stale_serves_total',
      'gateway_retries_total',
      'gateway_retry_budget_exhausted_total',
      'gateway_breaker_drops_total',
    ];
    const lines = (text: string) =>
      names.flatMap((n) => BACKENDS.map((d) => `${n}{dependency="${d}"} 0`)).filter((l) => text.includes(l));
    expect(lines(await registry.metrics())).toEqual([]);
    startResilienceCountersAtZero(metrics);
    expect(lines(await registry.metrics())).toHaveLength(names.length * BACKENDS.length);
  });
});
