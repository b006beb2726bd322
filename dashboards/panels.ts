/**
 * What both dashboards share: the datasource they query, their variables, panel builders with
 * the lab's conventions (units, legends, one colour per gateway strategy), and the assembly of
 * rows into a dashboard, so that each dashboard module reads as a list of questions and the
 * PromQL that answers them.
 */

import type * as cog from '@grafana/grafana-foundation-sdk/cog';
import * as common from '@grafana/grafana-foundation-sdk/common';
import {
  type AnnotationQueryBuilder,
  CustomVariableBuilder,
  type Dashboard,
  DashboardBuilder,
  DashboardCursorSync,
  DashboardLinkBuilder,
  DashboardLinkType,
  DatasourceVariableBuilder,
  MappingType,
  type Panel,
  RowBuilder,
  TimePickerBuilder,
  type VariableModel,
} from '@grafana/grafana-foundation-sdk/dashboard';
import { DataqueryBuilder } from '@grafana/grafana-foundation-sdk/prometheus';
import * as stat from '@grafana/grafana-foundation-sdk/stat';
import * as statetimeline from '@grafana/grafana-foundation-sdk/statetimeline';
import * as timeseries from '@grafana/grafana-foundation-sdk/timeseries';
import * as units from '@grafana/grafana-foundation-sdk/units';
import { GATEWAY_COLORS } from '../services/names.ts';

/** The uid the provisioned Prometheus datasource has, and the one the datasource variable starts on. */
export const PROMETHEUS_DATASOURCE_UID = 'chaos-lab-prometheus';
export const DATASOURCE_VARIABLE = 'datasource';
/**
 * Every panel and annotation queries the datasource variable, so an imported dashboard works
 * with whatever Prometheus datasource the user picks, whatever its uid.
 */
export const DATASOURCE = { type: 'prometheus', uid: `\${${DATASOURCE_VARIABLE}}` } as const;

/** Tag on every lab dashboard; the dashboards link to each other through it. */
export const LAB_TAG = 'chaos-lab';

/** Grafana's range for `rate()`: at least four scrape intervals (the datasource's `timeInterval`). */
export const RATE = '$__rate_interval';

/**
 * `part / whole` by the same labels, where `part` may have no series yet (no degraded page, no
 * 5xx so far): those show as 0 rather than as no data.
 */
export function shareOf(part: string, whole: string): string {
  return `(${part} or 0 * ${whole})\n/\n${whole}`;
}

export const UNITS = {
  seconds: units.Seconds,
  share: units.PercentUnit,
  requestsPerSecond: units.RequestsPerSecond,
  eventsPerSecond: units.OpsPerSecond,
  bytesPerSecond: units.BytesPerSecondSI,
  count: units.Short,
} as const;

export interface Query {
  readonly expr: string;
  /** Grafana legend template: `{{strategy}}`, `{{service}} · {{reason}}`. */
  readonly legend: string;
}

export interface PanelOptions {
  readonly title: string;
  /** The panel's (i) tooltip: what it shows and what to look for during an experiment. */
  readonly description: string;
  readonly queries: readonly Query[];
  readonly unit: string;
  /** Grid columns out of 24. @default 12 */
  readonly width?: number;
  /** Grid rows. @default 8 */
  readonly height?: number;
  /** @default unset: Grafana fits the axis to the data */
  readonly min?: number;
  /** @default unset */
  readonly max?: number;
}

function targets(queries: readonly Query[], instant = false): DataqueryBuilder[] {
  return queries.map((query, i) => {
    const target = new DataqueryBuilder()
      .refId(String.fromCharCode(65 + i))
      .expr(query.expr)
      .legendFormat(query.legend);
    return instant ? target.instant() : target;
  });
}

/** Series named after a strategy get that strategy's colour, the same as in the HTML report and the live page. */
function colourStrategies<
  T extends { overrideByName(name: string, props: { id: string; value: unknown }[]): T },
>(panel: T): T {
  for (const [strategy, colour] of Object.entries(GATEWAY_COLORS)) {
    panel.overrideByName(strategy, [{ id: 'color', value: { mode: 'fixed', fixedColor: colour } }]);
  }
  return panel;
}

export function timeSeries(options: PanelOptions): timeseries.PanelBuilder {
  const panel = new timeseries.PanelBuilder()
    .title(options.title)
    .description(options.description)
    .datasource(DATASOURCE)
    .targets(targets(options.queries))
    .unit(options.unit)
    .span(options.width ?? 12)
    .height(options.height ?? 8)
    .lineWidth(2)
    .fillOpacity(10)
    .showPoints(common.VisibilityMode.Never)
    .legend(
      new common.VizLegendOptionsBuilder()
        .showLegend(true)
        .displayMode(common.LegendDisplayMode.List)
        .placement(common.LegendPlacement.Bottom)
        .calcs([]),
    )
    .tooltip(
      new common.VizTooltipOptionsBuilder()
        .mode(common.TooltipDisplayMode.Multi)
        .sort(common.SortOrder.Descending),
    );
  if (options.min !== undefined) panel.min(options.min);
  if (options.max !== undefined) panel.max(options.max);
  return colourStrategies(panel);
}

/** One number per series over the whole time range (queries should use `$__range`). */
export function statPanel(options: PanelOptions): stat.PanelBuilder {
  const panel = new stat.PanelBuilder()
    .title(options.title)
    .description(options.description)
    .datasource(DATASOURCE)
    .targets(targets(options.queries, true))
    .unit(options.unit)
    .span(options.width ?? 12)
    .height(options.height ?? 4)
    .graphMode(common.BigValueGraphMode.None)
    .colorMode(common.BigValueColorMode.Value)
    .textMode(common.BigValueTextMode.ValueAndName)
    .reduceOptions(new common.ReduceDataOptionsBuilder().calcs(['lastNotNull']).values(false));
  return colourStrategies(panel);
}

export interface StateOptions extends Omit<PanelOptions, 'unit' | 'min' | 'max'> {
  /** What each value means, e.g. `{ 0: { text: 'closed', color: 'green' } }`. */
  readonly states: Readonly<Record<number, { readonly text: string; readonly color: string }>>;
}

/** A band per series whose colour says which state it was in, second by second. */
export function stateTimeline(options: StateOptions): statetimeline.PanelBuilder {
  const mapped = Object.fromEntries(
    Object.entries(options.states).map(([value, { text, color }], index) => [value, { text, color, index }]),
  );
  return new statetimeline.PanelBuilder()
    .title(options.title)
    .description(options.description)
    .datasource(DATASOURCE)
    .targets(targets(options.queries))
    .span(options.width ?? 12)
    .height(options.height ?? 8)
    .showValue(common.VisibilityMode.Never)
    .mappings([{ type: MappingType.ValueToText, options: mapped }]);
}

export function datasourceVariable(): DatasourceVariableBuilder {
  return new DatasourceVariableBuilder(DATASOURCE_VARIABLE)
    .label('Prometheus')
    .type('prometheus')
    .current({ text: 'Prometheus', value: PROMETHEUS_DATASOURCE_UID });
}

/**
 * A multi-value filter over a fixed list (from the topology, not from a query: it works before
 * the first scrape, and the list cannot drift from what the lab runs). Queries use it as
 * `label=~"$name"`.
 */
export function filterVariable(
  name: string,
  label: string,
  values: readonly string[],
): CustomVariableBuilder {
  return new CustomVariableBuilder(name)
    .label(label)
    .values(values.join(','))
    .multi(true)
    .includeAll(true)
    .current({ text: ['All'], value: ['$__all'] });
}

export interface Section {
  readonly title: string;
  readonly panels: readonly cog.Builder<Panel>[];
}

export interface DashboardSpec {
  readonly uid: string;
  readonly title: string;
  readonly description: string;
  readonly variables: readonly cog.Builder<VariableModel>[];
  readonly annotations: readonly AnnotationQueryBuilder[];
  readonly sections: readonly Section[];
}

/** The dashboard as the JSON Grafana imports. */
export function buildDashboard(spec: DashboardSpec): Dashboard {
  const builder = new DashboardBuilder(spec.title)
    .uid(spec.uid)
    .description(spec.description)
    .tags([LAB_TAG])
    .editable()
    // A shared crosshair: hovering one panel marks the same instant on every other.
    .tooltip(DashboardCursorSync.Crosshair)
    .time({ from: 'now-15m', to: 'now' })
    .refresh('10s')
    .timepicker(new TimePickerBuilder().refreshIntervals(['5s', '10s', '30s', '1m', '5m']))
    .variables([datasourceVariable(), ...spec.variables])
    .annotations([...spec.annotations])
    .link(
      new DashboardLinkBuilder('chaos-lab dashboards')
        .type(DashboardLinkType.Dashboards)
        .tags([LAB_TAG])
        .asDropdown(true)
        .includeVars(false)
        .keepTime(true),
    );
  for (const section of spec.sections) {
    builder.withRow(new RowBuilder(section.title));
    for (const panel of section.panels) builder.withPanel(panel);
  }
  const dashboard = builder.build();
  // The SDK leaves panel ids unset (rows get 0); Grafana wants them unique to link to a panel.
  (dashboard.panels ?? []).forEach((panel, index) => {
    panel.id = index + 1;
  });
  // The SDK puts annotation toggles and links in the controls menu (Grafana 12's `placement`);
  // on the dashboard bar, where older Grafana puts them too, a presenter reaches them in one click.
  for (const annotation of dashboard.annotations?.list ?? []) delete annotation.placement;
  for (const link of dashboard.links ?? []) delete link.placement;
  return dashboard;
}
