/**
 * The lab on a kind cluster (or, with `--context`, on any cluster of the kubeconfig): what `up`
 * (kind-up.ts), `down` and `doctor --target kind` share — the image, the chart synthesized
 * in-process, the docker and kind steps, the wait for the namespace to go — and `down` and
 * `doctor` themselves.
 *
 * Nothing here is a half-applied fault: an interrupted `up` leaves some objects applied, which is
 * harmless, and `down --target kind` removes them.
 */
import path from 'node:path';
import { App } from 'cdk8s';
import { DEFAULT_LAB_IMAGE, LabChart } from '../../charts/lab-chart.ts';
import { TRUST_MODE_LABEL } from '../../charts/lab-pod.ts';
import { type LabSecretValues, placeholderPki } from '../../charts/lab-secret.ts';
import type { TrustMode } from '../../services/lib/trust.ts';
import { COMPONENTS, LAB_NAMESPACE, LABELS, PART_OF } from '../../services/names.ts';
import { CliError } from '../cli-error.ts';
import { formatDuration } from '../duration.ts';
import { type Io, say, table, warn } from '../io.ts';
import { type Cluster, KubeError, type KubeObject } from './cluster.ts';
import { type CommandRunner, commandLine } from './commands.ts';
import { failed, kindClusterExists, renderChecks, runDoctor } from './doctor.ts';
import { type KindConfig, kindConfigFromEnv } from './kind-config.ts';

export const REPO_ROOT = path.join(import.meta.dirname, '..', '..');
/** The tag the chart's default image names, and the one `up` builds. */
export const LAB_IMAGE = DEFAULT_LAB_IMAGE;
export { LAB_NAMESPACE };

/** How long `down` waits for the namespace's content to go. */
const DOWN_WAIT_MS = 120_000;
const DOWN_POLL_MS = 500;
export interface KindLabDeps {
  /** Runs docker and kind. */
  readonly run: CommandRunner;
  /** Connects to a kubeconfig context (lab/kube/client.ts's connectCluster, bound to the env). */
  readonly connect: (context: string) => Cluster;
  /** Where `docker build` runs. @default the repository */
  readonly repoRoot?: string;
  /** Where a relative CHAOS_LAB_KIND_CONFIG is taken from. @default process.cwd() */
  readonly cwd?: string;
}

/** The image the pods run: CHAOS_LAB_IMAGE, else the tag `up` builds and loads. */
export function labImage(env: Io['env']): { image: string; fromRegistry: boolean } {
  const given = env.CHAOS_LAB_IMAGE?.trim();
  return given ? { image: given, fromRegistry: true } : { image: LAB_IMAGE, fromRegistry: false };
}

/**
 * The chart, synthesized in this process as main.ts would (same secrets, same image), Namespace
 * first: every other object lives in it.
 */
export function labManifests(options: {
  secrets: LabSecretValues;
  image: string;
  grafana?: boolean;
  /** @default the chart's ('half') */
  trustMode?: TrustMode;
}): KubeObject[] {
  const app = new App();
  const chart = new LabChart(app, 'chaos-lab', {
    secrets: options.secrets,
    ...(options.image !== LAB_IMAGE ? { image: options.image } : {}),
    ...(options.grafana === false ? { grafana: false } : {}),
    ...(options.trustMode !== undefined ? { trustMode: options.trustMode } : {}),
  });
  const objects = chart.toJson() as KubeObject[];
  return [...objects.filter((o) => o.kind === 'Namespace'), ...objects.filter((o) => o.kind !== 'Namespace')];
}

/** Runs one docker/kind step with its output streamed; a failure shows its last lines. */
export async function runStep(
  io: Io,
  run: CommandRunner,
  command: string,
  args: readonly string[],
  options: { cwd: string; signal: AbortSignal | undefined },
): Promise<void> {
  const line = commandLine(command, args);
  say(io, `$ ${line}`);
  const began = Date.now();
  const result = await run(command, args, {
    cwd: options.cwd,
    ...(options.signal ? { signal: options.signal } : {}),
    onLine: (output) => say(io, `  ${output}`),
  });
  options.signal?.throwIfAborted();
  if (result.notFound) {
    throw new CliError(`${command} is not installed (no \`${command}\` on PATH)`, {
      hint: 'npx chaos-lab doctor --target kind says what to install',
    });
  }
  if (result.exitCode !== 0) {
    throw new CliError(`\`${line}\` failed with exit code ${result.exitCode}`, {
      details: result.tail.map((l) => `  ${l}`),
      hint: 'the last lines of its output are above',
    });
  }
  say(io, `  done in ${formatDuration(Date.now() - began)}`);
}

export interface KindDownOptions {
  readonly context?: string;
  /** Also `kind delete cluster --name chaos-lab`. */
  readonly deleteCluster?: boolean;
  readonly signal?: AbortSignal;
}

/**
 * Values for a synth whose objects are only deleted or counted: `down` needs their kinds and
 * names, the resources check their requests, and neither must generate (or need) the lab's
 * secrets or its PKI to learn them.
 */
export const PLACEHOLDER_SECRETS: LabSecretValues = {
  adminToken: 'placeholder-never-deployed',
  trustKey: 'placeholder-never-deployed',
  pki: placeholderPki('placeholder-never-deployed'),
};

/** `down --target kind`: 0 removed (or nothing to remove), 130 interrupted; failures throw CliError. */
export async function kindDown(io: Io, options: KindDownOptions, deps: KindLabDeps): Promise<number> {
  const onKind = options.context === undefined;
  const kind = onKind ? kindConfigFromEnv(io.env, deps.cwd) : undefined;
  const context = options.context ?? (kind as KindConfig).context;
  const { signal } = options;
  if (kind) {
    const found = await kindClusterExists(deps.run, signal, kind.name).catch(() => ({
      error: 'kind did not run',
    }));
    if ('error' in found || !found.exists) {
      say(
        io,
        'error' in found
          ? `no kind cluster to remove the lab from (\`kind get clusters\`: ${found.error}); nothing to remove`
          : `no kind cluster ${kind.name}; nothing to remove`,
      );
      return 0;
    }
  }
  const cluster = await reachCluster(
    deps,
    context,
    signal,
    kind
      ? `is the kind node running? \`docker start ${kind.name}-control-plane\`; or delete it: \`kind delete cluster --name ${kind.name}\``
      : 'check `kubectl --context <name> get --raw /version`',
  );
  try {
    const objects = labManifests({ secrets: PLACEHOLDER_SECRETS, image: labImage(io.env).image });
    let deleted = 0;
    const began = Date.now();
    await cluster.delete(objects, {
      ...(signal ? { signal } : {}),
      progress: (line) => {
        if (line.startsWith('deleted ')) {
          deleted++;
          say(io, `  ${line}`);
        }
      },
    });
    if (deleted === 0) {
      say(
        io,
        `the lab is not deployed on ${context} (none of its ${objects.length} objects exist); nothing to remove`,
      );
    } else {
      await waitNamespaceGone(io, cluster, signal);
      say(
        io,
        `removed the lab from ${context}: ${deleted} objects, namespace ${LAB_NAMESPACE} gone (${formatDuration(Date.now() - began)})`,
      );
    }
  } catch (err) {
    if (signal?.aborted) {
      warn(io, 'interrupted: some of the lab objects may remain; run `down --target kind` again');
      return 130;
    }
    if (err instanceof KubeError) throw new CliError(err.message);
    throw err;
  } finally {
    await cluster.close();
  }
  if (kind && options.deleteCluster) {
    await runStep(io, deps.run, 'kind', ['delete', 'cluster', '--name', kind.name], {
      cwd: deps.repoRoot ?? REPO_ROOT,
      signal,
    });
  }
  return 0;
}

/**
 * Waits for the lab's namespace to be gone, not merely Terminating: the namespace controller deletes
 * what it holds first, and until it is gone the API server refuses anything new in it (a re-`up`
 * would fail with "namespace is being terminated"). Progress shows the pods still terminating.
 */
export async function waitNamespaceGone(
  io: Io,
  cluster: Cluster,
  signal: AbortSignal | undefined,
): Promise<void> {
  const deadline = Date.now() + DOWN_WAIT_MS;
  let reported = -1;
  for (;;) {
    signal?.throwIfAborted();
    if ((await cluster.namespacePhase(LAB_NAMESPACE, signal)) === undefined) return;
    const pods = (await cluster.listPods(LAB_NAMESPACE, undefined, signal)).length;
    if (pods !== reported) {
      reported = pods;
      say(io, `waiting for namespace ${LAB_NAMESPACE} to go: ${pods} pods left`);
    }
    if (Date.now() >= deadline) {
      throw new CliError(
        `namespace ${LAB_NAMESPACE} is still Terminating after ${formatDuration(DOWN_WAIT_MS)} (${pods} pods left)`,
        {
          hint: `\`kubectl get ns ${LAB_NAMESPACE} -o yaml\` shows its conditions (a stuck finalizer?); \`kubectl -n ${LAB_NAMESPACE} get all\``,
        },
      );
    }
    await new Promise((resolve) => setTimeout(resolve, DOWN_POLL_MS));
  }
}

// ---------------------------------------------------------------------------------------------

/** `doctor --target kind`: 0 when nothing failed, 1 otherwise. */
export async function kindDoctor(
  io: Io,
  options: { readonly context?: string; readonly json?: boolean; readonly signal?: AbortSignal },
  deps: KindLabDeps,
): Promise<number> {
  const { image, fromRegistry } = labImage(io.env);
  const results = await runDoctor({
    ...(options.context !== undefined
      ? { context: options.context }
      : { kindConfig: kindConfigFromEnv(io.env, deps.cwd) }),
    namespace: LAB_NAMESPACE,
    image,
    imageFromRegistry: fromRegistry,
    manifests: labManifests({ secrets: PLACEHOLDER_SECRETS, image }),
    run: deps.run,
    connect: deps.connect,
    ...(options.signal ? { signal: options.signal } : {}),
  });
  if (options.json) say(io, JSON.stringify(results, null, 2));
  else for (const line of renderChecks(results)) say(io, line);
  return failed(results) ? 1 : 0;
}

// ---------------------------------------------------------------------------------------------

export interface KindStatusOptions {
  readonly context?: string;
  readonly json?: boolean;
  readonly signal?: AbortSignal;
}

/** The cluster of `context`, answering; else a CliError that says so, with `hint`. */
async function reachCluster(
  deps: KindLabDeps,
  context: string,
  signal: AbortSignal | undefined,
  hint: string,
): Promise<Cluster> {
  try {
    const cluster = deps.connect(context);
    await cluster.version(signal);
    return cluster;
  } catch (err) {
    throw new CliError(`cannot reach the cluster of context ${context}: ${(err as Error).message}`, { hint });
  }
}

/**
 * `status --target kind`: the trust mode the lab was deployed with (the label the chart puts on
 * every gateway and backend pod) and each of those pods, ready or not. 0 when the lab is
 * deployed; a CliError when it is not, or the cluster cannot be reached.
 */
export async function kindStatus(io: Io, options: KindStatusOptions, deps: KindLabDeps): Promise<number> {
  const context = options.context ?? kindConfigFromEnv(io.env, deps.cwd).context;
  const { signal } = options;
  const cluster = await reachCluster(
    deps,
    context,
    signal,
    'is it running? `npx chaos-lab doctor --target kind` says what is missing',
  );
  try {
    const components: readonly string[] = [COMPONENTS.gateway, COMPONENTS.backend];
    const pods = (await cluster.listPods(LAB_NAMESPACE, `${LABELS.partOf}=${PART_OF}`, signal)).filter(
      (p) => !p.terminating && components.includes(p.labels[LABELS.component] ?? ''),
    );
    if (pods.length === 0) {
      throw new CliError(
        `the lab is not deployed on ${context} (no gateway or backend pod in ${LAB_NAMESPACE})`,
        {
          hint: `npx chaos-lab up --target kind${options.context === undefined ? '' : ` --context ${context}`}`,
        },
      );
    }
    // More than one while a changed trust mode rolls out; none on pods deployed before the label.
    const modes = [...new Set(pods.flatMap((p) => p.labels[TRUST_MODE_LABEL] ?? []))].sort();
    const ready = pods.filter((p) => p.ready).length;
    const restarts = (p: (typeof pods)[number]) => Object.values(p.restarts).reduce((a, b) => a + b, 0);
    if (options.json) {
      const view = {
        context,
        namespace: LAB_NAMESPACE,
        trust: modes.length === 1 ? modes[0] : null,
        trustModes: modes,
        pods: pods.map((p) => ({
          name: p.name,
          component: p.labels[LABELS.component],
          trust: p.labels[TRUST_MODE_LABEL] ?? null,
          ready: p.ready,
          restarts: restarts(p),
        })),
      };
      say(io, JSON.stringify(view, null, 2));
      return 0;
    }
    const trust =
      modes.length === 1
        ? modes[0]
        : modes.length === 0
          ? 'unknown (its pods predate the trust-mode label; `up --target kind` again says)'
          : `${modes.join(' and ')} (a change of trust mode is rolling out)`;
    say(
      io,
      `lab on ${context} (namespace ${LAB_NAMESPACE}): trust ${trust}, ${ready}/${pods.length} pods ready`,
    );
    const rows = pods.map((p) => [
      p.name,
      p.labels[TRUST_MODE_LABEL] ?? '-',
      p.ready ? 'yes' : 'no',
      String(restarts(p)),
    ]);
    for (const line of table([['POD', 'TRUST', 'READY', 'RESTARTS'], ...rows])) say(io, `  ${line}`);
    return 0;
  } catch (err) {
    if (err instanceof KubeError) throw new CliError(err.message);
    throw err;
  } finally {
    await cluster.close();
  }
}

/** The real docker, kind and kubeconfig, as the environment says. */
export async function defaultKindDeps(env: Io['env']): Promise<KindLabDeps> {
  const { connectCluster } = await import('./client.ts');
  const { processRunner } = await import('./commands.ts');
  return {
    run: processRunner(env),
    connect: (context) => connectCluster({ context, env: env as NodeJS.ProcessEnv }),
  };
}

/**
 * Runs `fn` with an AbortSignal that SIGINT/SIGTERM/SIGHUP abort: Ctrl-C stops the child process
 * or the request in flight, and the command says what state it leaves.
 */
export async function withInterrupt<T>(
  io: Io,
  fn: (signal: AbortSignal) => Promise<T>,
  signals: Pick<NodeJS.Process, 'on' | 'off'> = process,
): Promise<T> {
  const abort = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    if (!abort.signal.aborted) warn(io, `${signal}: stopping…`);
    abort.abort(signal);
  };
  const names: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const name of names) signals.on(name, onSignal);
  try {
    return await fn(abort.signal);
  } finally {
    for (const name of names) signals.off(name, onSignal);
  }
}
