import { hostname } from 'node:os';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../lib/env.ts';
import { topology } from '../topology.ts';
import { backendConfigFromEnv } from './server.ts';

describe('backendConfigFromEnv', () => {
  it('fills the defaults from the topology and the host', () => {
    expect(backendConfigFromEnv('coin', {})).toEqual({
      name: 'coin',
      instanceId: hostname(),
      port: topology.backends.coin.port,
      host: '0.0.0.0',
      trustMode: 'zero',
      workerRecovery: true,
    });
  });

  it('reads every variable', () => {
    const config = backendConfigFromEnv('archive', {
      INSTANCE_ID: 'archive-2',
      PORT: '0',
      HOST: '127.0.0.1',
      CHAOS_ADMIN_TOKEN: 'tok',
      TRUST_MODE: 'half',
      TRUST_KEY: 'key',
      WORKER_RECOVERY: 'off',
    });
    expect(config).toEqual({
      name: 'archive',
      instanceId: 'archive-2',
      port: 0,
      host: '127.0.0.1',
      adminToken: 'tok',
      trustMode: 'half',
      trustKey: 'key',
      workerRecovery: false,
    });
  });

  it('treats empty values as unset', () => {
    expect(backendConfigFromEnv('vip', { CHAOS_ADMIN_TOKEN: '', HOST: '' })).not.toHaveProperty('adminToken');
    expect(backendConfigFromEnv('vip', { HOST: '' }).host).toBe('0.0.0.0');
  });

  const bad: [string, Record<string, string>, RegExp][] = [
    ['half trust without a key', { TRUST_MODE: 'half' }, /^TRUST_KEY is not set: TRUST_MODE=half needs/],
    [
      'full trust without the certificates',
      { TRUST_MODE: 'full', TRUST_KEY: 'k' },
      /TRUST_MODE=full needs the lab's certificates: TLS_CA, TLS_CERT and TLS_KEY/,
    ],
    ['half a certificate', { TLS_CA: '-----BEGIN CERTIFICATE-----' }, /TLS_CERT and TLS_KEY not set/],
    [
      'an unknown trust mode',
      { TRUST_MODE: 'partial' },
      /^TRUST_MODE="partial" is invalid: expected one of zero, half, full/,
    ],
    ['a port out of range', { PORT: '70000' }, /^PORT="70000" is invalid/],
    ['a port that is not a number', { PORT: 'http' }, /^PORT="http" is invalid/],
    [
      'a recovery that is not on/off',
      { WORKER_RECOVERY: 'maybe' },
      /^WORKER_RECOVERY="maybe" is invalid: expected on or off/,
    ],
  ];
  it.each(bad)('refuses %s with a ConfigError naming the variable', (_what, env, message) => {
    expect(() => backendConfigFromEnv('like', env)).toThrow(ConfigError);
    expect(() => backendConfigFromEnv('like', env)).toThrow(message);
  });
});
