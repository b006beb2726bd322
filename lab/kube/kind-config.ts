/**
 * The kind configuration the lab's cluster is created with: the repository's kind/cluster.yaml, or
 * the file CHAOS_LAB_KIND_CONFIG names (a cluster of one's own: another name, other host ports).
 * One reading for every command, so that `up`, `down`, `doctor` and `run --target kind` agree on
 * the cluster's name, its kubeconfig context and where on this machine its NodePorts answer.
 *
 * Light on purpose (no chart code): `run` reads KIND_CONFIG_ENV before it loads any target.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { CliError } from '../cli-error.ts';

/**
 * The kind configuration file the cluster was (or is to be) created with, when it is not the
 * repository's kind/cluster.yaml. A relative path is taken from the working directory.
 */
export const KIND_CONFIG_ENV = 'CHAOS_LAB_KIND_CONFIG';
export const DEFAULT_KIND_CONFIG = path.join(import.meta.dirname, '..', '..', 'kind', 'cluster.yaml');
/**
 * On a cluster that is not kind (`--context`), the host that reaches its NodePorts when its nodes'
 * InternalIPs do not (see gateway-urls.ts). Here, light, for the same reason as KIND_CONFIG_ENV.
 */
export const GATEWAY_HOST_ENV = 'CHAOS_LAB_GATEWAY_HOST';
/** The `name:` of kind/cluster.yaml, and the name `up` gives a cluster whose file has none. */
export const DEFAULT_KIND_CLUSTER = 'chaos-lab';

export interface KindConfig {
  /** Absolute path of the file. */
  readonly file: string;
  /** The cluster's name: the file's `name:`, else chaos-lab. */
  readonly name: string;
  /** The file has a `name:` (else `kind create cluster` must be given `--name`, or it names the cluster `kind`). */
  readonly named: boolean;
  /** The kubeconfig context kind writes for it: `kind-<name>`. */
  readonly context: string;
  /** Every extraPortMappings entry: NodePort → `http://127.0.0.1:<hostPort>`. */
  readonly hostUrls: ReadonlyMap<number, string>;
}

/** The file the environment names (relative to `cwd`), else the repository's kind/cluster.yaml. */
export function kindConfigFile(
  env: Readonly<Record<string, string | undefined>>,
  cwd = process.cwd(),
): string {
  const given = env[KIND_CONFIG_ENV]?.trim();
  return given ? path.resolve(cwd, given) : DEFAULT_KIND_CONFIG;
}

/** The kind configuration of the environment: see kindConfigFile. */
export function kindConfigFromEnv(
  env: Readonly<Record<string, string | undefined>>,
  cwd = process.cwd(),
): KindConfig {
  return readKindConfig(kindConfigFile(env, cwd));
}

/** Reads and parses a kind configuration; a file that cannot be read or is not one throws a CliError naming it. */
export function readKindConfig(file: string): KindConfig {
  let config: unknown;
  try {
    config = parseYaml(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new CliError(`cannot read the kind configuration ${file}: ${(err as Error).message}`, {
      hint: `${KIND_CONFIG_ENV} names the kind configuration the cluster is created with; unset it to use kind/cluster.yaml`,
    });
  }
  if (typeof config !== 'object' || config === null || (config as { kind?: unknown }).kind !== 'Cluster') {
    throw new CliError(
      `cannot read the kind configuration ${file}: it is not one (expected \`kind: Cluster\` and \`apiVersion: kind.x-k8s.io/v1alpha4\`)`,
    );
  }
  const { name, nodes } = config as { name?: unknown; nodes?: { extraPortMappings?: unknown[] }[] };
  const named = typeof name === 'string' && name.trim() !== '';
  const clusterName = named ? (name as string).trim() : DEFAULT_KIND_CLUSTER;
  const hostUrls = new Map<number, string>();
  for (const mapping of (Array.isArray(nodes) ? nodes : []).flatMap((n) => n?.extraPortMappings ?? []) as {
    containerPort?: number;
    hostPort?: number;
    listenAddress?: string;
  }[]) {
    if (!mapping?.containerPort || !mapping.hostPort) continue;
    const listen = mapping.listenAddress;
    const host = !listen || listen === '0.0.0.0' ? '127.0.0.1' : listen === '::' ? '[::1]' : listen;
    hostUrls.set(mapping.containerPort, `http://${host}:${mapping.hostPort}`);
  }
  return { file, name: clusterName, named, context: `kind-${clusterName}`, hostUrls };
}
