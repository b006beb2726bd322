import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { FAULT_PROXY_SERVICE } from '../../services/names.ts';
import { createLabPki, type LabPki } from '../pki.ts';
import { instanceEnv, instanceSpecs, proxyEnv } from './instances.ts';
import { labLayout } from './layout.ts';
import { REPO_ROOT } from './state.ts';

const layout = labLayout(20_000);
let pki: LabPki;
let secrets: { adminToken: string; trustKey: string; pki: LabPki };
beforeAll(async () => {
  pki = await createLabPki();
  secrets = { adminToken: 'token-token-token-token', trustKey: 'key-key-key-key-key-key', pki };
});
const half = { trust: 'half', workerRecovery: true, logLevel: 'info' } as const;

describe('instance environment', () => {
  it('gives a backend the contract variables on loopback', () => {
    const plan = layout.backends.archive[1]!;
    const env = instanceEnv(plan, layout, half, secrets, {
      PATH: '/bin',
      STRATEGY: 'naive',
      TRUST_KEY: 'leak',
    });
    expect(env).toMatchObject({
      PATH: '/bin',
      SERVICE: 'archive',
      INSTANCE_ID: 'archive-2',
      HOST: '127.0.0.1',
      PORT: '20111',
      CHAOS_ADMIN_TOKEN: secrets.adminToken,
      TRUST_MODE: 'half',
      TRUST_KEY: secrets.trustKey,
      WORKER_RECOVERY: 'on',
      LOG_LEVEL: 'info',
    });
    expect(env.STRATEGY).toBeUndefined();
  });

  it('points every gateway at the fault proxies of all instances of each backend, never at an instance', () => {
    const env = instanceEnv(layout.gateways.resilient, layout, half, secrets, {});
    expect(env.STRATEGY).toBe('resilient');
    expect(env.UPSTREAM_ACCOUNT).toBe('http://127.0.0.1:20200,http://127.0.0.1:20201');
    expect(env.UPSTREAM_COIN).toBe('http://127.0.0.1:20240,http://127.0.0.1:20241');
    expect(env.PORT).toBe('20082');
  });

  it('gives each fault proxy its instance as upstream, its two ports and the admin token', () => {
    const proxy = layout.proxies.find((p) => p.id === 'archive-2-proxy')!;
    const env = proxyEnv(proxy, layout, half, secrets, {
      PATH: '/bin',
      UPSTREAM: '10.0.0.1:80',
      STRATEGY: 'naive',
      PORT: '1',
    });
    expect(env).toEqual({
      PATH: '/bin',
      INSTANCE_ID: 'archive-2-proxy',
      LISTEN_HOST: '127.0.0.1',
      LISTEN_PORT: '20211',
      ADMIN_PORT: '20311',
      UPSTREAM: '127.0.0.1:20111',
      CHAOS_ADMIN_TOKEN: secrets.adminToken,
      LOG_LEVEL: 'info',
    });
  });

  it('sends the lab’s key and certificates in every trust mode (a variant may switch), never the shell’s', () => {
    const env = instanceEnv(
      layout.backends.vip[0]!,
      layout,
      { trust: 'zero', workerRecovery: false, logLevel: 'warn' },
      secrets,
      { TRUST_KEY: 'from-the-shell', TLS_CERT: 'from-the-shell' },
    );
    expect(env).toMatchObject({
      TRUST_MODE: 'zero',
      TRUST_KEY: secrets.trustKey,
      TLS_CA: pki.ca,
      TLS_CERT: pki.backends.vip.cert,
      TLS_KEY: pki.backends.vip.key,
      WORKER_RECOVERY: 'off',
      LOG_LEVEL: 'warn',
    });
  });

  it('gives a backend its own certificate and every gateway the gateways’ client one', () => {
    const full = { ...half, trust: 'full' } as const;
    expect(instanceEnv(layout.backends.coin[1]!, layout, full, secrets, {})).toMatchObject({
      TRUST_MODE: 'full',
      TLS_CERT: pki.backends.coin.cert,
    });
    expect(instanceEnv(layout.gateways.naive, layout, full, secrets, {})).toMatchObject({
      TLS_CA: pki.ca,
      TLS_CERT: pki.gateway.cert,
      TLS_KEY: pki.gateway.key,
    });
  });

  it('runs services/main.ts under tsx from the repository root, logging to <logs>/<id>.log', () => {
    const specs = instanceSpecs(layout, half, secrets, '/tmp/logs', {});
    expect(specs).toHaveLength(23);
    expect(specs[0]).toMatchObject({
      id: 'account-1',
      command: process.execPath,
      args: ['--import', 'tsx', path.join(REPO_ROOT, 'services', 'main.ts'), 'account'],
      cwd: REPO_ROOT,
      logFile: '/tmp/logs/account-1.log',
    });
    expect(specs[12]?.args.at(-1)).toBe('gateway');
  });

  it('runs one fault proxy per backend instance, probed on its admin port', () => {
    const specs = instanceSpecs(layout, half, secrets, '/tmp/logs', {});
    const proxies = specs.filter((s) => s.service === FAULT_PROXY_SERVICE);
    expect(proxies.map((p) => p.id)).toEqual(layout.proxies.map((p) => p.id));
    expect(proxies).toHaveLength(10);
    expect(proxies[0]).toMatchObject({
      id: 'account-1-proxy',
      url: 'http://127.0.0.1:20300',
      command: process.execPath,
      args: ['--import', 'tsx', path.join(REPO_ROOT, 'services', 'fault-proxy', 'main.ts')],
      logFile: '/tmp/logs/account-1-proxy.log',
    });
  });
});
