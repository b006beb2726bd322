/**
 * k6's JSON output into the generator's summaries, fed with lines captured from real k6 v2.2.0 runs of
 * experiments/load/video-page.ts on the local lab (run as the k6 driver runs it; trimmed to the page and
 * dropped-iteration samples plus a few others): naive and resilient at 10 rps for 3 s with 40% 503s from
 * like and 150 ms on coin; and naive at 20 rps with one VU, so that k6 dropped arrivals.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { K6SampleTally } from './k6-samples.ts';

interface Point {
  readonly metric: string;
  readonly type: string;
  readonly data: {
    readonly time: string;
    readonly value: number;
    readonly tags: Record<string, string>;
    readonly metadata?: Record<string, string>;
  };
}

function lines(name: string): string[] {
  return readFileSync(new URL(`./__fixtures__/${name}`, import.meta.url), 'utf8')
    .split('\n')
    .filter(Boolean);
}

function points(all: readonly string[], metric: string): Point[] {
  return all
    .map((line) => JSON.parse(line) as Point)
    .filter((p) => p.type === 'Point' && p.metric === metric);
}

const SAMPLES = lines('k6-samples.jsonl');
const SENT = points(SAMPLES, 'page_sent');
const OUTCOMES = points(SAMPLES, 'page_duration');
const sendTimes = SENT.map((p) => Date.parse(p.data.time)).sort((a, b) => a - b);
/** Where the driver would start its clock: a little before k6's first request. */
const T0 = (sendTimes[0] as number) - 300;
const END = (sendTimes.at(-1) as number) + 2_000;

function tallyOf(feed: readonly string[], options: { mark?: number } = {}): K6SampleTally {
  const tally = new K6SampleTally({
    targets: ['naive', 'resilient'],
    rate: 10,
    timeoutMs: 1_000,
    vus: 4,
    t0: T0,
    window: 'warmup',
  });
  if (options.mark !== undefined) tally.mark('measure', options.mark);
  for (const line of feed) tally.feed(line);
  return tally;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)] as number;
}

describe('K6SampleTally', () => {
  it('counts every request of each gateway with its class and latency', () => {
    const tally = tallyOf(SAMPLES);
    tally.stop(END);
    const summary = tally.finish();
    for (const gateway of ['naive', 'resilient']) {
      const sent = SENT.filter((p) => p.data.tags.gateway === gateway);
      const outcomes = OUTCOMES.filter((p) => p.data.tags.gateway === gateway);
      const stats = summary.targets[gateway];
      expect(stats?.sent).toBe(sent.length);
      expect(stats?.requests).toBe(outcomes.length);
      expect(stats?.cancelled).toBe(0);
      const byClass: Record<string, number> = {};
      for (const p of outcomes)
        byClass[p.data.tags.class as string] = (byClass[p.data.tags.class as string] ?? 0) + 1;
      expect(
        (stats?.ok ?? 0) +
          (stats?.degraded ?? 0) +
          Object.values(stats?.errors ?? {}).reduce((a, b) => a + b, 0),
      ).toBe(outcomes.length);
      expect(stats?.ok).toBe(byClass.ok ?? 0);
      expect(stats?.degraded).toBe(byClass.degraded ?? 0);
      expect(stats?.errors).toEqual(
        Object.fromEntries(Object.entries(byClass).filter(([c]) => c !== 'ok' && c !== 'degraded')),
      );
      // HDR histograms keep three significant digits.
      const p50 = median(outcomes.map((p) => p.data.value));
      expect(Math.abs((stats?.latencyMs?.p50 ?? 0) - p50) / p50).toBeLessThan(0.002);
      expect(stats?.fellBehind).toBe(false);
    }
    expect(summary.targets.naive?.errors).toHaveProperty('5xx:503');
    expect(summary.targets.resilient?.degraded).toBeGreaterThan(0);
    expect(tally.unreadable).toBe(0);
  });

  it('places each request in the window and the second of its send', () => {
    const mark = sendTimes[Math.floor(sendTimes.length / 2)] as number;
    const tally = tallyOf(SAMPLES, { mark });
    tally.stop(END);
    const summary = tally.finish();
    expect(summary.windows.map((w) => w.name)).toEqual(['warmup', 'measure']);
    const after = SENT.filter(
      (p) => p.data.tags.gateway === 'naive' && Date.parse(p.data.time) >= mark,
    ).length;
    expect(summary.windows[1]?.targets.naive?.sent).toBe(after);
    expect(summary.windows[1]?.startMs).toBe(mark - T0);

    const perSecond = new Map<number, number>();
    for (const p of SENT.filter((s) => s.data.tags.gateway === 'resilient')) {
      const second = Math.floor((Date.parse(p.data.time) - T0) / 1_000);
      perSecond.set(second, (perSecond.get(second) ?? 0) + 1);
    }
    expect(summary.seconds.length).toBe(Math.ceil((END - T0) / 1_000));
    for (const s of summary.seconds) expect(s.targets.resilient?.sent).toBe(perSecond.get(s.second) ?? 0);
    expect(summary.seconds.at(-1)?.durationMs).toBe((END - T0) % 1_000 || 1_000);
  });

  it('reports a second once it is over, its requests answered and the slack passed — once', () => {
    const tally = tallyOf(SAMPLES);
    const firstEnd = T0 + 1_000;
    expect(tally.completeSeconds(firstEnd + 999)).toEqual([]);
    const first = tally.completeSeconds(firstEnd + 1_000);
    expect(first.map((s) => s.second)).toEqual([0]);
    expect(tally.completeSeconds(firstEnd + 1_000)).toEqual([]);
    const rest = tally.completeSeconds(END + 10_000);
    expect(rest.map((s) => s.second)).toEqual(rest.map((_, i) => i + 1));
    const sent = [...first, ...rest].reduce((sum, s) => sum + (s.targets.naive?.sent ?? 0), 0);
    expect(sent).toBe(SENT.filter((p) => p.data.tags.gateway === 'naive').length);
  });

  it('holds a second back while one of its requests has no outcome, and cancels it when k6 is gone', () => {
    const lastSend = SENT.at(-1) as Point;
    const rid = lastSend.data.metadata?.rid as string;
    const withoutLastOutcome = SAMPLES.filter(
      (line) => !(line.includes('"page_duration"') && line.includes(`"${rid}"`)),
    );
    const tally = tallyOf(withoutLastOutcome);
    expect(tally.inFlight).toBe(1);
    const second = Math.floor((Date.parse(lastSend.data.time) - T0) / 1_000);
    const reported = tally.completeSeconds(END + 10_000);
    expect(reported.map((s) => s.second)).toEqual(Array.from({ length: second }, (_, i) => i));
    tally.stop(END);
    const summary = tally.finish();
    expect(summary.targets[lastSend.data.tags.gateway as string]?.cancelled).toBe(1);
  });

  it('ignores requests sent after the stop, and their outcomes', () => {
    const stopAt = sendTimes[sendTimes.length - 10] as number;
    const tally = tallyOf([]);
    tally.stop(stopAt);
    for (const line of SAMPLES) tally.feed(line);
    const summary = tally.finish();
    const before = SENT.filter((p) => Date.parse(p.data.time) < stopAt).length;
    expect((summary.targets.naive?.sent ?? 0) + (summary.targets.resilient?.sent ?? 0)).toBe(before);
    expect((summary.targets.naive?.cancelled ?? 0) + (summary.targets.resilient?.cancelled ?? 0)).toBe(0);
    expect(summary.durationMs).toBe(stopAt - T0);
  });

  it('places an outcome whose send was never seen by its own send time', () => {
    const tally = tallyOf(SAMPLES.filter((line) => !line.startsWith('{"metric":"page_sent"')));
    tally.stop(END);
    const summary = tally.finish();
    expect(summary.targets.naive?.sent).toBe(OUTCOMES.filter((p) => p.data.tags.gateway === 'naive').length);
    expect(summary.targets.naive?.requests).toBe(summary.targets.naive?.sent);
  });

  it('counts lines it cannot read, and skips the other metrics', () => {
    const tally = tallyOf([
      '{"metric":"page_sent","type":"Point","data":{"time":"not json',
      '{"metric":"page_duration","type":"Point","data":{"time":"2026-11-24T13:57:00Z","value":5,"tags":{"gateway":"naive","class":"weird"},"metadata":{"rid":"x"}}}',
      '{"metric":"http_req_duration","type":"Point","data":{}}',
      'garbage',
    ]);
    expect(tally.unreadable).toBe(2);
  });

  it('maps dropped iterations to dropped sends: the generator fell behind', () => {
    const dropped = lines('k6-samples-dropped.jsonl');
    const drops = points(dropped, 'dropped_iterations').reduce((sum, p) => sum + p.data.value, 0);
    const sent = points(dropped, 'page_sent').length;
    expect(drops).toBeGreaterThan(0);
    const first = Math.min(...points(dropped, 'page_sent').map((p) => Date.parse(p.data.time)));
    const tally = new K6SampleTally({
      targets: ['naive'],
      rate: 20,
      timeoutMs: 1_000,
      vus: 1,
      t0: first - 100,
      window: 'main',
    });
    for (const line of dropped) tally.feed(line);
    tally.stop(first + 10_000);
    const summary = tally.finish();
    expect(summary.targets.naive).toMatchObject({ sent, dropped: drops, fellBehind: true, lateShare: 0 });
    expect(summary.fellBehind).toBe(true);
    expect(summary.fellBehindReason).toBe(
      `naive: ${drops} of ${sent + drops} arrivals dropped (k6 had no free VU of 1)`,
    );
    expect(summary.seconds.some((s) => s.targets.naive?.fellBehind)).toBe(true);
  });
});
