/**
 * The k6 scripts' Node-free modules (experiments/load/config.ts and summary.ts): what they know of the lab
 * must match the lab's own sources, they must class responses as the built-in generator does, and their
 * summaries must read k6's real summary data right (fixtures captured from k6 v2.2.0 runs on the local lab:
 * video-page.ts with 40% 503s from like and 150 ms on coin; video-page-ramp.ts on resilient, 100 to 600 rps).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  arrivalRate,
  CHECKS,
  classifyPage,
  DEFAULT_TIMEOUT,
  durationFrom,
  gatewaysFrom,
  LAB_GATEWAYS,
  METRICS,
  positiveFrom,
  SLO,
  VIDEO_IDS,
  videoPath,
  vusFor,
} from '../../experiments/load/config.ts';
import {
  type K6SummaryData,
  kneeText,
  lensThresholds,
  rampDigest,
  rampText,
  selector,
  sloThresholds,
  videoPageDigest,
  videoPageText,
} from '../../experiments/load/summary.ts';
import { seededRandom } from '../../services/lib/random.ts';
import { DATASET, STRATEGIES, topology } from '../../services/topology.ts';
import { parseDuration } from '../duration.ts';
import { DEFAULT_PORT_BASE, labLayout } from '../local/layout.ts';
import { LIMITS } from '../runner/experiment-schema.ts';
import { classifyResponse } from './classify.ts';
import { ENDPOINT_PATHS } from './endpoints.ts';

const fixture = (name: string) =>
  JSON.parse(readFileSync(new URL(`./__fixtures__/${name}`, import.meta.url), 'utf8')) as K6SummaryData;

describe('what the k6 scripts know about the lab', () => {
  it('default gateways are the local lab’s, at its default port base, in strategy order', () => {
    const layout = labLayout(DEFAULT_PORT_BASE);
    expect(LAB_GATEWAYS).toEqual(STRATEGIES.map((s) => ({ name: s, url: layout.gateways[s].url })));
  });

  it('the SLO’s p99 is the gateway’s page budget, and the video ids are the data set’s', () => {
    expect(SLO.p99Ms).toBe(topology.gateway.defaultBudgetMs);
    expect(VIDEO_IDS).toEqual({ first: DATASET.firstAid, count: DATASET.videos });
    expect(parseDuration(DEFAULT_TIMEOUT)).toBe(LIMITS.timeoutMs.default);
  });

  it('draws the same paths as the built-in generator from the same random numbers', () => {
    const a = seededRandom(7);
    const b = seededRandom(7);
    for (let i = 0; i < 500; i++) expect(videoPath(a)).toBe(ENDPOINT_PATHS.video(b));
    expect(videoPath(() => 0)).toBe('/api/video/1');
    expect(videoPath(() => 0.999_999)).toBe('/api/video/1200');
  });

  it('classes responses with lab/load/classify.ts’s names', () => {
    for (const status of [200, 204, 299, 301, 400, 404, 429, 500, 502, 503, 504, 599]) {
      for (const header of [undefined, '', ' ', 'coin', 'coin,vip']) {
        expect(classifyPage(status, 0, header), `${status} ${header}`).toBe(classifyResponse(status, header));
      }
    }
    // No response at all: k6's error code says whether its own timeout fired (1050).
    expect(classifyPage(0, 1050, undefined)).toBe('timeout');
    expect(classifyPage(0, 1212, undefined)).toBe('connection');
    expect(classifyPage(0, 1000, undefined)).toBe('connection');
  });
});

describe('reading the environment', () => {
  it('GATEWAYS: name=url pairs; unset means the local lab', () => {
    expect(gatewaysFrom({})).toEqual(LAB_GATEWAYS);
    expect(gatewaysFrom({ GATEWAYS: ' naive=http://127.0.0.1:19080/ , resilient=http://h:1/base' })).toEqual([
      { name: 'naive', url: 'http://127.0.0.1:19080' },
      { name: 'resilient', url: 'http://h:1/base' },
    ]);
    expect(() => gatewaysFrom({ GATEWAYS: 'naive:http://x' })).toThrow(
      'GATEWAYS: "naive:http://x" is not name=url; expected a comma-separated list such as naive=http://127.0.0.1:18080,resilient=http://127.0.0.1:18082',
    );
    expect(() => gatewaysFrom({ GATEWAYS: 'a=http://x,a=http://y' })).toThrow(
      'GATEWAYS: a is listed twice; expected each gateway once',
    );
  });

  it('durations use lab/duration.ts’s grammar; numbers must be positive', () => {
    for (const text of ['300ms', '1.5s', '30s', '2m', '1h']) {
      expect(durationFrom({ D: text }, 'D', '1s')).toBe(parseDuration(text));
    }
    expect(durationFrom({}, 'D', '2s')).toBe(2_000);
    expect(() => durationFrom({ DURATION: '30' }, 'DURATION', '30s')).toThrow(
      'DURATION: "30" is not a duration; expected a number with a unit (ms, s, m, h), e.g. 30s',
    );
    expect(positiveFrom({ RATE: '12.5' }, 'RATE', 30, 'a rate')).toBe(12.5);
    expect(positiveFrom({}, 'RATE', 30, 'a rate')).toBe(30);
    expect(() => positiveFrom({ RATE: '-1' }, 'RATE', 30, 'a number of requests per second')).toThrow(
      'RATE: "-1" is not a number of requests per second; expected a positive number, e.g. 30',
    );
  });

  it('a fractional rate keeps its spacing; VUs cover every request running to its timeout', () => {
    expect(arrivalRate(30)).toEqual({ rate: 30, timeUnit: '1s' });
    expect(arrivalRate(12.5)).toEqual({ rate: 12_500, timeUnit: '1000s' });
    expect(vusFor(30, 2_000)).toBeGreaterThanOrEqual(60);
    expect(vusFor(1, 100)).toBeGreaterThanOrEqual(1);
  });
});

describe('thresholds', () => {
  const gateways = LAB_GATEWAYS.slice(0, 2);

  it('encode the SLO per gateway', () => {
    expect(sloThresholds(gateways)).toEqual({
      'page_success{gateway:naive}': ['rate>=0.99'],
      'page_duration{gateway:naive}': ['p(99)<800'],
      'page_success{gateway:parallel}': ['rate>=0.99'],
      'page_duration{gateway:parallel}': ['p(99)<800'],
    });
  });

  it('lenses always pass and never replace an SLO threshold', () => {
    const lens = lensThresholds(gateways);
    for (const key of Object.keys(sloThresholds(gateways))) expect(lens).not.toHaveProperty(key);
    expect(lens[selector(METRICS.duration, { gateway: 'naive', class: '5xx:503' })]).toEqual(['max>=0']);
    expect(lens[selector('checks', { gateway: 'naive', check: CHECKS.complete })]).toEqual(['rate>=0']);
    for (const list of Object.values(lens)) expect(list[0]).toMatch(/>=0$/);
  });
});

describe('the video page summary, from a real k6 summary', () => {
  const data = fixture('k6-video-page-summary-data.json');
  const gateways = LAB_GATEWAYS.filter((g) => g.name !== 'parallel');
  const digest = videoPageDigest(data, gateways, 10);

  it('counts each gateway’s pages by class, with their checks', () => {
    const naive = digest.gateways.naive;
    expect(naive).toMatchObject({
      sent: 31,
      pages: 31,
      dropped: 0,
      classes: { ok: 14, '5xx:503': 17 },
      checks: { 'status is 200': { passes: 14, fails: 17 }, 'page complete': { passes: 14, fails: 17 } },
    });
    expect(naive?.successRate).toBeCloseTo(14 / 31);
    expect(naive?.latencyMs?.p99).toBeCloseTo(181.322, 3);
    const resilient = digest.gateways.resilient;
    expect(resilient?.successRate).toBe(1);
    expect(resilient?.degradedRate).toBeCloseTo(28 / 31);
    expect(resilient?.checks['page complete']).toEqual({ passes: 3, fails: 28 });
  });

  it('takes the SLO verdict from k6’s thresholds', () => {
    expect(digest.gateways.naive?.slo).toMatchObject({
      ok: false,
      successRate: { ok: false },
      p99: { ok: true },
    });
    expect(digest.gateways.resilient?.slo.ok).toBe(true);
    expect(digest.sloHeld).toBe(false);
  });

  it('prints a table a person can read', () => {
    const text = videoPageText(digest, 1_000, 'results/k6/x.json');
    expect(text).toContain('video page · 10 rps to each gateway for 3.2s · timeout 1s');
    expect(text).toMatch(/\n {2}naive +31 +9\.7 +45\.16% +0% .* 5xx:503 17 +✗ success 45\.16%\n/);
    expect(text).toMatch(/\n {2}resilient +31 +9\.7 +100% +90\.32% .* 0 +✓\n/);
    expect(text).toContain('SLO broken: k6 exits 99');
    expect(text).toContain('summary JSON: results/k6/x.json');
  });
});

describe('the ramp summary, from a real k6 summary', () => {
  const data = fixture('k6-ramp-summary-data.json');
  const rates = [100, 200, 300, 400, 500, 600];
  const digest = rampDigest(data, [{ name: 'resilient', url: 'http://127.0.0.1:21082' }], rates, 4_000);

  it('judges the SLO step by step and names the knee', () => {
    const resilient = digest.gateways.resilient;
    expect(resilient?.steps.map((s) => [s.rate, s.sent, s.slo.ok])).toEqual([
      [100, 398, true],
      [200, 799, true],
      [300, 1199, true],
      [400, 1599, false],
      [500, 1998, false],
      [600, 2400, false],
    ]);
    expect(resilient).toMatchObject({ heldUpToRps: 300, brokeAtRps: 400 });
    expect(rampText(digest, 2_000, 'r.json')).toContain(
      'knee: between 300 and 400 rps — the SLO held at 300 rps and broke at 400 rps',
    );
  });

  it('says when the knee was not reached, or was below the first step', () => {
    const base = { steps: [], dropped: 0 };
    expect(kneeText({ ...base, heldUpToRps: 600, brokeAtRps: null })).toBe(
      'knee: not reached — the SLO held at every step, up to 600 rps (raise STEPS or STEP_RPS)',
    );
    expect(kneeText({ ...base, heldUpToRps: null, brokeAtRps: 100 })).toBe(
      'knee: below 100 rps — the SLO broke at the first step',
    );
  });
});
