import { describe, expect, it } from 'vitest';
import { parsePromText } from '../lab/prom-text.ts';
import { checkQueries, type DashboardQuery, describeProblem, seriesCatalog } from './metric-check.ts';
import { analyseQuery, PromqlError } from './promql.ts';

/** Two made-up targets, exposed and labelled as the lab's are. */
const catalog = seriesCatalog([
  {
    targetLabels: { job: 'gateways', instance: 'gateway-naive', service: 'gateway', strategy: 'naive' },
    samples: parsePromText(`
# TYPE page_seconds histogram
page_seconds_bucket{le="0.1",route="/page",service="gateway",instance="gateway-naive"} 3
page_seconds_bucket{le="+Inf",route="/page",service="gateway",instance="gateway-naive"} 4
page_seconds_sum{route="/page",service="gateway",instance="gateway-naive"} 0.3
page_seconds_count{route="/page",service="gateway",instance="gateway-naive"} 4
pages_total{status="200",service="gateway",instance="gateway-naive"} 4
`),
  },
  {
    targetLabels: { job: 'proxies', instance: 'coin-1-proxy', service: 'fault-proxy', backend: 'coin' },
    samples: parsePromText('faults_active{kind="loss",service="fault-proxy",instance="coin-1-proxy"} 0\n'),
  },
]);

function check(expr: string, checkValuesOf: string[] = []) {
  const query: DashboardQuery = { dashboard: 'made-up.json', where: 'panel "P"', expr };
  return checkQueries([query], catalog, { checkValuesOf }).map(describeProblem);
}

describe('checkQueries', () => {
  it('passes a query whose metrics and labels all exist, scrape-config labels included', () => {
    expect(
      check(
        'histogram_quantile(0.99, sum by (strategy, le) (rate(page_seconds_bucket{service="gateway", strategy=~"$strategy"}[$__rate_interval])))',
        ['service'],
      ),
    ).toEqual([]);
    expect(check('sum by (backend, kind) (faults_active{service="fault-proxy"})', ['service'])).toEqual([]);
    expect(check('sum by (service) (up{service=~"$service"})')).toEqual([]);
  });

  it('names the dashboard, panel and metric a target does not expose', () => {
    expect(check('sum(rate(pages_missing_total[5m]))')).toEqual([
      'made-up.json, panel "P", pages_missing_total: no target exposes this metric',
    ]);
  });

  it('wants histogram series by their exact names', () => {
    expect(check('rate(page_seconds[5m])')).toEqual([
      'made-up.json, panel "P", page_seconds: no target exposes this metric',
    ]);
    expect(check('rate(page_seconds_count[5m])')).toEqual([]);
  });

  it('names a label used in a matcher that no series carries', () => {
    const [problem, ...rest] = check('rate(pages_total{dependency="coin"}[5m])');
    expect(rest).toEqual([]);
    expect(problem).toMatch(
      /^made-up\.json, panel "P", pages_total: label "dependency" .* is on no series of it/,
    );
  });

  it('names a label grouped by that the selected series do not carry', () => {
    const [problem] = check('sum by (outcome) (rate(pages_total[5m]))');
    expect(problem).toMatch(/pages_total: grouped by "outcome", which is on none of the series it selects/);
    // `backend` is on the proxies' series, not on the gateway's: the matcher narrows it down.
    const [narrowed] = check('sum by (backend) (faults_active{service="gateway"})', ['service']);
    expect(narrowed).toMatch(/faults_active: no series matches service="gateway"/);
  });

  it('names a fixed label value no series has, for the labels asked about', () => {
    const [problem] = check('rate(page_seconds_count{route="/pages"}[5m])', ['route']);
    expect(problem).toMatch(/no series matches route="\/pages"; seen route: \/page/);
    expect(check('rate(pages_total{status="503"}[5m])', ['route'])).toEqual([]);
  });

  it('reports a query that is not PromQL instead of throwing', () => {
    expect(check('sum(rate(pages_total[5m])')).toEqual([
      expect.stringMatching(/^made-up\.json, panel "P", \(query\): PromQL syntax error at offset/),
    ]);
  });
});

describe('analyseQuery', () => {
  it('reads selectors, matchers and groupings from the PromQL syntax tree', () => {
    const analysis = analyseQuery(
      'sum by (service, reason) (rate(errors_total{service=~"$service", route!~"/healthz|/readyz"}[$__rate_interval]))\n/ on (service) group_left sum by (service) (rate(requests_total[$__range]))',
    );
    expect(analysis.selectors).toEqual([
      {
        metric: 'errors_total',
        matchers: [
          { label: 'service', op: '=~', value: '$service' },
          { label: 'route', op: '!~', value: '/healthz|/readyz' },
        ],
      },
      { metric: 'requests_total', matchers: [] },
    ]);
    expect(analysis.groupings.map((g) => [g.labels, g.selectors.map((s) => s.metric)])).toEqual([
      [['service'], ['errors_total', 'requests_total']],
      [['service', 'reason'], ['errors_total']],
      [['service'], ['requests_total']],
    ]);
  });

  it('does not take a label inside a string for a metric', () => {
    const analysis = analyseQuery('count(up{job="rate(fake_metric[5m])"})');
    expect(analysis.selectors.map((s) => s.metric)).toEqual(['up']);
  });

  it('throws a PromqlError for a Grafana variable outside a string', () => {
    expect(() => analyseQuery('rate(x[$window])')).toThrow(PromqlError);
  });
});
