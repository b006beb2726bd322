import { describe, expect, it } from 'vitest';
import { type DiscoveredPod, kubernetesTargets, podDiscoveryTargets } from './relabel.ts';
import type { PrometheusConfig } from './scrape-configs.ts';

const pod: DiscoveredPod = {
  name: 'coin-7d9c-abcde',
  namespace: 'lab',
  ip: '10.0.0.7',
  phase: 'Running',
  labels: { 'app.kubernetes.io/name': 'coin' },
  annotations: { 'prometheus.io/port': '8085' },
  containers: [{ name: 'coin', ports: [{ containerPort: 8085, name: 'http' }] }, { name: 'sidecar' }],
};

function job(relabel_configs: Readonly<Record<string, unknown>>[], namespace = 'lab'): PrometheusConfig {
  return {
    global: { scrape_interval: '5s', evaluation_interval: '5s' },
    scrape_configs: [
      {
        job_name: 'j',
        honor_labels: true,
        kubernetes_sd_configs: [{ role: 'pod', namespaces: { names: [namespace] } }],
        relabel_configs,
      },
    ],
  };
}

describe('podDiscoveryTargets', () => {
  it('yields one target per container port, and one at the bare address for a container without', () => {
    const targets = podDiscoveryTargets(pod);
    expect(targets.map((t) => t.__address__)).toEqual(['10.0.0.7:8085', '10.0.0.7']);
    expect(targets[0]).toMatchObject({
      __meta_kubernetes_pod_label_app_kubernetes_io_name: 'coin',
      __meta_kubernetes_pod_annotation_prometheus_io_port: '8085',
      __meta_kubernetes_pod_container_port_name: 'http',
      __meta_kubernetes_pod_container_name: 'coin',
    });
  });
});

describe('kubernetesTargets', () => {
  it('anchors regexes, expands groups, defaults instance to the address and keeps no __ label', () => {
    const targets = kubernetesTargets(
      job([{ source_labels: ['__meta_kubernetes_pod_container_port_name'], regex: 'htt', action: 'keep' }]),
      [pod],
    );
    expect(targets).toEqual([]);
    const [target, ...others] = kubernetesTargets(
      job([
        { source_labels: ['__meta_kubernetes_pod_container_port_name'], regex: 'http', action: 'keep' },
        {
          source_labels: ['__address__', '__meta_kubernetes_pod_name'],
          regex: '([^:]+):(\\d+);(?<pod>.+)',
          // biome-ignore lint/suspicious/noTemplateCurlyInString: Prometheus' own `${name}` reference
          replacement: '${pod}@$1_$2',
          target_label: 'where',
        },
        { target_label: 'fixed', replacement: 'yes' },
      ]),
      [pod],
    );
    expect(others).toEqual([]);
    // `$1_` is a group named "1_", which does not exist: empty, as in Go; `$2` is the port.
    expect(target).toEqual({
      job: 'j',
      address: '10.0.0.7:8085',
      metricsPath: '/metrics',
      labels: { job: 'j', instance: '10.0.0.7:8085', where: 'coin-7d9c-abcde@8085', fixed: 'yes' },
    });
  });

  it('merges targets that relabelling made identical, and removes a label replaced by nothing', () => {
    const targets = kubernetesTargets(
      job([
        { target_label: '__address__', replacement: '10.0.0.7:9999' },
        { source_labels: ['absent'], target_label: 'job' },
      ]),
      [pod],
    );
    expect(targets).toEqual([
      {
        job: 'j',
        address: '10.0.0.7:9999',
        metricsPath: '/metrics',
        labels: { instance: '10.0.0.7:9999' },
      },
    ]);
  });

  it('looks in the configured namespaces only, and refuses an action it does not implement', () => {
    expect(kubernetesTargets(job([], 'elsewhere'), [pod])).toEqual([]);
    expect(() => kubernetesTargets(job([{ action: 'labelmap', regex: '(.*)' }]), [pod])).toThrow(
      /relabel action labelmap is not implemented here/,
    );
  });
});
