/**
 * The dashboards against the real lab: start it, send some real pages through each gateway,
 * scrape every process the local scrape configuration lists, and fail naming the dashboard,
 * panel and metric for anything a dashboard queries that no process exposes — metric names
 * exactly (histograms by their `_bucket`/`_sum`/`_count` series), and every label used in a
 * matcher or a grouping, counting the labels the scrape configuration adds.
 */

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DASHBOARDS, DASHBOARDS_DIR } from '../../dashboards/generate.ts';
import {
  checkQueries,
  type DashboardQuery,
  dashboardQueries,
  describeProblem,
  type ScrapedTarget,
  type SeriesCatalog,
  seriesCatalog,
  staticTargets,
} from '../../dashboards/metric-check.ts';
import { localScrapeConfig } from '../../dashboards/scrape-configs.ts';
import { labLayout } from '../../lab/local/layout.ts';
import { parsePromText } from '../../lab/prom-text.ts';
import { DATASET, STRATEGIES } from '../../services/topology.ts';
import { downAndCheck, freePortBase, makeHome, pidsOf, removeHome, timedGet, upDetached } from './helpers.ts';

/** Pages per gateway: enough for every dependency to be called and every backend to run its background task. */
const PAGES_PER_GATEWAY = 20;
/** A video that does not exist: its 404 reaches the error middleware, so `http_server_errors_total` has a series. */
const MISSING_AID = DATASET.firstAid + DATASET.videos + 1_000;
/** Labels whose fixed values in the dashboards must be values some series has (a typo empties a panel). */
const VALUE_CHECKED_LABELS = ['service', 'route'];

describe('the dashboards query only what the running lab exposes', () => {
  const home = makeHome();
  const seen = new Set<number>();
  let catalog: SeriesCatalog;
  let scraped: ScrapedTarget[] = [];

  beforeAll(async () => {
    const base = await freePortBase();
    const status = await upDetached(home, base);
    for (const pid of pidsOf(status)) seen.add(pid);
    const layout = labLayout(base);

    for (const strategy of STRATEGIES) {
      const gateway = layout.gateways[strategy].url;
      for (let i = 0; i < PAGES_PER_GATEWAY; i++) {
        const page = await timedGet(`${gateway}/api/video/${DATASET.firstAid + i}`);
        expect(page.status, `${strategy} page ${i}`).toBe(200);
      }
      expect((await timedGet(`${gateway}/api/video/${MISSING_AID}`)).status).toBe(404);
    }

    // The same targets and labels as dashboards/prometheus/local.yml, at this lab's ports.
    const targets = staticTargets(localScrapeConfig(layout));
    scraped = await Promise.all(
      targets.map(async (target): Promise<ScrapedTarget> => {
        const res = await fetch(target.url, { signal: AbortSignal.timeout(5_000) });
        if (!res.ok) throw new Error(`${target.url} (${target.labels.instance}) answered ${res.status}`);
        return { targetLabels: target.labels, samples: parsePromText(await res.text()) };
      }),
    );
    catalog = seriesCatalog(scraped);
  });

  afterAll(async () => {
    const down = await downAndCheck(home, [...seen]);
    removeHome(home);
    expect(down.survivors).toEqual([]);
  });

  it('scrapes every gateway, backend instance and fault proxy', () => {
    expect(scraped).toHaveLength(3 + 10 + 10);
    for (const target of scraped) {
      expect(target.samples.length, target.targetLabels.instance).toBeGreaterThan(20);
    }
  });

  it('every metric and label of every panel and annotation is there', () => {
    const queries = Object.keys(DASHBOARDS).flatMap((file) =>
      dashboardQueries(file, JSON.parse(readFileSync(path.join(DASHBOARDS_DIR, file), 'utf8'))),
    );
    expect(queries.length).toBeGreaterThan(40);
    const problems = checkQueries(queries, catalog, { checkValuesOf: VALUE_CHECKED_LABELS });
    expect(problems.map(describeProblem)).toEqual([]);
  });

  it('the same check fails on this lab for a metric or label that is not there', () => {
    const madeUp: DashboardQuery[] = [
      { dashboard: 'made-up.json', where: 'panel "Typo"', expr: 'rate(gateway_request_total[5m])' },
      {
        dashboard: 'made-up.json',
        where: 'panel "Not a histogram series"',
        expr: 'rate(gateway_dependency_duration_seconds[5m])',
      },
      { dashboard: 'made-up.json', where: 'panel "No such label"', expr: 'sum by (zone) (gateway_inflight)' },
      {
        dashboard: 'made-up.json',
        where: 'panel "No such route"',
        expr: 'rate(http_server_request_duration_seconds_count{route="/api/videos/:aid"}[5m])',
      },
    ];
    const problems = checkQueries(madeUp, catalog, { checkValuesOf: VALUE_CHECKED_LABELS }).map(
      describeProblem,
    );
    expect(problems).toEqual([
      'made-up.json, panel "Typo", gateway_request_total: no target exposes this metric',
      'made-up.json, panel "Not a histogram series", gateway_dependency_duration_seconds: no target exposes this metric',
      expect.stringMatching(/^made-up\.json, panel "No such label", gateway_inflight: grouped by "zone"/),
      expect.stringMatching(
        /^made-up\.json, panel "No such route", http_server_request_duration_seconds_count: no series matches route="\/api\/videos\/:aid"/,
      ),
    ]);
  });
});
