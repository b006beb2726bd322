/**
 * Does every query of every dashboard ask for series the lab really has? Compares the
 * selectors and groupings of each query (promql.ts) with a catalog of the series scraped from
 * the running processes, labelled as the scrape configuration labels them, and names the
 * dashboard, panel and metric of every mismatch.
 */

import type { Dashboard } from '@grafana/grafana-foundation-sdk/dashboard';
import type { Sample } from '../lab/prom-text.ts';
import { analyseQuery, PromqlError, type Selector } from './promql.ts';
import type { PrometheusConfig } from './scrape-configs.ts';

export interface DashboardQuery {
  /** The dashboard's file name, e.g. `gateway-overview.json`. */
  readonly dashboard: string;
  /** `panel "Success rate"` or `annotation "Restarts"`. */
  readonly where: string;
  readonly expr: string;
}

interface PanelLike {
  readonly title?: string;
  readonly targets?: readonly { readonly expr?: unknown }[];
  readonly panels?: readonly PanelLike[];
}

interface AnnotationLike {
  readonly name?: string;
  readonly expr?: unknown;
  readonly target?: { readonly expr?: unknown };
}

/** Every PromQL expression of a dashboard: panel targets (inside rows too) and annotations. */
export function dashboardQueries(file: string, dashboard: Dashboard): DashboardQuery[] {
  const queries: DashboardQuery[] = [];
  const visit = (panel: PanelLike) => {
    for (const target of panel.targets ?? []) {
      if (typeof target.expr === 'string') {
        queries.push({ dashboard: file, where: `panel "${panel.title ?? '(untitled)'}"`, expr: target.expr });
      }
    }
    for (const inner of panel.panels ?? []) visit(inner);
  };
  for (const panel of (dashboard.panels ?? []) as PanelLike[]) visit(panel);
  for (const annotation of (dashboard.annotations?.list ?? []) as AnnotationLike[]) {
    const expr = annotation.target?.expr ?? annotation.expr;
    if (typeof expr === 'string') {
      queries.push({ dashboard: file, where: `annotation "${annotation.name ?? '(unnamed)'}"`, expr });
    }
  }
  return queries;
}

/** Metric name → the label sets of its series, over every target. */
export type SeriesCatalog = ReadonlyMap<string, readonly Readonly<Record<string, string>>[]>;

export interface ScrapedTarget {
  /** Labels the scrape configuration gives the target: `job`, `instance` and its own. */
  readonly targetLabels: Readonly<Record<string, string>>;
  readonly samples: readonly Sample[];
}

/**
 * Metrics Prometheus makes itself for every target, with the target's labels only (not
 * exposed by any process, so a scrape of `/metrics` never shows them).
 */
export const SCRAPE_GENERATED_METRICS = ['up', 'scrape_duration_seconds', 'scrape_samples_scraped'] as const;

export function seriesCatalog(targets: readonly ScrapedTarget[]): SeriesCatalog {
  const catalog = new Map<string, Map<string, Readonly<Record<string, string>>>>();
  const add = (metric: string, labels: Readonly<Record<string, string>>) => {
    const series = catalog.get(metric) ?? new Map<string, Readonly<Record<string, string>>>();
    catalog.set(metric, series);
    series.set(JSON.stringify(Object.entries(labels).sort()), labels);
  };
  for (const target of targets) {
    // honor_labels: a label the process exposes wins over the target's label of the same name.
    for (const sample of target.samples) add(sample.name, { ...target.targetLabels, ...sample.labels });
    for (const metric of SCRAPE_GENERATED_METRICS) add(metric, target.targetLabels);
  }
  return new Map([...catalog].map(([metric, series]) => [metric, [...series.values()]]));
}

/** The targets a scrape configuration lists, with the labels Prometheus gives each. */
export function staticTargets(config: PrometheusConfig): { url: string; labels: Record<string, string> }[] {
  return config.scrape_configs.flatMap((job) =>
    (job.static_configs ?? []).flatMap((group) =>
      group.targets.map((address) => ({
        url: `http://${address}${job.metrics_path ?? '/metrics'}`,
        labels: { job: job.job_name, instance: address, ...group.labels },
      })),
    ),
  );
}

export interface Problem {
  readonly dashboard: string;
  readonly where: string;
  readonly metric: string;
  readonly message: string;
}

export function describeProblem(problem: Problem): string {
  return `${problem.dashboard}, ${problem.where}, ${problem.metric}: ${problem.message}`;
}

export interface CheckOptions {
  /**
   * Labels whose fixed `=`/`!=` matchers must match some series (`service="gateway"`,
   * `route="/api/video/:aid"`): a typo there silently empties a panel. Groupings are then
   * checked against the matching series only. Not for labels whose values only appear after
   * an event (`degraded="true"`). @default none
   */
  readonly checkValuesOf?: readonly string[];
}

function labelNames(series: readonly Readonly<Record<string, string>>[]): string[] {
  return [...new Set(series.flatMap((labels) => Object.keys(labels)))].sort();
}

/** Every way the queries ask for something the catalog does not have; empty when all is there. */
export function checkQueries(
  queries: readonly DashboardQuery[],
  catalog: SeriesCatalog,
  options: CheckOptions = {},
): Problem[] {
  const problems: Problem[] = [];
  const valueChecked = new Set(options.checkValuesOf ?? []);
  for (const query of queries) {
    const at = { dashboard: query.dashboard, where: query.where };
    let analysis: ReturnType<typeof analyseQuery>;
    try {
      analysis = analyseQuery(query.expr);
    } catch (err) {
      if (!(err instanceof PromqlError)) throw err;
      problems.push({ ...at, metric: '(query)', message: err.message });
      continue;
    }
    // The series each selector can match, as far as fixed values tell (variables cannot).
    const selected = new Map<Selector, readonly Readonly<Record<string, string>>[]>();
    for (const selector of analysis.selectors) {
      const series = catalog.get(selector.metric);
      if (!series) {
        problems.push({ ...at, metric: selector.metric, message: 'no target exposes this metric' });
        continue;
      }
      const present = labelNames(series);
      for (const matcher of selector.matchers) {
        if (!present.includes(matcher.label)) {
          problems.push({
            ...at,
            metric: selector.metric,
            message: `label "${matcher.label}" (in ${matcher.label}${matcher.op}"${matcher.value}") is on no series of it; it has ${present.join(', ')}`,
          });
        }
      }
      const fixed = selector.matchers.filter(
        (m) => valueChecked.has(m.label) && (m.op === '=' || m.op === '!=') && !m.value.includes('$'),
      );
      const matching = series.filter((labels) =>
        fixed.every((m) => (m.op === '=') === ((labels[m.label] ?? '') === m.value)),
      );
      if (matching.length === 0 && fixed.length > 0) {
        const seen = fixed.map(
          (m) => `${m.label}: ${[...new Set(series.map((l) => l[m.label] ?? ''))].sort().join(', ')}`,
        );
        problems.push({
          ...at,
          metric: selector.metric,
          message: `no series matches ${fixed.map((m) => `${m.label}${m.op}"${m.value}"`).join(', ')}; seen ${seen.join('; ')}`,
        });
      }
      selected.set(selector, matching);
    }
    for (const grouping of analysis.groupings) {
      for (const selector of grouping.selectors) {
        const series = selected.get(selector);
        if (!series || series.length === 0) continue; // already reported above
        const present = labelNames(series);
        for (const label of grouping.labels) {
          if (!present.includes(label)) {
            problems.push({
              ...at,
              metric: selector.metric,
              message: `grouped by "${label}", which is on none of the series it selects; they have ${present.join(', ')}`,
            });
          }
        }
      }
    }
  }
  return problems;
}
