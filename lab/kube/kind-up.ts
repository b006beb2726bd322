/**
 * `chaos-lab up --target kind`: the lab deployed as a user on a laptop would by hand — doctor,
 * `docker build`, `kind load`, the chart synthesized in-process, server-side apply, the probes that
 * need the image, rollouts — with one progress line per step and, for each failure, what to do.
 */

import path from 'node:path';
import { gatewayNodePort } from '../../charts/gateway.ts';
import { GRAFANA_NODE_PORT, GRAFANA_PORT } from '../../charts/grafana.ts';
import { ADMIN_TOKEN_KEY, labSecretValues } from '../../charts/lab-secret.ts';
import type { TrustMode } from '../../services/lib/trust.ts';
import { PROMETHEUS } from '../../services/names.ts';
import { STRATEGIES, type Strategy } from '../../services/topology.ts';
import { CliError } from '../cli-error.ts';
import { formatDuration } from '../duration.ts';
import { type Io, say, warn } from '../io.ts';
import {
  ApplyConflictError,
  type Cluster,
  KubeError,
  type KubeObject,
  type RolloutState,
  RolloutTimeoutError,
} from './cluster.ts';
import { type CommandRunner, commandLine } from './commands.ts';
import {
  type CheckResult,
  checkContext,
  checkDocker,
  checkKind,
  checkResources,
  failed,
  kindClusterExists,
  probeLifetimeMs,
  renderChecks,
  runProbes,
} from './doctor.ts';
import { nodePortHost, nodePortUrls } from './gateway-urls.ts';
import { GATEWAY_HOST_ENV, type KindConfig, kindConfigFromEnv } from './kind-config.ts';
import {
  type KindLabDeps,
  LAB_IMAGE,
  LAB_NAMESPACE,
  labImage,
  labManifests,
  PLACEHOLDER_SECRETS,
  REPO_ROOT,
  runStep,
  waitNamespaceGone,
} from './kind-lab.ts';

/** The repository of LAB_IMAGE: `up` deploys `chaos-lab:<the image id's first 12 hex digits>`. */
const LAB_IMAGE_REPOSITORY = LAB_IMAGE.split(':')[0] as string;

export const DEFAULT_UP_TIMEOUT_MS = 5 * 60_000;
/** `up` prints its checks one step at a time: aligned as the doctor aligns its whole list. */
const CHECK_WIDTH = 'network-policy'.length;

export interface KindUpOptions {
  /** The lab's home: kind-secrets.json lives there, as for `npm run synth`. */
  readonly home: string;
  /** Another cluster than kind's (the image then comes from CHAOS_LAB_IMAGE). */
  readonly context?: string;
  /** `docker build` before `kind load`. @default true */
  readonly build?: boolean;
  /** For the rollouts. @default 5 min */
  readonly timeoutMs?: number;
  /** Take over fields another manager owns. */
  readonly forceConflicts?: boolean;
  /**
   * Trust between the gateways and the backends (`--trust`), the pods' TRUST_MODE: `full` is
   * mutual TLS with the lab's CA, kept with the other secrets in kind-secrets.json. @default 'half'
   */
  readonly trustMode?: TrustMode;
  /**
   * Grafana beside Prometheus. Off (`--no-grafana`) for a cluster that cannot get its image, as
   * the project's own test cluster, where nothing can be pulled. @default true
   */
  readonly grafana?: boolean;
  readonly signal?: AbortSignal;
}

/** `ready 7/13 deployments (waiting for account 1/2, coin 0/2, …)`. */
export function rolloutLine(states: readonly RolloutState[]): string {
  const done = states.filter((s) => s.done).length;
  const waiting = states.filter((s) => !s.done).map((s) => `${s.name} ${s.ready}/${s.desired}`);
  const shown = waiting.slice(0, 4).join(', ');
  return `ready ${done}/${states.length} deployments${
    waiting.length > 0 ? ` (waiting for ${shown}${waiting.length > 4 ? ', …' : ''})` : ''
  }`;
}

/** Step names for the message an interrupted `up` leaves. */
type Step = 'doctor' | 'cluster' | 'build' | 'load' | 'apply' | 'probes' | 'rollout';

const STATE_AFTER_ABORT: Readonly<Record<Step, string>> = {
  doctor: 'nothing was changed',
  cluster: 'the kind cluster may be half-created; `kind delete cluster --name <name>` removes it',
  build: 'nothing was applied; the image may be half-built (docker keeps its cache)',
  load: 'nothing was applied; the image may not be loaded into every node',
  apply: 'some of the lab objects are applied, not all',
  probes: 'the lab is applied; the doctor probe pod is deleted',
  rollout: 'the lab is applied and its pods are starting',
};

/** `up --target kind`: resolves with the exit code (0 up, 1 failed, 130 interrupted). */
export async function kindUp(io: Io, options: KindUpOptions, deps: KindLabDeps): Promise<number> {
  const repoRoot = deps.repoRoot ?? REPO_ROOT;
  const { signal } = options;
  const { image, fromRegistry } = labImage(io.env);
  const grafana = options.grafana ?? true;
  const onKind = options.context === undefined;
  // Read first: a kind configuration that cannot be read changes nothing.
  const kind = onKind ? kindConfigFromEnv(io.env, deps.cwd) : undefined;
  const context = options.context ?? (kind as KindConfig).context;
  const began = Date.now();
  // An object, so that the rollout callback's change of step is seen by the catch below.
  const at: { step: Step } = { step: 'doctor' };
  let cluster: Cluster | undefined;
  const report = (results: readonly CheckResult[]) => {
    for (const line of renderChecks(results, CHECK_WIDTH)) say(io, line);
    if (failed(results)) throw new CliError('the doctor found a problem (see ✗ above); nothing was changed');
  };
  try {
    say(io, `doctor (${kind ? `kind cluster ${kind.name}` : `context ${context}`})`);
    if (kind) {
      report([await checkDocker(deps.run, signal), await checkKind(deps.run, signal)]);
      at.step = 'cluster';
      await ensureKindCluster(io, deps, kind, repoRoot, signal);
    } else if (!fromRegistry) {
      throw new CliError(
        `--context ${context} is not the kind cluster: the image cannot be \`kind load\`ed into it`,
        {
          hint: 'push the image to a registry the cluster pulls from, then: CHAOS_LAB_IMAGE=<registry>/chaos-lab:<tag> npx chaos-lab up --target kind --context <name>',
        },
      );
    }
    at.step = 'doctor';
    const contextCheck = await checkContext(deps.connect, context, signal, kind?.name);
    report([contextCheck.result]);
    cluster = contextCheck.cluster as Cluster;
    // Before anything is built or applied: pods that cannot be scheduled would only time out.
    report([
      await checkResources(cluster, labManifests({ secrets: PLACEHOLDER_SECRETS, image, grafana }), {
        onKind: kind !== undefined,
        ...(signal ? { signal } : {}),
      }),
    ]);

    // What the pods run: CHAOS_LAB_IMAGE as it is, else the build's own tag (see tagById).
    let podImage = image;
    if (kind) {
      if (options.build ?? true) {
        at.step = 'build';
        await runStep(io, deps.run, 'docker', ['build', '-t', image, '.'], { cwd: repoRoot, signal });
      }
      at.step = 'load';
      if (!fromRegistry) podImage = await tagById(io, deps.run, image, { cwd: repoRoot, signal });
      // chaos-lab:dev goes along: the doctor's probe pod (`doctor --target kind`) names it.
      const images = podImage === image ? [image] : [podImage, image];
      await runStep(io, deps.run, 'kind', ['load', 'docker-image', ...images, '--name', kind.name], {
        cwd: repoRoot,
        signal,
      });
    }

    at.step = 'apply';
    // Right after a `down`, the namespace may still be going: nothing can be created in it until it is gone.
    if ((await cluster.namespacePhase(LAB_NAMESPACE, signal)) === 'Terminating') {
      say(io, `namespace ${LAB_NAMESPACE} is still being deleted (an earlier down): waiting for it to go`);
      await waitNamespaceGone(io, cluster, signal);
    }
    const secrets = await labSecretValues(io.env, path.join(options.home, 'kind-secrets.json'));
    const trustMode = options.trustMode ?? 'half';
    const objects = labManifests({ secrets, image: podImage, grafana, trustMode });
    say(
      io,
      `applying ${objects.length} objects (server-side apply, field manager chaos-lab; image ${podImage}; trust ${trustMode})`,
    );
    try {
      await cluster.apply(objects, {
        force: options.forceConflicts ?? false,
        ...(signal ? { signal } : {}),
        progress: (line) => say(io, `  ${line}`),
      });
    } catch (err) {
      if (err instanceof ApplyConflictError) {
        throw new CliError(err.message, {
          hint: 'npx chaos-lab up --target kind --force-conflicts (takes the fields over)',
        });
      }
      throw err;
    }

    at.step = 'probes';
    say(
      io,
      'probing the cluster with a short-lived pod of the lab image (tc netem, then NetworkPolicy once the lab is ready)',
    );
    let rolledOut = false;
    const rollout = async () => {
      at.step = 'rollout';
      await waitForLab(io, cluster as Cluster, objects, options);
      rolledOut = true;
    };
    const probes = await runProbes(cluster, {
      namespace: LAB_NAMESPACE,
      image: podImage,
      // The pod lives through the rollouts, which the NetworkPolicy probe waits for.
      lifetimeMs: probeLifetimeMs(options.timeoutMs ?? DEFAULT_UP_TIMEOUT_MS),
      networkPolicy: true,
      beforeNetworkPolicy: rollout,
      onResult: (result) => {
        for (const line of renderChecks([result], CHECK_WIDTH)) say(io, line);
      },
      ...(signal ? { signal } : {}),
    });
    // The probe pod could not run: the rollouts are still to be waited for.
    if (!rolledOut) await rollout();
    const nodePorts = kind
      ? undefined
      : await nodePortsOf(cluster, io.env[GATEWAY_HOST_ENV], context, signal);
    summary(io, {
      ...(kind ? { kind } : {}),
      ...(nodePorts ? { nodePorts } : {}),
      readyInMs: Date.now() - began,
      secretsFile: path.join(options.home, 'kind-secrets.json'),
      tokenFromEnv: Boolean(io.env[ADMIN_TOKEN_KEY]),
      probes,
      context,
      grafana,
      trustMode,
    });
    return 0;
  } catch (err) {
    if (signal?.aborted) {
      const state = STATE_AFTER_ABORT[at.step].replace('<name>', kind?.name ?? '<name>');
      warn(io, `interrupted during ${at.step}: ${state}.`);
      if (at.step === 'apply' || at.step === 'probes' || at.step === 'rollout') {
        warn(io, `\`npx chaos-lab down --target kind${onKind ? '' : ` --context ${context}`}\` removes it.`);
      }
      return 130;
    }
    if (err instanceof KubeError) throw new CliError(err.message);
    throw err;
  } finally {
    await cluster?.close();
  }
}

type NodePorts =
  | {
      readonly host: string;
      readonly overridden: boolean;
      readonly gateways: Readonly<Record<Strategy, string>>;
      readonly grafana: string;
    }
  | { readonly error: string };

/** Where a cluster's NodePorts answer from here (see gateway-urls.ts), or why that is not known. */
async function nodePortsOf(
  cluster: Cluster,
  override: string | undefined,
  context: string,
  signal: AbortSignal | undefined,
): Promise<NodePorts> {
  try {
    const host = nodePortHost(await cluster.listNodes(signal), override, context);
    return { host, overridden: Boolean(override?.trim()), ...nodePortUrls(host) };
  } catch (err) {
    if (signal?.aborted) throw err;
    return { error: (err as Error).message };
  }
}

/** Waits for every Deployment of the lab, a progress line per change. */
async function waitForLab(
  io: Io,
  cluster: Cluster,
  objects: readonly KubeObject[],
  options: KindUpOptions,
): Promise<void> {
  const deployments = objects
    .filter((o) => o.kind === 'Deployment' && o.metadata.namespace === LAB_NAMESPACE)
    .map((o) => o.metadata.name);
  const timeoutMs = options.timeoutMs ?? DEFAULT_UP_TIMEOUT_MS;
  try {
    await cluster.waitForRollouts(LAB_NAMESPACE, deployments, {
      timeoutMs,
      ...(options.signal ? { signal: options.signal } : {}),
      progress: (states) => say(io, rolloutLine(states)),
    });
  } catch (err) {
    if (err instanceof RolloutTimeoutError) {
      throw new CliError(`the lab did not become ready: ${err.message}`, {
        hint: `\`kubectl -n ${LAB_NAMESPACE} describe pod <pod>\` says more; \`npx chaos-lab down --target kind\` removes the lab`,
      });
    }
    throw err;
  }
}

/**
 * `kind create cluster --config <kind configuration>` when `kind get clusters` does not list its
 * cluster; `--name chaos-lab` too when the file names none (kind would call it `kind`).
 */
async function ensureKindCluster(
  io: Io,
  deps: KindLabDeps,
  kind: KindConfig,
  repoRoot: string,
  signal: AbortSignal | undefined,
): Promise<void> {
  const found = await kindClusterExists(deps.run, signal, kind.name);
  if ('error' in found) {
    throw new CliError(`\`kind get clusters\` failed: ${found.error}`, {
      hint: 'kind needs a running Docker: `docker info` should answer',
    });
  }
  const cluster = (status: 'ok' | 'skipped', detail: string) => {
    for (const line of renderChecks([{ name: 'cluster', status, detail }], CHECK_WIDTH)) say(io, line);
  };
  if (found.exists) {
    cluster('ok', `kind cluster ${kind.name} exists`);
    return;
  }
  cluster('skipped', `no kind cluster ${kind.name}: creating it (a minute or two)`);
  await runStep(
    io,
    deps.run,
    'kind',
    ['create', 'cluster', '--config', kind.file, ...(kind.named ? [] : ['--name', kind.name])],
    { cwd: repoRoot, signal },
  );
}

/**
 * Tags the image `source` names by its content, `chaos-lab:<the first 12 hex digits of its id>`,
 * and returns that tag. `chaos-lab:dev` never changes, so pods naming it would not be replaced
 * after a rebuild (the template is the same, and IfNotPresent keeps the image the node has): a tag
 * that changes exactly when the image does rolls a new build out and leaves an unchanged one be.
 */
async function tagById(
  io: Io,
  run: CommandRunner,
  source: string,
  options: { cwd: string; signal: AbortSignal | undefined },
): Promise<string> {
  const args = ['image', 'inspect', '--format', '{{.Id}}', source];
  const result = await run('docker', args, {
    cwd: options.cwd,
    ...(options.signal ? { signal: options.signal } : {}),
  });
  options.signal?.throwIfAborted();
  const id = /^sha256:([0-9a-f]{12})[0-9a-f]*$/.exec(result.stdout.trim())?.[1];
  if (result.exitCode !== 0 || !id) {
    throw new CliError(
      `\`${commandLine('docker', args)}\` ${
        result.exitCode !== 0
          ? `failed with exit code ${result.exitCode}`
          : `printed no image id (${result.stdout.trim() || 'nothing'})`
      }: the image ${source} to deploy cannot be told apart from an earlier build`,
      {
        details: result.tail.map((l) => `  ${l}`),
        hint: /No such image/i.test(result.stderr)
          ? `there is no ${source} yet: run \`npx chaos-lab up --target kind\` without --no-build, which builds it`
          : 'the last lines of its output are above',
      },
    );
  }
  const tag = `${LAB_IMAGE_REPOSITORY}:${id}`;
  await runStep(io, run, 'docker', ['tag', source, tag], options);
  return tag;
}

/** The Grafana line of the summary, or what stands in for it when Grafana was left out. */
function sayGrafana(io: Io, facts: { grafana: boolean; context: string }, line: string): void {
  say(
    io,
    facts.grafana
      ? line
      : `grafana: not deployed (--no-grafana); Prometheus: \`kubectl --context ${facts.context} -n ${LAB_NAMESPACE} port-forward svc/${PROMETHEUS.service} ${PROMETHEUS.port}\``,
  );
}

function summary(
  io: Io,
  facts: {
    /** Absent with --context. */
    kind?: KindConfig;
    /** With --context: where the NodePorts answer, or why that is not known. */
    nodePorts?: NodePorts;
    readyInMs: number;
    secretsFile: string;
    tokenFromEnv: boolean;
    probes: readonly CheckResult[];
    context: string;
    /** Grafana was deployed (not `--no-grafana`). */
    grafana: boolean;
    trustMode: TrustMode;
  },
): void {
  say(
    io,
    `chaos-lab is up on ${facts.context} in ${formatDuration(facts.readyInMs)} (trust ${facts.trustMode}${facts.trustMode === 'full' ? `: mutual TLS with the CA in ${facts.secretsFile}` : ''})`,
  );
  const password = facts.tokenFromEnv ? `$${ADMIN_TOKEN_KEY}` : `the adminToken in ${facts.secretsFile}`;
  const onKind = facts.kind !== undefined;
  if (facts.kind) {
    const urls = facts.kind.hostUrls;
    const file = path.relative(process.cwd(), facts.kind.file) || facts.kind.file;
    say(io, 'gateways');
    const width = Math.max(...STRATEGIES.map((s) => s.length));
    for (const strategy of STRATEGIES) {
      const url = urls.get(gatewayNodePort(strategy));
      say(
        io,
        `  ${strategy.padEnd(width)}  ${url ?? `(no host port maps NodePort ${gatewayNodePort(strategy)} in ${file})`}`,
      );
    }
    const grafana = urls.get(GRAFANA_NODE_PORT);
    sayGrafana(
      io,
      facts,
      grafana
        ? `grafana: ${grafana} (anonymous viewing; user admin, password: ${password})`
        : `grafana: no host port maps NodePort ${GRAFANA_NODE_PORT} in ${file}; \`kubectl --context ${facts.context} -n ${LAB_NAMESPACE} port-forward svc/grafana ${GRAFANA_PORT}\` reaches it (user admin, password: ${password})`,
    );
    const resilient = urls.get(gatewayNodePort('resilient'));
    if (resilient) say(io, `try: curl -s ${resilient}/api/video/42`);
  } else if (facts.nodePorts && 'gateways' in facts.nodePorts) {
    const { gateways, grafana, host, overridden } = facts.nodePorts;
    say(
      io,
      `gateways (NodePorts on ${overridden ? `${host}, from ${GATEWAY_HOST_ENV}` : `${host}, a Ready node's InternalIP; ${GATEWAY_HOST_ENV} names another host`})`,
    );
    const width = Math.max(...STRATEGIES.map((s) => s.length));
    for (const strategy of STRATEGIES) say(io, `  ${strategy.padEnd(width)}  ${gateways[strategy]}`);
    sayGrafana(io, facts, `grafana: ${grafana} (anonymous viewing; user admin, password: ${password})`);
    say(io, `try: curl -s ${gateways.resilient}/api/video/42`);
  } else {
    say(
      io,
      `gateways: NodePorts ${STRATEGIES.map(gatewayNodePort).join(', ')} on the cluster's nodes; grafana: NodePort ${GRAFANA_NODE_PORT} (user admin, password: ${password})${facts.nodePorts ? ` — ${facts.nodePorts.error}` : ''}`,
    );
  }
  const refused = facts.probes.filter((p) => p.status === 'fail' || p.status === 'warn');
  if (refused.some((p) => p.name === 'netem')) {
    say(
      io,
      'note: tc netem does not work here, so faults that ask for `injector: netem` will be refused; latency, loss and reset go through the fault proxy sidecar (see ! above)',
    );
  }
  const target = `--target kind${onKind ? '' : ` --context ${facts.context}`}`;
  say(io, `next: npx chaos-lab run tour ${target}`);
  say(io, `remove it: npx chaos-lab down ${target}${onKind ? ' [--delete-cluster]' : ''}`);
}
