import { beforeAll, describe, expect, it } from 'vitest';
import { faultProxiesFromEnv } from '../../services/fault-proxy/host.ts';
import { FAULT_PROXY_SERVICE } from '../../services/names.ts';
import { createLabPki, type LabPki } from '../pki.ts';
import { FAULT_PROXY_HOST_ID, instanceEnv, instanceSpecs, proxyHostEnv } from './instances.ts';
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

  it('gives the fault proxies’ host every proxy, each with its instance as upstream and its two ports', () => {
    const env = proxyHostEnv(layout, half, secrets, {
      PATH: '/bin',
      UPSTREAM: '10.0.0.1:80',
      INSTANCE_ID: 'leak',
      STRATEGY: 'naive',
      PORT: '1',
    });
    expect(Object.keys(env).sort()).toEqual(['CHAOS_ADMIN_TOKEN', 'FAULT_PROXIES', 'LOG_LEVEL', 'PATH']);
    expect(env).toMatchObject({ PATH: '/bin', CHAOS_ADMIN_TOKEN: secrets.adminToken, LOG_LEVEL: 'info' });
    // What the host reads back is what each proxy was given when it had a process of its own.
    const proxies = faultProxiesFromEnv(env);
    expect(proxies.map((p) => p.instanceId)).toEqual(layout.proxies.map((p) => p.id));
    expect(proxies.find((p) => p.instanceId === 'archive-2-proxy')).toEqual({
      instanceId: 'archive-2-proxy',
      listenHost: '127.0.0.1',
      listenPort: 20211,
      adminPort: 20311,
      upstream: { host: '127.0.0.1', port: 20111 },
      adminToken: secrets.adminToken,
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

  it('runs the compiled services/main.js of the build from the repository root, logging to <logs>/<id>.log', () => {
    const specs = instanceSpecs(layout, half, secrets, '/tmp/logs', { dir: '/tmp/build' }, {});
    expect(specs).toHaveLength(14);
    expect(specs[0]).toMatchObject({
      id: 'account-1',
      command: process.execPath,
      args: ['--max-semi-space-size=2', '/tmp/build/services/main.js', 'account'],
      cwd: REPO_ROOT,
      logFile: '/tmp/logs/account-1.log',
    });
    expect(specs[12]?.args.at(-1)).toBe('gateway');
  });

  it('runs every fault proxy in one process, each a member probed on its own admin port', () => {
    const specs = instanceSpecs(layout, half, secrets, '/tmp/logs', { dir: '/tmp/build' }, {});
    const hosts = specs.filter((s) => s.service === FAULT_PROXY_SERVICE);
    expect(hosts).toHaveLength(1);
    const host = hosts[0]!;
    expect(host).toMatchObject({
      id: FAULT_PROXY_HOST_ID,
      command: process.execPath,
      args: ['--max-semi-space-size=2', '/tmp/build/services/fault-proxy/host-main.js'],
      cwd: REPO_ROOT,
      logFile: '/tmp/logs/fault-proxies.log',
    });
    expect(host.members?.map((m) => m.id)).toEqual(layout.proxies.map((p) => p.id));
    expect(host.members?.[0]).toEqual({
      id: 'account-1-proxy',
      service: FAULT_PROXY_SERVICE,
      url: 'http://127.0.0.1:20300',
    });
  });
});
