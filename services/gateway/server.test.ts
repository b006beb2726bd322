import { describe, expect, it } from 'vitest';
import { ConfigError } from '../lib/env.ts';
import { topology } from '../topology.ts';
import { ACCEPTORS_RESILIENT, gatewayConfigFromEnv, UPSTREAM_PROBE_DEFAULT_MS } from './server.ts';

const UPSTREAMS = {
  UPSTREAM_ACCOUNT: 'http://127.0.0.1:8081,http://127.0.0.1:9081',
  UPSTREAM_ARCHIVE: 'http://127.0.0.1:8082',
  UPSTREAM_VIP: 'http://127.0.0.1:8083',
  UPSTREAM_LIKE: 'http://127.0.0.1:8084',
  UPSTREAM_COIN: 'http://127.0.0.1:8085/',
};

describe('gatewayConfigFromEnv', () => {
  it('reads the environment contract, with defaults from the topology', () => {
    const config = gatewayConfigFromEnv({
      STRATEGY: 'resilient',
      INSTANCE_ID: 'gateway-resilient',
      ...UPSTREAMS,
    });
    expect(config).toMatchObject({
      strategy: 'resilient',
      instanceId: 'gateway-resilient',
      port: topology.gateway.port,
      host: '0.0.0.0',
      budgetMs: topology.gateway.defaultBudgetMs,
      maxConcurrency: 128,
      acceptors: ACCEPTORS_RESILIENT,
      probeIntervalMs: UPSTREAM_PROBE_DEFAULT_MS,
      trustMode: 'zero',
    });
    expect(ACCEPTORS_RESILIENT).toBeGreaterThan(1);
    // The naive and parallel gateways accept as Node does: the contrast the lessons draw.
    for (const strategy of ['naive', 'parallel']) {
      expect(gatewayConfigFromEnv({ STRATEGY: strategy, ...UPSTREAMS }).acceptors).toBe(1);
    }
    expect(config.upstreams.account).toEqual(['http://127.0.0.1:8081', 'http://127.0.0.1:9081']);
    expect(config.upstreams.coin).toEqual(['http://127.0.0.1:8085']);
    expect(config.adminToken).toBeUndefined();
  });

  it('reads every optional setting', () => {
    const config = gatewayConfigFromEnv({
      STRATEGY: 'naive',
      PORT: '0',
      HOST: '127.0.0.1',
      GATEWAY_BUDGET_MS: '500',
      GATEWAY_MAX_CONCURRENCY: '4',
      GATEWAY_ACCEPTORS: '3',
      UPSTREAM_PROBE_MS: '50',
      CHAOS_ADMIN_TOKEN: 'secret',
      TRUST_MODE: 'half',
      TRUST_KEY: 'k',
      ...UPSTREAMS,
    });
    expect(config).toMatchObject({
      port: 0,
      host: '127.0.0.1',
      budgetMs: 500,
      maxConcurrency: 4,
      acceptors: 3,
      probeIntervalMs: 50,
      adminToken: 'secret',
      trustMode: 'half',
      trustKey: 'k',
    });
  });

  it.each([
    [{ ...UPSTREAMS }, /STRATEGY is not set/],
    [
      { STRATEGY: 'fast', ...UPSTREAMS },
      /STRATEGY="fast" is invalid: expected one of naive, parallel, resilient/,
    ],
    [{ STRATEGY: 'naive', ...UPSTREAMS, UPSTREAM_VIP: '' }, /UPSTREAM_VIP is not set/],
    [
      { STRATEGY: 'naive', ...UPSTREAMS, UPSTREAM_LIKE: 'like:8084' },
      /UPSTREAM_LIKE: "like:8084" is invalid/,
    ],
    [{ STRATEGY: 'naive', ...UPSTREAMS, UPSTREAM_LIKE: 'nope' }, /UPSTREAM_LIKE: "nope" is not a URL/],
    [{ STRATEGY: 'naive', ...UPSTREAMS, UPSTREAM_COIN: 'http://h:1/coins' }, /without a path/],
    [{ STRATEGY: 'naive', ...UPSTREAMS, TRUST_MODE: 'half' }, /TRUST_KEY is not set/],
    [
      { STRATEGY: 'naive', ...UPSTREAMS, TRUST_MODE: 'full', TRUST_KEY: 'k' },
      /TLS_CA, TLS_CERT and TLS_KEY are not set: TRUST_MODE=full calls every backend over mutual TLS/,
    ],
    [{ STRATEGY: 'naive', ...UPSTREAMS, GATEWAY_BUDGET_MS: '0' }, /GATEWAY_BUDGET_MS="0" is invalid/],
    [{ STRATEGY: 'resilient', ...UPSTREAMS, GATEWAY_ACCEPTORS: '0' }, /GATEWAY_ACCEPTORS="0" is invalid/],
    [{ STRATEGY: 'resilient', ...UPSTREAMS, GATEWAY_ACCEPTORS: '65' }, /GATEWAY_ACCEPTORS="65" is invalid/],
  ])('refuses %j with a message naming the variable', (env, message) => {
    expect(() => gatewayConfigFromEnv(env)).toThrow(ConfigError);
    expect(() => gatewayConfigFromEnv(env)).toThrow(message);
  });
});
