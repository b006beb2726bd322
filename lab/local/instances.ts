/**
 * How each process of the local lab is started: the command, and the environment of the
 * contract every process reads (services/main.ts, services/fault-proxy/host-main.ts), filled in
 * from the lab's layout. Every backend instance has a fault proxy in front of it, as a
 * sidecar would be, and the gateways call the proxies: baseline and fault phases go through
 * the same hops. The proxies all run in one process (as Toxiproxy's do), each with its own
 * ports, leases and name: ten Node processes fewer on a machine of two cores.
 */

import path from 'node:path';
import type { HostedProxyEntry } from '../../services/fault-proxy/host.ts';
import type { TrustMode } from '../../services/lib/trust.ts';
import {
  FAULT_PROXY_ENV,
  FAULT_PROXY_SERVICE,
  GATEWAY_SERVICE,
  SERVICE_ENV,
  upstreamEnvName,
} from '../../services/names.ts';
import { BACKENDS, type BackendName } from '../../services/topology.ts';
import { entryPath, type LabBuild } from '../build/lab-build.ts';
import { type LabPki, tlsFor } from '../pki.ts';
import type { InstancePlan, LabLayout } from './layout.ts';
import { LOOPBACK } from './layout.ts';
import { REPO_ROOT } from './state.ts';
import type { InstanceSpec } from './supervisor.ts';

export type LabTrust = TrustMode;

/** The one process of every fault proxy: its id in the supervisor's events, and its log's name. */
export const FAULT_PROXY_HOST_ID = 'fault-proxies';

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

/** The entries of FAULT_PROXIES: every proxy of the layout, each in front of its instance. */
export function hostedProxies(layout: LabLayout): HostedProxyEntry[] {
  return layout.proxies.map((proxy) => {
    const fronted = layout.backends[proxy.service].find((b) => b.id === proxy.instance);
    if (!fronted) throw new Error(`${proxy.id} fronts ${proxy.instance}, which is not in the layout`);
    return {
      id: proxy.id,
      listenHost: LOOPBACK,
      listenPort: proxy.dataPort,
      adminPort: proxy.adminPort,
      upstream: `${LOOPBACK}:${fronted.port}`,
    };
  });
}

/** The environment of the one process of every fault proxy (services/fault-proxy/host.ts). */
export function proxyHostEnv(
  layout: LabLayout,
  config: LabConfig,
  secrets: LabSecrets,
  inherited: Env = process.env,
): Record<string, string | undefined> {
  return Object.assign(ownEnv(inherited), {
    [FAULT_PROXY_ENV.proxies]: JSON.stringify(hostedProxies(layout)),
    [SERVICE_ENV.adminToken]: secrets.adminToken,
    [SERVICE_ENV.logLevel]: config.logLevel,
  });
}

/**
 * V8's young generation grows to 16 MiB a semi-space under load and stays there: fourteen
 * processes kept some 300 MiB of it after a run. 2 MiB is plenty for a request's garbage.
 */
const NODE_FLAGS = ['--max-semi-space-size=2'] as const;

export function instanceSpecs(
  layout: LabLayout,
  config: LabConfig,
  secrets: LabSecrets,
  logDir: string,
  build: Pick<LabBuild, 'dir'>,
  inherited: Env = process.env,
): InstanceSpec[] {
  const entry = entryPath(build, 'service');
  const proxyHostEntry = entryPath(build, 'faultProxies');
  const instances = layout.instances.map(
    (plan): InstanceSpec => ({
      id: plan.id,
      service: plan.service,
      url: plan.url,
      command: process.execPath,
      args: [...NODE_FLAGS, entry, plan.service],
      cwd: REPO_ROOT,
      env: instanceEnv(plan, layout, config, secrets, inherited),
      logFile: path.join(logDir, `${plan.id}.log`),
    }),
  );
  const proxies: InstanceSpec = {
    id: FAULT_PROXY_HOST_ID,
    service: FAULT_PROXY_SERVICE,
    // Each proxy is a row of the status, ready when its admin API's /readyz says so (the data
    // port speaks raw TCP); a crash of the process takes them all down, and back up.
    members: layout.proxies.map((proxy) => ({
      id: proxy.id,
      service: FAULT_PROXY_SERVICE,
      url: proxy.adminUrl,
    })),
    command: process.execPath,
    args: [...NODE_FLAGS, proxyHostEntry],
    cwd: REPO_ROOT,
    env: proxyHostEnv(layout, config, secrets, inherited),
    logFile: path.join(logDir, `${FAULT_PROXY_HOST_ID}.log`),
  };
  return [...instances, proxies];
}
