import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { labLayout } from '../lab/local/layout.ts';
import {
  FAULT_PROXY_POD_PORTS,
  FAULT_PROXY_PORT_NAMES,
  LAB_NAMESPACE,
  LABELS,
  SCRAPE_ANNOTATIONS,
} from '../services/names.ts';
import { BACKENDS, STRATEGIES } from '../services/topology.ts';
import { DASHBOARDS, DASHBOARDS_DIR, generatedFiles, LOCAL_SCRAPE_CONFIG_PATH } from './generate.ts';
import { dashboardQueries, staticTargets } from './metric-check.ts';
import { DATASOURCE, DATASOURCE_VARIABLE, PROMETHEUS_DATASOURCE_UID } from './panels.ts';
import { analyseQuery } from './promql.ts';
import { GRAFANA_MOUNTS } from './provisioning.ts';
import { type DiscoveredPod, kubernetesTargets } from './relabel.ts';
import { type PrometheusConfig, podMetaLabel } from './scrape-configs.ts';

// Generated once: each generation formats the dashboards with Biome in a child process.
const generated = generatedFiles();

function committed(file: string): string {
  return readFileSync(path.join(DASHBOARDS_DIR, file), 'utf8');
}

function committedYaml<T>(file: string): T {
  return parse(committed(file)) as T;
}

const dashboards = Object.keys(DASHBOARDS).map((file) => ({
  file,
  json: JSON.parse(committed(file)) as Record<string, unknown> & {
    panels: {
      type: string;
      title: string;
      fieldConfig?: { defaults?: { unit?: string } };
      targets?: unknown[];
    }[];
    templating: { list: { name: string; type: string; query?: string; current?: { value: unknown } }[] };
    annotations: { list: { name: string }[] };
  },
}));
const queries = dashboards.flatMap(({ file }) => dashboardQueries(file, JSON.parse(committed(file))));

describe('the generated files', () => {
  it.each(generated.map((file) => [file.path, file.content]))(
    '%s is committed as npm run dashboards writes it',
    (file, content) => {
      expect(committed(file), `${file} is out of date: run npm run dashboards`).toBe(content);
    },
  );
});

describe('the dashboards', () => {
  it('have queries in every panel but rows, and annotations', () => {
    for (const { file, json } of dashboards) {
      for (const panel of json.panels.filter((p) => p.type !== 'row')) {
        expect(panel.targets?.length ?? 0, `${file}: panel "${panel.title}" has no query`).toBeGreaterThan(0);
      }
      expect(json.annotations.list.map((a) => a.name)).toContain('Faults in services');
      expect(json.annotations.list.map((a) => a.name)).toContain('Network faults');
    }
    expect(queries.length).toBeGreaterThan(40);
  });

  it('every panel and annotation query is PromQL that selects at least one metric', () => {
    for (const query of queries) {
      const analysis = analyseQuery(query.expr);
      expect(analysis.selectors.length, `${query.dashboard}, ${query.where}`).toBeGreaterThan(0);
    }
  });

  it('every datasource reference is the datasource variable, which starts on the provisioned uid', () => {
    const provisioned = committedYaml<{ datasources: { uid: string; type: string }[] }>(
      'grafana/provisioning/datasources/prometheus.yaml',
    ).datasources;
    expect(provisioned).toEqual([
      expect.objectContaining({ uid: PROMETHEUS_DATASOURCE_UID, type: 'prometheus' }),
    ]);

    for (const { file, json } of dashboards) {
      const references: unknown[] = [];
      const walk = (value: unknown): void => {
        if (Array.isArray(value)) value.forEach(walk);
        else if (value && typeof value === 'object') {
          for (const [key, inner] of Object.entries(value)) {
            if (key === 'datasource') references.push(inner);
            else walk(inner);
          }
        }
      };
      walk(json);
      expect(references.length, file).toBeGreaterThan(20);
      for (const reference of references) expect(reference, file).toEqual(DATASOURCE);

      const variable = json.templating.list.find((v) => v.name === DATASOURCE_VARIABLE);
      expect(variable, `${file} has no datasource variable`).toMatchObject({
        type: 'datasource',
        query: 'prometheus',
        current: { value: PROMETHEUS_DATASOURCE_UID },
      });
    }
  });

  it('time series and stats have a unit, and every query a legend', () => {
    for (const { file, json } of dashboards) {
      for (const panel of json.panels.filter((p) => p.type === 'timeseries' || p.type === 'stat')) {
        expect(panel.fieldConfig?.defaults?.unit, `${file}: panel "${panel.title}"`).toMatch(
          /^(s|percentunit|reqps|ops|Bps|short)$/,
        );
        for (const target of panel.targets as { legendFormat?: string }[]) {
          expect(target.legendFormat, `${file}: panel "${panel.title}"`).toMatch(/\{\{\w+\}\}/);
        }
      }
    }
  });

  it('filter by the topology: strategy and dependency on the gateways, service on the services', () => {
    const values = (file: string, name: string) =>
      dashboards.find((d) => d.file === file)?.json.templating.list.find((v) => v.name === name)?.query;
    expect(values('gateway-overview.json', 'strategy')).toBe(STRATEGIES.join(','));
    expect(values('gateway-overview.json', 'dependency')).toBe(BACKENDS.join(','));
    expect(values('services.json', 'service')).toBe(BACKENDS.join(','));
  });
});

describe('the Prometheus scrape configurations', () => {
  it('local.yml scrapes exactly the ports of labLayout(): gateways, backend instances, fault proxies', () => {
    const layout = labLayout();
    const targets = staticTargets(committedYaml<PrometheusConfig>(LOCAL_SCRAPE_CONFIG_PATH));
    const expected = [
      ...layout.instances.map((i) => ({ port: i.port, instance: i.id, service: i.service })),
      ...layout.proxies.map((p) => ({ port: p.adminPort, instance: p.id, service: 'fault-proxy' })),
    ];
    const listed = targets.map((t) => ({
      port: Number(new URL(t.url).port),
      instance: t.labels.instance,
      service: t.labels.service,
    }));
    const byPort = (a: { port: number }, b: { port: number }) => a.port - b.port;
    expect(listed.sort(byPort)).toEqual(expected.sort(byPort));
    expect(targets.every((t) => new URL(t.url).hostname === '127.0.0.1')).toBe(true);
  });

  it('local.yml labels gateways with their strategy and proxies with the backend they front', () => {
    const targets = staticTargets(committedYaml<PrometheusConfig>(LOCAL_SCRAPE_CONFIG_PATH));
    const gateways = targets.filter((t) => t.labels.service === 'gateway');
    expect(gateways.map((t) => t.labels.strategy).sort()).toEqual([...STRATEGIES].sort());
    const layout = labLayout();
    for (const proxy of layout.proxies) {
      const target = targets.find((t) => t.labels.instance === proxy.id);
      expect(target?.labels.backend, proxy.id).toBe(proxy.service);
    }
    const config = committedYaml<PrometheusConfig>(LOCAL_SCRAPE_CONFIG_PATH);
    expect(config.scrape_configs.every((job) => job.honor_labels)).toBe(true);
  });

  it('kubernetes.yml finds the pods of the lab namespace by what the charts put on them', () => {
    const config = committedYaml<PrometheusConfig>('prometheus/kubernetes.yml');
    for (const each of config.scrape_configs) {
      expect(each.kubernetes_sd_configs).toEqual([{ role: 'pod', namespaces: { names: [LAB_NAMESPACE] } }]);
      expect(each.honor_labels).toBe(true);
    }
    const job = config.scrape_configs.find((j) => j.job_name === 'chaos-lab-pods');
    // Spelled out: the charts set these by the same names (services/names.ts), and charts/lab-chart.test.ts
    // spells out what a pod carries.
    const sources = (job?.relabel_configs ?? []).flatMap((rule) => rule.source_labels as string[]);
    expect(sources).toEqual(
      expect.arrayContaining([
        '__meta_kubernetes_pod_annotation_prometheus_io_scrape',
        '__meta_kubernetes_pod_annotation_prometheus_io_port',
        '__meta_kubernetes_pod_label_app_kubernetes_io_name',
        '__meta_kubernetes_pod_label_chaos_lab_dev_strategy',
      ]),
    );
    const targets = (job?.relabel_configs ?? []).map((rule) => rule.target_label);
    expect(targets).toEqual(expect.arrayContaining(['service', 'instance', 'strategy', '__address__']));
  });

  it('kubernetes.yml labels each kind of target with the label names local.yml gives it', () => {
    // A backend pod and a gateway pod as the charts make them (charts/lab-chart.test.ts checks
    // the chart's own pods against this configuration).
    const port = (number: number, name: string) => ({ containerPort: number, name });
    const pod = (name: string, labels: Record<string, string>, containers: DiscoveredPod['containers']) => ({
      name: `${name}-5f7d-x2x9q`,
      namespace: LAB_NAMESPACE,
      ip: '10.244.0.9',
      phase: 'Running',
      labels,
      annotations: { [SCRAPE_ANNOTATIONS.scrape]: 'true', [SCRAPE_ANNOTATIONS.port]: '8085' },
      containers,
    });
    const pods: DiscoveredPod[] = [
      pod('coin', { [LABELS.name]: 'coin' }, [
        { name: 'coin', ports: [port(8085, 'http')] },
        {
          name: 'fault-proxy',
          ports: [
            port(FAULT_PROXY_POD_PORTS.data, FAULT_PROXY_PORT_NAMES.data),
            port(FAULT_PROXY_POD_PORTS.admin, FAULT_PROXY_PORT_NAMES.admin),
          ],
        },
        { name: 'fault-sidecar' },
      ]),
      {
        ...pod('gateway-naive', { [LABELS.name]: 'gateway', [LABELS.strategy]: 'naive' }, [
          { name: 'gateway', ports: [port(8080, 'http')] },
        ]),
        annotations: { [SCRAPE_ANNOTATIONS.scrape]: 'true', [SCRAPE_ANNOTATIONS.port]: '8080' },
      },
    ];
    const kindOf = (labels: Record<string, string>) =>
      labels.service === 'gateway' || labels.service === 'fault-proxy' ? labels.service : 'backend';
    const labelNames = (targets: { labels: Record<string, string> }[]) =>
      Object.fromEntries(targets.map((t) => [kindOf(t.labels), Object.keys(t.labels).sort()]));

    const cluster = kubernetesTargets(committedYaml<PrometheusConfig>('prometheus/kubernetes.yml'), pods);
    expect(cluster.map((t) => t.address).sort()).toEqual(
      ['10.244.0.9:8080', '10.244.0.9:8085', `10.244.0.9:${FAULT_PROXY_POD_PORTS.admin}`].sort(),
    );
    const local = staticTargets(committedYaml<PrometheusConfig>(LOCAL_SCRAPE_CONFIG_PATH));
    expect(labelNames(cluster)).toEqual(labelNames(local));
    expect(cluster.find((t) => t.labels.service === 'fault-proxy')?.labels).toMatchObject({
      backend: 'coin',
      instance: 'coin-5f7d-x2x9q',
    });
  });

  it('names pod labels and annotations as Prometheus service discovery does', () => {
    expect(podMetaLabel('label', 'chaos-lab.dev/strategy')).toBe(
      '__meta_kubernetes_pod_label_chaos_lab_dev_strategy',
    );
    expect(podMetaLabel('annotation', 'prometheus.io/port')).toBe(
      '__meta_kubernetes_pod_annotation_prometheus_io_port',
    );
  });
});

describe('the Grafana provisioning', () => {
  it('loads the dashboards from the folder the deployment mounts', () => {
    const providers = committedYaml<{ providers: { type: string; options: { path: string } }[] }>(
      'grafana/provisioning/dashboards/chaos-lab.yaml',
    ).providers;
    expect(providers).toEqual([
      expect.objectContaining({
        type: 'file',
        options: expect.objectContaining({ path: GRAFANA_MOUNTS.dashboardsPath }),
      }),
    ]);
  });
});
