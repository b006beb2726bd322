/**
 * How each instance of the local lab is started: the command, and the environment of the
 * contract every process reads (services/main.ts), filled in from the lab's layout.
 */

import path from 'node:path';
import { BACKENDS } from '../services/topology.ts';
import type { InstancePlan, LabLayout } from './layout.ts';
import { LOOPBACK } from './layout.ts';
import { REPO_ROOT } from './state.ts';
import type { InstanceSpec } from './supervisor.ts';

export type LabTrust = 'zero' | 'half';

export interface LabConfig {
  readonly trust: LabTrust;
  /** The default of WORKER_RECOVERY for every instance. */
  readonly workerRecovery: boolean;
  readonly logLevel: string;
}

export interface LabSecrets {
  readonly adminToken: string;
  readonly trustKey: string;
}

type Env = Readonly<Record<string, string | undefined>>;

const upstreamVar = (backend: string) => `UPSTREAM_${backend.toUpperCase()}`;

/**
 * Variables the lab decides for every instance: one left in the caller's environment (a
 * STRATEGY, a TRUST_KEY under zero trust) must not leak into an instance that was not given
 * it. Tuning knobs (GATEWAY_BUDGET_MS, UPSTREAM_PROBE_MS…) do pass through.
 */
const OWNED_VARS = [
  'SERVICE',
  'INSTANCE_ID',
  'PORT',
  'HOST',
  'LOG_LEVEL',
  'CHAOS_ADMIN_TOKEN',
  'TRUST_MODE',
  'TRUST_KEY',
  'WORKER_RECOVERY',
  'STRATEGY',
  ...BACKENDS.map(upstreamVar),
];

export function instanceEnv(
  plan: InstancePlan,
  layout: LabLayout,
  config: LabConfig,
  secrets: LabSecrets,
  inherited: Env = process.env,
): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = { ...inherited };
  for (const name of OWNED_VARS) delete env[name];
  Object.assign(env, {
    SERVICE: plan.service,
    INSTANCE_ID: plan.id,
    HOST: LOOPBACK,
    PORT: String(plan.port),
    LOG_LEVEL: config.logLevel,
    CHAOS_ADMIN_TOKEN: secrets.adminToken,
    TRUST_MODE: config.trust,
    WORKER_RECOVERY: config.workerRecovery ? 'on' : 'off',
  });
  if (config.trust !== 'zero') env.TRUST_KEY = secrets.trustKey;
  if (plan.service === 'gateway') {
    env.STRATEGY = plan.strategy;
    for (const backend of BACKENDS) {
      env[upstreamVar(backend)] = layout.backends[backend].map((b) => b.url).join(',');
    }
  }
  return env;
}

export function instanceSpecs(
  layout: LabLayout,
  config: LabConfig,
  secrets: LabSecrets,
  logDir: string,
  inherited: Env = process.env,
): InstanceSpec[] {
  const entry = path.join(REPO_ROOT, 'services', 'main.ts');
  return layout.instances.map((plan) => ({
    id: plan.id,
    service: plan.service,
    url: plan.url,
    command: process.execPath,
    args: ['--import', 'tsx', entry, plan.service],
    cwd: REPO_ROOT,
    env: instanceEnv(plan, layout, config, secrets, inherited),
    logFile: path.join(logDir, `${plan.id}.log`),
  }));
}
