/**
 * Load from inside the cluster: a Job running k6 with the lab's video-page script against the
 * gateways' Services, for a cluster whose NodePorts a laptop cannot reach (any `--context`
 * cluster) or when the load should not cross the host. Its own chart (`npm run synth` writes
 * dist/k6-job.k8s.yaml), so that applying the lab never starts load.
 *
 *   kubectl apply -f dist/k6-job.k8s.yaml
 *   kubectl -n chaos-lab logs -f job/k6-video-page
 *   kubectl -n chaos-lab delete job k6-video-page   # before applying a changed one: a Job's pod template is immutable
 *
 * The gateways' NetworkPolicies (`gateway-<strategy>-from-anywhere`) let any pod in on the gateway
 * port, so the k6 pod needs no policy of its own; egress is open in the lab's namespace.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { App, Chart, type ChartProps, Duration, Size } from 'cdk8s';
import { ConfigMap, Cpu, EnvValue, Job, Volume } from 'cdk8s-plus-27';
import { Construct } from 'constructs';
import { COMPONENTS, LABELS, PART_OF } from '../services/names.ts';
import { STRATEGIES, topology } from '../services/topology.ts';
import { kubernetesCapability, LAB_IMAGE_PULL_POLICY } from './cdk8s-plus-workarounds.ts';
import { gatewayName } from './gateway.ts';

/**
 * k6 v2, the release tools/k6/go.mod pins (go.k6.io/k6/v2 v2.2.0): the image of the same version
 * runs `.ts` scripts natively. Not pulled on the machines the project is built on (no registry
 * there); `docker pull grafana/k6:2.2.0` checks it.
 */
export const K6_IMAGE = 'grafana/k6:2.2.0';
/** The image's own user (`k6`). */
const K6_USER = 12_345;
/** The scripts' folder, mounted read-only: the entry script and every module it imports. */
const SCRIPTS_DIR = '/scripts';
/** k6 writes the summary file here: an emptyDir, the root filesystem being read-only. */
const WRITABLE_TMP = '/tmp';
const LOAD_SCRIPTS = path.join(import.meta.dirname, '..', 'experiments', 'load');

export interface K6Gateway {
  /** The `gateway` tag of every sample: `naive`, `parallel`, `resilient`. */
  readonly name: string;
  readonly url: string;
}

export interface K6JobProps {
  readonly namespace: string;
  /**
   * The gateways to load, each at `rate`.
   * @default the lab's three gateway Services, in-cluster (`http://gateway-naive:8080`, …)
   */
  readonly gateways?: readonly K6Gateway[];
  /**
   * Requests per second to each gateway (the script's RATE).
   * @default 30
   */
  readonly rate?: number;
  /**
   * How long, with a unit (the script's DURATION).
   * @default '30s'
   */
  readonly duration?: string;
  /**
   * The entry script in experiments/load/.
   * @default 'video-page.ts'
   */
  readonly script?: string;
  /**
   * Job name.
   * @default 'k6-video-page'
   */
  readonly name?: string;
  /**
   * @default K6_IMAGE
   */
  readonly image?: string;
  /**
   * A finished Job (and its pod, with its logs) is deleted after this long.
   * @default 10 minutes
   */
  readonly ttlAfterFinished?: Duration;
  /**
   * Where the scripts are read from when the chart is built.
   * @default the repository's experiments/load/
   */
  readonly scriptsDir?: string;
}

/**
 * The gateways' in-cluster URLs. The Services are named as charts/gateway.ts names them
 * (`gateway-<strategy>`); this chart does not hold the Gateway constructs, the lab being a chart of
 * its own, so the name is spelled here once.
 */
export function inClusterGateways(): K6Gateway[] {
  return STRATEGIES.map((strategy) => ({
    name: strategy,
    url: `http://${gatewayName(strategy)}:${topology.gateway.port}`,
  }));
}

/**
 * The script and the modules it imports (`./config.ts` …), as ConfigMap data: k6 resolves the
 * imports relative to the entry script, so they must sit beside it.
 */
export function scriptFiles(dir: string, entry: string): Record<string, string> {
  const files: Record<string, string> = {};
  const visit = (name: string) => {
    if (files[name] !== undefined) return;
    let text: string;
    try {
      text = readFileSync(path.join(dir, name), 'utf8');
    } catch (err) {
      throw new Error(`K6Job script: cannot read ${path.join(dir, name)} (${(err as Error).message})`);
    }
    files[name] = text;
    for (const match of text.matchAll(/from\s+'\.\/([\w.-]+\.ts)'/g)) visit(match[1] as string);
  };
  visit(entry);
  return files;
}

export class K6Job extends Construct {
  readonly configMap: ConfigMap;
  readonly job: Job;

  constructor(scope: Construct, id: string, props: K6JobProps) {
    super(scope, id);
    const name = props.name ?? 'k6-video-page';
    const script = props.script ?? 'video-page.ts';
    const gateways = props.gateways ?? inClusterGateways();
    const labels = {
      [LABELS.name]: 'k6',
      [LABELS.instance]: name,
      [LABELS.component]: COMPONENTS.load,
      [LABELS.partOf]: PART_OF,
    };
    const env = {
      GATEWAYS: gateways.map((g) => `${g.name}=${g.url}`).join(','),
      RATE: String(props.rate ?? 30),
      DURATION: props.duration ?? '30s',
      SUMMARY: `${WRITABLE_TMP}/${script.replace(/\.ts$/, '')}-summary.json`,
    };

    this.configMap = new ConfigMap(this, 'scripts', {
      metadata: { name: `${name}-scripts`, namespace: props.namespace, labels },
      data: scriptFiles(props.scriptsDir ?? LOAD_SCRIPTS, script),
    });

    this.job = new Job(this, 'job', {
      metadata: { name, namespace: props.namespace, labels },
      podMetadata: { labels },
      // One run, one verdict: a retried run would mix two runs' load into one result.
      backoffLimit: 0,
      ttlAfterFinished: props.ttlAfterFinished ?? Duration.minutes(10),
      securityContext: { ensureNonRoot: true, user: K6_USER, group: K6_USER },
      containers: [
        {
          name: 'k6',
          image: props.image ?? K6_IMAGE,
          imagePullPolicy: LAB_IMAGE_PULL_POLICY,
          args: [
            'run',
            '--no-usage-report',
            ...Object.entries(env).flatMap(([key, value]) => ['-e', `${key}=${value}`]),
            `${SCRIPTS_DIR}/${script}`,
          ],
          workingDir: WRITABLE_TMP,
          // HOME for anything k6 might cache; the root filesystem is read-only.
          envVariables: { HOME: EnvValue.fromValue(WRITABLE_TMP) },
          // cdk8s-plus-27 would request 1 CPU / 512 MiB: more than a laptop's kind node spares
          // beside the lab. 30 rps to three gateways needs a fraction of that.
          resources: {
            cpu: { request: Cpu.millis(100) },
            memory: { request: Size.mebibytes(128), limit: Size.mebibytes(512) },
          },
          securityContext: {
            user: K6_USER,
            group: K6_USER,
            ensureNonRoot: true,
            readOnlyRootFilesystem: true,
            allowPrivilegeEscalation: false,
            capabilities: { drop: [kubernetesCapability('ALL')] },
          },
          volumeMounts: [
            {
              path: SCRIPTS_DIR,
              readOnly: true,
              volume: Volume.fromConfigMap(this, 'scripts-volume', this.configMap, { name: 'scripts' }),
            },
            {
              path: WRITABLE_TMP,
              volume: Volume.fromEmptyDir(this, 'tmp-volume', 'tmp', { sizeLimit: Size.mebibytes(64) }),
            },
          ],
        },
      ],
    });
  }
}

export interface K6JobChartProps extends ChartProps, Omit<K6JobProps, 'namespace'> {
  /** @default 'chaos-lab' */
  readonly namespace?: string;
}

/** The Job in a chart of its own, in the lab's namespace. */
export class K6JobChart extends Chart {
  readonly k6: K6Job;

  constructor(scope: Construct, id: string, props: K6JobChartProps = {}) {
    const { namespace, ...rest } = props;
    super(scope, id, {});
    this.k6 = new K6Job(this, 'k6', { ...rest, namespace: namespace ?? 'chaos-lab' });
  }
}

/** The manifests of a K6JobChart, without writing anything. */
export function k6JobManifests(props: K6JobChartProps = {}): Record<string, unknown>[] {
  return new K6JobChart(new App(), 'k6-job', props).toJson() as Record<string, unknown>[];
}
