/**
 * A lab's lifecycle behind one small interface: the command line picks a driver by `--target`
 * and knows nothing of how that lab comes up, goes down or says how it is — the local lab
 * (lab/local/driver.ts) or a Kubernetes cluster (lab/kube/driver.ts). A new target is its
 * folder with a driver.ts, and one line in LAB_DRIVERS.
 */

import path from 'node:path';
import type { TrustMode } from '../services/lib/trust.ts';
import type { Io } from './io.ts';
import { GATEWAY_HOST_ENV, KIND_CONFIG_ENV } from './kube/kind-config.ts';
import { labHome } from './local/state.ts';
import type { Target, TargetOptions } from './runner/target.ts';

/**
 * `up`'s flags as the command line parsed them. Each driver takes its own and refuses the others'
 * (a usage error, exit 2).
 */
export interface UpFlags {
  // The local lab's.
  readonly detach?: boolean;
  readonly portBase?: number;
  readonly trust: TrustMode;
  readonly recovery: 'on' | 'off';
  readonly readyTimeout?: number;
  readonly logLevel: string;
  readonly live: boolean;
  // A cluster's.
  readonly context?: string;
  readonly build: boolean;
  readonly timeout?: number;
  readonly forceConflicts?: boolean;
  readonly grafana: boolean;
}

/** `down`'s flags: `--context` and `--delete-cluster` are a cluster's. */
export interface DownFlags {
  readonly context?: string;
  readonly deleteCluster?: boolean;
}

export interface StatusFlags {
  readonly json?: boolean;
  /** kind: another cluster of the kubeconfig. */
  readonly context?: string;
}

export interface DoctorFlags {
  readonly context?: string;
  readonly json?: boolean;
}

/** What a driver needs for the runner's Target, from `run`'s flags and environment. */
export interface CreateTargetOptions extends TargetOptions {
  /** kind: the kubeconfig context. @default kind-chaos-lab */
  readonly context?: string;
  /** kind: the kind configuration the cluster was created with, for the gateways' host ports. @default kind/cluster.yaml */
  readonly kindConfig?: string;
  /** kind, with a --context that is not kind's: the host of the gateways' NodePorts (CHAOS_LAB_GATEWAY_HOST). */
  readonly gatewayHost?: string;
}

/**
 * One target's lab. Each command resolves with its exit code (0 done, 1 failed, 130 interrupted)
 * and throws a CliError for an expected failure, which the command line prints as one line and
 * a hint; the lab's home comes from `io.env` (CHAOS_LAB_HOME).
 */
export interface LabDriver {
  /** Starts or deploys the lab and waits until it is ready. */
  up(io: Io, flags: UpFlags): Promise<number>;
  /** Removes the lab and waits until it is gone; no lab is nothing to do (0). */
  down(io: Io, flags: DownFlags): Promise<number>;
  /** Prints the running lab: where its gateways answer, each instance and whether it is ready. */
  status(io: Io, flags: StatusFlags): Promise<number>;
  /** The runner's Target for this lab; constructing it starts or touches nothing. */
  target(options: CreateTargetOptions): Promise<Target>;
  /** Checks what this target needs before anything is deployed; absent when there is nothing to check. */
  doctor?(io: Io, flags: DoctorFlags): Promise<number>;
}

/**
 * Loaded on demand: the local lab never loads cdk8s or the Kubernetes client, and validating an
 * experiment loads no lab code at all.
 */
const LAB_DRIVERS = {
  local: async () => (await import('./local/driver.ts')).localDriver,
  kind: async () => (await import('./kube/driver.ts')).kindDriver,
} as const satisfies Readonly<Record<string, () => Promise<LabDriver>>>;

export type TargetName = keyof typeof LAB_DRIVERS;

/** Every `--target`, in the order the help lists them. */
export const TARGET_NAMES = Object.keys(LAB_DRIVERS) as readonly TargetName[];

export function labDriver(name: TargetName): Promise<LabDriver> {
  return LAB_DRIVERS[name]();
}

/**
 * What a target is made from on the command line: the lab home, and on kind the context and the
 * environment (CHAOS_LAB_KIND_CONFIG, relative to `cwd`; CHAOS_LAB_GATEWAY_HOST).
 */
export function targetOptions(io: Io, context: string | undefined, cwd = process.cwd()): CreateTargetOptions {
  const kindConfig = io.env[KIND_CONFIG_ENV];
  const gatewayHost = io.env[GATEWAY_HOST_ENV]?.trim();
  return {
    home: labHome(io.env),
    ...(context !== undefined ? { context } : {}),
    ...(kindConfig ? { kindConfig: path.resolve(cwd, kindConfig) } : {}),
    ...(gatewayHost ? { gatewayHost } : {}),
  };
}
