/**
 * The generator against a real HTTP server on 127.0.0.1 (port 0), in short runs at modest rates. Latency
 * assertions are lower bounds only (what the server imposed): this machine is shared, upper bounds flake.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ENDPOINT_PATHS } from './endpoints.ts';
import {
  createLoadGenerator,
  type LoadGeneratorOptions,
  type LoadSummary,
  type LoadTarget,
} from './generator.ts';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

const servers: Server[] = [];

async function serve(handler: Handler): Promise<string> {
  const server = createServer(handler);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** A port nothing listens on (taken, then given back). */
async function closedPort(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return `http://127.0.0.1:${port}`;
}

async function closeServers(): Promise<void> {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function run(
  targets: readonly LoadTarget[],
  options: Partial<LoadGeneratorOptions> & { readonly durationMs: number },
): Promise<LoadSummary> {
  const gen = createLoadGenerator({ targets, rate: 50, path: ENDPOINT_PATHS.video, ...options });
  gen.start();
  await sleep(options.durationMs);
  return gen.stop();
}

afterEach(closeServers);

describe('createLoadGenerator over HTTP', () => {
  describe('classes every outcome (one run, six targets driven at once)', () => {
    const seen = new Map<string, { id: string; path: string }[]>();
    let summary: LoadSummary;

    beforeAll(async () => {
      const behaviours: Record<string, Handler> = {
        ok: (_req, res) => res.end('{}'),
        slow: (_req, res) => setTimeout(() => res.end('{}'), 200),
        stall: () => {},
        unavailable: (_req, res) => {
          res.statusCode = 503;
          res.end('{}');
        },
        degraded: (_req, res) => {
          res.setHeader('x-degraded', 'coin,like');
          res.end('{}');
        },
      };
      const base = await serve((req, res) => {
        const [, name = '', ...rest] = (req.url ?? '').split('/');
        const requests = seen.get(name) ?? [];
        requests.push({ id: String(req.headers['x-request-id']), path: `/${rest.join('/')}` });
        seen.set(name, requests);
        behaviours[name]?.(req, res);
      });
      const targets = Object.keys(behaviours).map((name) => ({ name, url: `${base}/${name}` }));
      targets.push({ name: 'closed', url: await closedPort() });
      summary = await run(targets, { rate: 40, timeoutMs: 400, durationMs: 1_200 });
      await closeServers();
    });

    it('2xx → ok', () => {
      expect(summary.targets.ok).toMatchObject({ errors: {}, degraded: 0, successRate: 1 });
      expect(summary.targets.ok?.ok).toBe(summary.targets.ok?.requests);
      expect(summary.targets.ok?.requests).toBeGreaterThanOrEqual(40);
    });

    it('a 200 ms server → p50 ≥ 200 ms', () => {
      expect(summary.targets.slow?.errors).toEqual({});
      expect(summary.targets.slow?.latencyMs?.p50).toBeGreaterThanOrEqual(200);
    });

    it('a server that stalls beyond the timeout → timeout, at no less than the timeout', () => {
      const stall = summary.targets.stall;
      expect(stall?.errors).toEqual({ timeout: stall?.requests });
      expect(stall?.latencyMs?.p50).toBeGreaterThanOrEqual(400);
    });

    it('503 → 5xx:503', () => {
      const unavailable = summary.targets.unavailable;
      expect(unavailable?.errors).toEqual({ '5xx:503': unavailable?.requests });
      expect(unavailable?.successRate).toBe(0);
    });

    it('2xx with x-degraded → degraded, which counts as success', () => {
      const degraded = summary.targets.degraded;
      expect(degraded).toMatchObject({ ok: 0, errors: {}, successRate: 1, degradedRate: 1 });
    });

    it('a closed port → connection', () => {
      const closed = summary.targets.closed;
      expect(closed?.errors).toEqual({ connection: closed?.requests });
      expect(closed?.requests).toBeGreaterThan(0);
    });

    it('sends every target the same requests, each with a recognisable request id', () => {
      const ok = seen.get('ok') ?? [];
      expect(ok.length).toBeGreaterThan(0);
      expect(ok[0]?.id).toMatch(/^chaoslab-load-[0-9a-f]{6}-ok-0$/);
      expect(ok[0]?.path).toMatch(/^\/api\/video\/\d+$/);
      // By arrival number: requests sent together may reach the server in either order.
      const arrival = (id: string) => Number(id.split('-').at(-1));
      const paths = (name: string) =>
        (seen.get(name) ?? [])
          .toSorted((a, b) => arrival(a.id) - arrival(b.id))
          .map((r) => `${arrival(r.id)} ${r.path}`);
      expect(paths('unavailable')).toEqual(paths('ok'));
      expect(paths('degraded')).toEqual(paths('ok'));
    });
  });

  it('achieves the asked rate: 100 rps for 2 s gives 200 sends, within 20%', async () => {
    const url = await serve((_req, res) => res.end('{}'));
    const summary = await run([{ name: 'ok', url }], { rate: 100, durationMs: 2_000 });
    const ok = summary.targets.ok;
    expect(ok?.achievedRps).toBeGreaterThan(80);
    expect(ok?.achievedRps).toBeLessThan(120);
    expect(ok?.requests).toBe(ok?.sent);
    const full = summary.seconds.filter((s) => s.durationMs === 1000);
    expect(full.length).toBeGreaterThanOrEqual(1);
    for (const second of full) expect(second.targets.ok?.sent).toBe(100);
  });

  it('shows a server pause in the tail: latency counts from the intended time, sends do not wait', async () => {
    // The server holds every request that arrives in the first 500 ms of each of its seconds until that
    // second's 500 ms mark. A closed-model client would send nothing meanwhile and record one slow request.
    const started = performance.now();
    let arrivedDuringPause = 0;
    const url = await serve((_req, res) => {
      const phase = (performance.now() - started) % 1000;
      if (phase < 500) arrivedDuringPause++;
      setTimeout(() => res.end('{}'), phase < 500 ? 500 - phase : 0);
    });
    const summary = await run([{ name: 'paused', url }], { rate: 100, durationMs: 2_000 });
    const paused = summary.targets.paused;
    expect(paused?.requests).toBeGreaterThanOrEqual(160);
    expect(arrivedDuringPause).toBeGreaterThanOrEqual(50);
    expect(paused?.latencyMs?.p99).toBeGreaterThanOrEqual(400);
  });

  it('drops sends when the in-flight cap is full, and says the run fell behind', async () => {
    const url = await serve(() => {});
    const summary = await run([{ name: 'stalled', url }], {
      rate: 50,
      maxInFlight: 5,
      timeoutMs: 300,
      durationMs: 500,
    });
    expect(summary.targets.stalled?.dropped).toBeGreaterThan(0);
    expect(summary.fellBehind).toBe(true);
    expect(summary.fellBehindReason).toMatch(/^stalled: \d+ of \d+ sends dropped \(in-flight cap 5 full\)/);
  });

  it('keeps phase windows apart: mark() starts a new one, each request counted in the window it was due in', async () => {
    let failing = false;
    const answered: { arrival: number; status: number }[] = [];
    const url = await serve((req, res) => {
      res.statusCode = failing ? 503 : 200;
      answered.push({
        arrival: Number(String(req.headers['x-request-id']).split('-').at(-1)),
        status: res.statusCode,
      });
      res.end('{}');
    });
    const rate = 50;
    const gen = createLoadGenerator({ targets: [{ name: 'gw', url }], rate, path: ENDPOINT_PATHS.video });
    gen.start('baseline');
    await sleep(500);
    failing = true;
    gen.mark('fault');
    await sleep(500);
    const summary = await gen.stop();

    expect(summary.windows.map((w) => w.name)).toEqual(['baseline', 'fault']);
    const [baseline, fault] = summary.windows;
    // What the server answered, sorted into windows by each request's intended time (arrival i at i/rate).
    const inFault = (arrival: number) => (arrival * 1000) / rate >= (fault?.startMs ?? 0);
    const failures = (window: boolean) =>
      answered.filter((a) => inFault(a.arrival) === window && a.status === 503);
    const requests = (window: boolean) => answered.filter((a) => inFault(a.arrival) === window).length;
    expect(baseline?.targets.gw?.requests).toBe(requests(false));
    expect(fault?.targets.gw?.requests).toBe(requests(true));
    expect(baseline?.targets.gw?.errors['5xx:503'] ?? 0).toBe(failures(false).length);
    expect(fault?.targets.gw?.errors['5xx:503']).toBe(failures(true).length);
    // Only sends that were late across the flip can differ from their window's answer.
    expect(fault?.targets.gw?.successRate).toBe(0);
    expect(baseline?.targets.gw?.ok).toBeGreaterThan(15);
  });
});
