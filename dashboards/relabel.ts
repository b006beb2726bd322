/**
 * The targets a Kubernetes scrape configuration yields, worked out as Prometheus does: pod
 * service discovery (one target per declared container port, the pod's labels and annotations
 * as `__meta_kubernetes_pod_…`), then each job's relabelling. Only what the lab's configuration
 * uses is implemented (`replace`, `keep`, `drop`); anything else is refused, so a test never
 * passes on a rule this does not understand.
 *
 * Semantics from Prometheus' model/relabel and discovery/kubernetes/pod.go: regexes are
 * anchored at both ends, source values are joined by `;`, `$1`/`${name}` expand as Go's
 * regexp.Expand does, a `replace` to an empty value removes the label, `__`-prefixed labels
 * are gone after relabelling, `instance` defaults to the address, and targets with identical
 * labels are one.
 */

import type { PrometheusConfig } from './scrape-configs.ts';

/** A running pod as service discovery sees it. */
export interface DiscoveredPod {
  readonly name: string;
  readonly namespace: string;
  readonly ip: string;
  readonly phase: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
  readonly containers: readonly {
    readonly name: string;
    readonly ports?: readonly {
      readonly containerPort: number;
      readonly name?: string;
      readonly protocol?: string;
    }[];
  }[];
}

export interface ScrapeTarget {
  readonly job: string;
  /** host:port Prometheus scrapes. */
  readonly address: string;
  readonly metricsPath: string;
  /** The labels every series of the target gets (`job`, `instance` and the rest). */
  readonly labels: Readonly<Record<string, string>>;
}

type Labels = Record<string, string>;

function metaName(name: string): string {
  return name.replace(/[^a-zA-Z0-9_]/g, '_');
}

/** The targets of a pod under `role: pod`, before relabelling. */
export function podDiscoveryTargets(pod: DiscoveredPod): Labels[] {
  const common: Labels = {
    __meta_kubernetes_namespace: pod.namespace,
    __meta_kubernetes_pod_name: pod.name,
    __meta_kubernetes_pod_ip: pod.ip,
    __meta_kubernetes_pod_phase: pod.phase,
  };
  for (const [key, value] of Object.entries(pod.labels)) {
    common[`__meta_kubernetes_pod_label_${metaName(key)}`] = value;
    common[`__meta_kubernetes_pod_labelpresent_${metaName(key)}`] = 'true';
  }
  for (const [key, value] of Object.entries(pod.annotations)) {
    common[`__meta_kubernetes_pod_annotation_${metaName(key)}`] = value;
    common[`__meta_kubernetes_pod_annotationpresent_${metaName(key)}`] = 'true';
  }
  return pod.containers.flatMap((container) => {
    const base = { ...common, __meta_kubernetes_pod_container_name: container.name };
    // A container without ports still gets one target, at the pod's address alone.
    if (!container.ports?.length) return [{ ...base, __address__: pod.ip }];
    return container.ports.map((port) => ({
      ...base,
      __address__: `${pod.ip}:${port.containerPort}`,
      __meta_kubernetes_pod_container_port_name: port.name ?? '',
      __meta_kubernetes_pod_container_port_number: String(port.containerPort),
      __meta_kubernetes_pod_container_port_protocol: port.protocol ?? 'TCP',
    }));
  });
}

/** Go's regexp.Expand: `$1`, `${1}`, `$name`, `${name}`, `$$`; an unknown group is empty. */
function expand(template: string, match: RegExpExecArray): string {
  return template.replace(
    /\$(\$|\{(\w+)\}|(\w+))/g,
    (_whole, dollar: string, braced?: string, bare?: string) => {
      if (dollar === '$') return '$';
      const name = (braced ?? bare) as string;
      const value = /^\d+$/.test(name) ? match[Number(name)] : match.groups?.[name];
      return value ?? '';
    },
  );
}

type Rule = Readonly<Record<string, unknown>>;

/** One relabelling rule applied to `labels`; false when the target is dropped. */
function relabel(rule: Rule, labels: Labels): boolean {
  const action = (rule.action as string | undefined) ?? 'replace';
  const sources = (rule.source_labels as readonly string[] | undefined) ?? [];
  const separator = (rule.separator as string | undefined) ?? ';';
  const value = sources.map((name) => labels[name] ?? '').join(separator);
  const regex = new RegExp(`^(?:${(rule.regex as string | undefined) ?? '(.*)'})$`);
  switch (action) {
    case 'keep':
      return regex.test(value);
    case 'drop':
      return !regex.test(value);
    case 'replace': {
      const match = regex.exec(value);
      if (!match) return true;
      const target = expand(rule.target_label as string, match);
      const result = expand((rule.replacement as string | undefined) ?? '$1', match);
      if (result === '') delete labels[target];
      else labels[target] = result;
      return true;
    }
    default:
      throw new Error(`relabel action ${action} is not implemented here (dashboards/relabel.ts)`);
  }
}

/** Every target `config`'s Kubernetes jobs scrape among `pods`. */
export function kubernetesTargets(config: PrometheusConfig, pods: readonly DiscoveredPod[]): ScrapeTarget[] {
  const targets = new Map<string, ScrapeTarget>();
  for (const job of config.scrape_configs) {
    const namespaces = (job.kubernetes_sd_configs ?? []).flatMap((sd) => sd.namespaces.names);
    for (const pod of pods.filter((p) => namespaces.includes(p.namespace))) {
      for (const discovered of podDiscoveryTargets(pod)) {
        const labels: Labels = {
          job: job.job_name,
          __metrics_path__: job.metrics_path ?? '/metrics',
          ...discovered,
        };
        if (!(job.relabel_configs ?? []).every((rule) => relabel(rule, labels))) continue;
        const address = labels.__address__ as string;
        const metricsPath = labels.__metrics_path__ as string;
        const visible = Object.fromEntries(Object.entries(labels).filter(([key]) => !key.startsWith('__')));
        const target = { job: job.job_name, address, metricsPath, labels: { instance: address, ...visible } };
        targets.set(JSON.stringify([address, metricsPath, Object.entries(target.labels).sort()]), target);
      }
    }
  }
  return [...targets.values()];
}
