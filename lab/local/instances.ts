/**
 * How each process of the local lab is started: the command, and the environment of the
 * contract every process reads (services/main.ts, services/fault-proxy/main.ts), filled in
 * from the lab's layout. Every backend instance has a fault proxy in front of it, as a
 * sidecar would be, and the gateways call the proxies: baseline and fault phases go through
 * the same hops.
 */

import path from 'node:path';
import type { TrustMode } from '../../services/lib/trust.ts';
import {
  FAULT_PROXY_ENV,
  FAULT_PROXY_SERVICE,
  GATEWAY_SERVICE,
  SERVICE_ENV,
  upstreamEnvName,
} from '../../services/names.ts';
import { BACKENDS, type BackendName } from '../../services/topology.ts';
import { type LabPki, tlsFor } from '../pki.ts';
import type { InstancePlan, LabLayout, ProxyPlan } from './layout.ts';
import { LOOPBACK } from './layout.ts';
import { REPO_ROOT } from './state.ts';
import type { InstanceSpec } from './supervisor.ts';

export type LabTrust = TrustMode;

export interface LabConfig {
  readonly trust: LabTrust;
  /** The default of WORKER_RECOVERY for every instance. */
  readonly workerRecovery: boolean;
  readonly logLevel: string;
}

export interface LabSecrets {
  readonly adminToken: string;
  readonly trustKey: string;
  /** The lab's CA and certificates (full trust). */
  readonly pki: LabPki;
}

type Env = Readonly<Record<string, string | undefined>>;

/**
 * Variables the lab decides for every instance: one left in the caller's environment (a
 * STRATEGY, a TRUST_KEY under zero trust) must not leak into an instance that was not given
 * it. Tuning knobs (GATEWAY_BUDGET_MS, UPSTREAM_PROBE_MS…) do pass through.
 */
const OWNED_VARS = [
  SERVICE_ENV.service,
  SERVICE_ENV.instanceId,
  SERVICE_ENV.port,
  SERVICE_ENV.host,
  SERVICE_ENV.logLevel,
  SERVICE_ENV.adminToken,
  SERVICE_ENV.trustMode,
  SERVICE_ENV.trustKey,
  SERVICE_ENV.tlsCa,
  SERVICE_ENV.tlsCert,
  SERVICE_ENV.tlsKey,
  SERVICE_ENV.workerRecovery,
  SERVICE_ENV.strategy,
  ...BACKENDS.map(upstreamEnvName),
  ...Object.values(FAULT_PROXY_ENV),
];

function ownEnv(inherited: Env): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = { ...inherited };
  for (const name of OWNED_VARS) delete env[name];
  return env;
}

export function instanceEnv(
  plan: InstancePlan,
  layout: LabLayout,
  config: LabConfig,
  secrets: LabSecrets,
  inherited: Env = process.env,
): Record<string, string | undefined> {
  const env = ownEnv(inherited);
  Object.assign(env, {
    [SERVICE_ENV.service]: plan.service,
    [SERVICE_ENV.instanceId]: plan.id,
    [SERVICE_ENV.host]: LOOPBACK,
    [SERVICE_ENV.port]: String(plan.port),
    [SERVICE_ENV.logLevel]: config.logLevel,
    [SERVICE_ENV.adminToken]: secrets.adminToken,
    [SERVICE_ENV.trustMode]: config.trust,
    [SERVICE_ENV.workerRecovery]: config.workerRecovery ? 'on' : 'off',
  });
  // The key and the certificates in every mode: a variant may switch the running lab to
  // another trust mode for a while (a settings lease), and every process must then follow.
  env[SERVICE_ENV.trustKey] = secrets.trustKey;
  const tls = tlsFor(
    secrets.pki,
    plan.service === GATEWAY_SERVICE ? 'gateway' : (plan.service as BackendName),
  );
  env[SERVICE_ENV.tlsCa] = tls.ca;
  env[SERVICE_ENV.tlsCert] = tls.cert;
  env[SERVICE_ENV.tlsKey] = tls.key;
  if (plan.service === GATEWAY_SERVICE) {
    env[SERVICE_ENV.strategy] = plan.strategy;
    for (const backend of BACKENDS) {
      // The proxies, never the instances themselves: a network fault must be on the path.
      env[upstreamEnvName(backend)] = layout.proxies
        .filter((p) => p.service === backend)
        .map((p) => p.dataUrl)
        .join(',');
    }
  }
  return env;
}

export function proxyEnv(
  proxy: ProxyPlan,
  layout: LabLayout,
  config: LabConfig,
  secrets: LabSecrets,
  inherited: Env = process.env,
): Record<string, string | undefined> {
  const fronted = layout.backends[proxy.service].find((b) => b.id === proxy.instance);
  if (!fronted) throw new Error(`${proxy.id} fronts ${proxy.instance}, which is not in the layout`);
  return Object.assign(ownEnv(inherited), {
    [SERVICE_ENV.instanceId]: proxy.id,
    [FAULT_PROXY_ENV.listenHost]: LOOPBACK,
    [FAULT_PROXY_ENV.listenPort]: String(proxy.dataPort),
    [FAULT_PROXY_ENV.adminPort]: String(proxy.adminPort),
    [FAULT_PROXY_ENV.upstream]: `${LOOPBACK}:${fronted.port}`,
    [SERVICE_ENV.adminToken]: secrets.adminToken,
    [SERVICE_ENV.logLevel]: config.logLevel,
  });
}

export function instanceSpecs(
  layout: LabLayout,
  config: LabConfig,
  secrets: LabSecrets,
  logDir: string,
  inherited: Env = process.env,
): InstanceSpec[] {
  const entry = path.join(REPO_ROOT, 'services', 'main.ts');
  const proxyEntry = path.join(REPO_ROOT, 'services', 'fault-proxy', 'main.ts');
  const instances = layout.instances.map(
    (plan): InstanceSpec => ({
      id: plan.id,
      service: plan.service,
      url: plan.url,
      command: process.execPath,
      args: ['--import', 'tsx', entry, plan.service],
      cwd: REPO_ROOT,
      env: instanceEnv(plan, layout, config, secrets, inherited),
      logFile: path.join(logDir, `${plan.id}.log`),
    }),
  );
  const proxies = layout.proxies.map(
    (proxy): InstanceSpec => ({
      id: proxy.id,
      service: FAULT_PROXY_SERVICE,
      // Readiness is the admin API's /readyz: the data port speaks raw TCP.
      url: proxy.adminUrl,
      command: process.execPath,
      args: ['--import', 'tsx', proxyEntry],
      cwd: REPO_ROOT,
      env: proxyEnv(proxy, layout, config, secrets, inherited),
      logFile: path.join(logDir, `${proxy.id}.log`),
    }),
  );
  return [...instances, ...proxies];
}
