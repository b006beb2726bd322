/**
 * The lab on Kubernetes, watched while a run uses it: the run must end at once, as failed, when the
 * lab is gone — its namespace deleted (`down --target kind`, `kubectl delete ns`) or being deleted,
 * or one of its Deployments removed — instead of measuring connection errors until its phases end.
 * Twice a second it reads the namespace and lists the Deployments (two small GETs, one look at a
 * time, each bounded). Pods coming and going are no concern of it: a restarted container or a
 * replaced pod is what experiments measure, and the Deployments stay through them.
 *
 * An API server that does not answer for `unreachableMs` counts as the lab gone too (the cluster
 * deleted or stopped: `kind delete cluster`, the node down). One that answers with an error (a
 * user who may not read Namespaces, a 500) does not: the look is repeated, and the Deployments
 * alone tell.
 */
import { formatDuration } from '../duration.ts';
import { type Cluster, KubeError } from './cluster.ts';

export interface LabWatchOptions {
  readonly cluster: Cluster;
  readonly namespace: string;
  /** The Deployments the lab is not the lab without: every backend's and every gateway's. */
  readonly deployments: readonly string[];
  /** @default 500 ms */
  readonly everyMs?: number;
  /** @default 10 s */
  readonly unreachableMs?: number;
}

/** Bound of one look: past it, the look counts as unanswered. */
const LOOK_TIMEOUT_MS = 2_000;

/** Calls `lost` once, saying what is gone, when the lab is; returns what stops the watching. */
export function watchLab(options: LabWatchOptions, lost: (why: string) => void): () => void {
  const everyMs = options.everyMs ?? 500;
  const unreachableMs = options.unreachableMs ?? 10_000;
  const stopping = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let silentSince: number | undefined;

  const end = (why: string) => {
    stop();
    lost(why);
  };
  const look = async () => {
    const signal = AbortSignal.any([stopping.signal, AbortSignal.timeout(LOOK_TIMEOUT_MS)]);
    try {
      const why = await goneWhy(options, signal);
      if (stopping.signal.aborted) return;
      silentSince = undefined;
      if (why) return end(why);
    } catch (err) {
      if (stopping.signal.aborted) return;
      if (answered(err)) silentSince = undefined;
      else {
        silentSince ??= Date.now();
        const silent = Date.now() - silentSince;
        if (silent >= unreachableMs) {
          return end(
            `the cluster's API server has not answered for ${formatDuration(silent)} (${(err as Error).message})`,
          );
        }
      }
    }
    if (stopping.signal.aborted) return;
    timer = setTimeout(look, everyMs);
    timer.unref();
  };
  const stop = () => {
    stopping.abort();
    clearTimeout(timer);
  };
  timer = setTimeout(look, everyMs);
  timer.unref();
  return stop;
}

/** What of the lab is gone, or undefined while it is all there. */
async function goneWhy(options: LabWatchOptions, signal: AbortSignal): Promise<string | undefined> {
  const { cluster, namespace } = options;
  const [phase, deployments] = await Promise.all([
    // A user who may not read Namespaces (a namespaced Role) still has the Deployments to tell.
    cluster.namespacePhase(namespace, signal).catch((err: unknown) => {
      if (answered(err)) return 'Active' as const;
      throw err;
    }),
    cluster.listDeployments(namespace, signal),
  ]);
  if (phase === undefined) return `its namespace ${namespace} is gone`;
  if (phase === 'Terminating') return `its namespace ${namespace} is being deleted`;
  const found = new Map(deployments.map((d) => [d.name, d]));
  const missing = options.deployments.filter((name) => !found.has(name));
  if (missing.length > 0) {
    return `${missing.length === 1 ? 'its Deployment' : 'its Deployments'} ${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} gone from namespace ${namespace}`;
  }
  const deleting = options.deployments.filter((name) => found.get(name)?.terminating);
  if (deleting.length > 0) {
    return `${deleting.length === 1 ? 'its Deployment' : 'its Deployments'} ${deleting.join(', ')} ${deleting.length === 1 ? 'is' : 'are'} being deleted from namespace ${namespace}`;
  }
  return undefined;
}

/** The API server answered (with an error status): it is there. */
function answered(err: unknown): boolean {
  return err instanceof KubeError && err.status !== undefined;
}
