/**
 * The scheduler and the bookkeeping, with fake timers and a fake transport: exact counts, and the
 * generator's own stalls made on purpose. The real-HTTP behaviour is in generator.http.test.ts.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { seededRandom } from '../../services/lib/random.ts';
import { classifyFailure, classifyResponse } from './classify.ts';
import { ENDPOINT_PATHS } from './endpoints.ts';
import { createLoadGenerator, type LoadGeneratorOptions, type SecondSummary } from './generator.ts';
import type { SendRequest, SendResult, Transport } from './http-transport.ts';

const TARGETS = [
  { name: 'naive', url: 'http://127.0.0.1:1' },
  { name: 'resilient', url: 'http://127.0.0.1:2' },
];

/** Answers after `ms` of (fake) time, or rejects with the abort reason. */
function respondAfter(
  ms: number,
  signal: AbortSignal,
  result: SendResult = { status: 200, degraded: undefined },
) {
  return new Promise<SendResult>((resolve, reject) => {
    const timer = setTimeout(() => resolve(result), ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(new Error('aborted'));
    });
  });
}

function fakeTransport(respond: (request: SendRequest) => Promise<SendResult>) {
  const sent: SendRequest[] = [];
  const transport: Transport = {
    send(request) {
      sent.push(request);
      return respond(request);
    },
    close: async () => {},
    destroy: async () => {},
  };
  return { sent, transport };
}

function generator(options: Partial<LoadGeneratorOptions> & Pick<LoadGeneratorOptions, 'transport'>) {
  return createLoadGenerator({
    targets: TARGETS,
    rate: 10,
    path: ENDPOINT_PATHS.video,
    clock: () => Date.now(),
    requestIdPrefix: 'test',
    ...options,
  });
}

/** Stops, letting fake time run so requests in flight can finish (stop waits for them). */
async function stopLetting(gen: ReturnType<typeof generator>, ms: number) {
  const stopped = gen.stop();
  stopped.catch(() => {});
  await vi.advanceTimersByTimeAsync(ms);
  return stopped;
}

beforeEach(() => {
  vi.useFakeTimers({ now: 1_000_000 });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('createLoadGenerator (fake time)', () => {
  it('sends arrival i at t0 + i/rate to every target, the same path to each, with a request id', async () => {
    const { sent, transport } = fakeTransport((r) => respondAfter(5, r.signal));
    const gen = generator({ rate: 10, transport });
    gen.start();
    await vi.advanceTimersByTimeAsync(999);
    const summary = await gen.stop();

    // Arrivals at 0, 100, …, 900 ms: ten per target.
    expect(summary.targets.naive).toMatchObject({ sent: 10, requests: 10, ok: 10, dropped: 0, late: 0 });
    expect(summary.targets.resilient).toMatchObject({ sent: 10, requests: 10, ok: 10 });
    expect(sent.map((r) => `${r.target.name} ${r.headers['x-request-id']}`).slice(0, 4)).toEqual([
      'naive test-naive-0',
      'resilient test-resilient-0',
      'naive test-naive-1',
      'resilient test-resilient-1',
    ]);
    const paths = (name: string) => sent.filter((r) => r.target.name === name).map((r) => r.path);
    expect(paths('naive')).toEqual(paths('resilient'));
    const random = seededRandom(20_190_601);
    expect(paths('naive')).toEqual(Array.from({ length: 10 }, () => ENDPOINT_PATHS.video(random)));
    // HDR reports the top of the value's bucket: within 0.1% (3 significant digits).
    expect(summary.targets.naive?.latencyMs?.p50).toBeCloseTo(5, 1);
    expect(summary.targets.naive?.latencyMs?.max).toBeCloseTo(5, 1);
    expect(summary.fellBehind).toBe(false);
  });

  it('does not wait for slow responses: arrivals keep their schedule (open model)', async () => {
    const { transport } = fakeTransport((r) => respondAfter(2_500, r.signal));
    const gen = generator({ rate: 20, timeoutMs: 5_000, transport });
    gen.start();
    await vi.advanceTimersByTimeAsync(1_999);
    const summary = await stopLetting(gen, 2_500);
    expect(summary.targets.naive).toMatchObject({ sent: 40, requests: 40, late: 0 });
    expect(summary.targets.naive?.latencyMs?.p50).toBeGreaterThanOrEqual(2_500);
    expect(summary.targets.naive?.latencyMs?.p50).toBeLessThan(2_500 * 1.001);
  });

  it('measures latency from the intended time when the generator itself stalls, and counts late sends', async () => {
    const { transport } = fakeTransport((r) => respondAfter(1, r.signal));
    const gen = generator({ rate: 100, transport });
    gen.start();
    await vi.advanceTimersByTimeAsync(500);
    // The event loop is blocked for 300 ms: no timer runs, the clock moves on.
    vi.setSystemTime(Date.now() + 300);
    await vi.advanceTimersByTimeAsync(199);
    const summary = await gen.stop();
    const naive = summary.targets.naive;
    // 100 arrivals in the first second, none skipped; of the 30 due during the stall, those
    // due in its first 250 ms went out more than 50 ms late.
    expect(naive).toMatchObject({ sent: 100, requests: 100, dropped: 0 });
    expect(naive?.late).toBeGreaterThanOrEqual(24);
    expect(naive?.latencyMs?.max).toBeGreaterThanOrEqual(290);
    expect(naive?.latencyMs?.p50).toBeLessThan(5);
    expect(summary.fellBehind).toBe(true);
    expect(summary.fellBehindReason).toMatch(
      /^naive: \d+% of sends more than 50 ms late \(limit 1%\); resilient: /,
    );
  });

  it('drops sends beyond the in-flight cap and says the run fell behind', async () => {
    const { transport } = fakeTransport((r) => respondAfter(60_000, r.signal));
    const gen = generator({ rate: 10, maxInFlight: 3, timeoutMs: 1_000, transport });
    gen.start();
    await vi.advanceTimersByTimeAsync(999);
    const summary = await stopLetting(gen, 1_000);
    expect(summary.targets.naive).toMatchObject({ sent: 3, dropped: 7, requests: 3, errors: { timeout: 3 } });
    expect(summary.fellBehind).toBe(true);
    expect(summary.fellBehindReason).toBe(
      'naive: 7 of 10 sends dropped (in-flight cap 3 full); resilient: 7 of 10 sends dropped (in-flight cap 3 full)',
    );
  });

  it('classes a request without an answer by its deadline as a timeout, with the deadline as latency', async () => {
    const { transport } = fakeTransport((r) => respondAfter(60_000, r.signal));
    const gen = generator({ rate: 10, timeoutMs: 300, transport });
    gen.start();
    await vi.advanceTimersByTimeAsync(99);
    const summary = await stopLetting(gen, 300);
    expect(summary.targets.naive).toMatchObject({ requests: 1, errors: { timeout: 1 }, successRate: 0 });
    expect(summary.targets.naive?.latencyMs?.max).toBe(300);
  });

  it('keeps stats per window, a send due before a mark counting in the window it was due in', async () => {
    const degraded = { status: 200, degraded: 'coin' };
    const failed = { status: 503, degraded: undefined };
    const { transport } = fakeTransport((r) =>
      respondAfter(1, r.signal, r.headers['x-request-id']?.endsWith('-5') ? failed : degraded),
    );
    const gen = generator({ rate: 10, transport });
    gen.start('baseline');
    await vi.advanceTimersByTimeAsync(450);
    // Arrival 5 (due at 500 ms) goes out late, after the mark, yet belongs to `baseline`.
    vi.setSystemTime(Date.now() + 51);
    gen.mark('fault');
    await vi.advanceTimersByTimeAsync(548);
    const summary = await gen.stop();
    expect(summary.windows.map((w) => [w.name, w.startMs, w.targets.naive?.sent])).toEqual([
      ['baseline', 0, 6],
      ['fault', 501, 5],
    ]);
    expect(summary.windows[0]?.targets.naive).toMatchObject({
      requests: 6,
      degraded: 5,
      errors: { '5xx:503': 1 },
      successRate: 5 / 6,
      degradedRate: 5 / 6,
    });
    expect(summary.windows[1]?.targets.naive).toMatchObject({ requests: 5, degraded: 5, successRate: 1 });
  });

  it('reports each second once all its requests have an outcome, in order', async () => {
    const { transport } = fakeTransport((r) =>
      respondAfter(r.headers['x-request-id']?.endsWith('-9') ? 700 : 1, r.signal),
    );
    const gen = generator({ rate: 10, transport });
    const reported: SecondSummary[] = [];
    gen.onSecond((second) => reported.push(second));
    gen.start();
    await vi.advanceTimersByTimeAsync(1_010);
    // Arrival 9 (at 900 ms) is still out: second 0 is not complete yet.
    expect(reported).toEqual([]);
    await vi.advanceTimersByTimeAsync(600);
    expect(
      reported.map((s) => [s.second, s.targets.naive?.requests, s.targets.naive?.latencyMs?.max]),
    ).toEqual([[0, 10, 700]]);
    await vi.advanceTimersByTimeAsync(389);
    const summary = await gen.stop();
    expect(summary.seconds.map((s) => [s.second, s.durationMs, s.targets.naive?.sent])).toEqual([
      [0, 1000, 10],
      [1, 1000, 10],
    ]);
  });

  it('cancels requests in flight when stopped without draining, and counts them apart', async () => {
    const { transport } = fakeTransport((r) => respondAfter(60_000, r.signal));
    const gen = generator({ rate: 10, timeoutMs: 5_000, transport });
    gen.start();
    await vi.advanceTimersByTimeAsync(250);
    const summary = await gen.stop({ drain: false });
    expect(summary.targets.naive).toMatchObject({
      sent: 3,
      cancelled: 3,
      requests: 0,
      successRate: null,
      latencyMs: null,
    });
  });

  it('reports a throwing onSecond listener at stop, without stopping the load', async () => {
    const { transport } = fakeTransport((r) => respondAfter(1, r.signal));
    const gen = generator({ rate: 10, transport });
    gen.onSecond(() => {
      throw new Error('progress display broke');
    });
    gen.start();
    await vi.advanceTimersByTimeAsync(2_500);
    await expect(stopLetting(gen, 10)).rejects.toThrow('progress display broke');
  });

  it('counts a transport that throws as a connection failure and keeps going', async () => {
    const { transport } = fakeTransport(() => {
      throw new Error('socket exploded');
    });
    const gen = generator({ rate: 10, transport });
    gen.start();
    await vi.advanceTimersByTimeAsync(999);
    const summary = await gen.stop();
    expect(summary.targets.naive).toMatchObject({ sent: 10, requests: 10, errors: { connection: 10 } });
  });

  it('refuses options that cannot describe a load', () => {
    const { transport } = fakeTransport((r) => respondAfter(1, r.signal));
    expect(() => generator({ rate: 0, transport })).toThrow('rate must be a positive number, got 0');
    expect(() => generator({ targets: [], transport })).toThrow('at least one target is needed');
    expect(() => generator({ targets: [TARGETS[0]!, TARGETS[0]!], transport })).toThrow(
      'target names must be unique',
    );
  });
});

describe('classify', () => {
  it.each([
    [200, undefined, 'ok'],
    [200, '', 'ok'],
    [200, 'coin,like', 'degraded'],
    [204, ['vip'], 'degraded'],
    [404, undefined, '4xx'],
    [503, undefined, '5xx:503'],
    [504, 'coin', '5xx:504'],
    [302, undefined, 'http:302'],
  ] as const)('%d with x-degraded %j is %s', (status, header, expected) => {
    expect(classifyResponse(status, header as string | string[] | undefined)).toBe(expected);
  });

  it('tells a timeout from a connection failure', () => {
    expect(classifyFailure(new Error('aborted'), true)).toBe('timeout');
    expect(classifyFailure(Object.assign(new Error('x'), { code: 'UND_ERR_HEADERS_TIMEOUT' }), false)).toBe(
      'timeout',
    );
    expect(classifyFailure(Object.assign(new Error('x'), { code: 'ECONNREFUSED' }), false)).toBe(
      'connection',
    );
    expect(classifyFailure(Object.assign(new Error('x'), { code: 'ECONNRESET' }), false)).toBe('connection');
  });
});
