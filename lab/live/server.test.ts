import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { createServer, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { LiveModel } from './model.ts';
import type { LiveView } from './page.ts';
import { type LiveServer, startLiveServer } from './server.ts';

function model(): LiveModel {
  const m = new LiveModel({
    feed: 'run',
    title: 'server-test',
    gateways: ['naive'],
    latencyNote: 'note',
    xTitle: 'seconds since load started',
    position: () => 3,
  });
  m.addSecond({
    t: 1,
    gateways: { naive: { rps: 20, successRate: 1, degradedRate: 0, p50: 4, p95: 9, p99: 12, errors: 0 } },
  });
  return m;
}

/** Reads Server-Sent Events off a real connection, frame by frame. */
async function openEvents(url: string) {
  const controller = new AbortController();
  const res = await fetch(`${url}events`, { signal: controller.signal });
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  const next = async (timeoutMs = 5_000): Promise<{ event: string; data: string } | undefined> => {
    const deadline = Date.now() + timeoutMs;
    for (let i = 0; i < 1_000; i++) {
      const end = buffer.indexOf('\n\n');
      if (end >= 0) {
        const frame = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const event = /^event: (.*)$/m.exec(frame)?.[1];
        const data = /^data: (.*)$/m.exec(frame)?.[1];
        if (event !== undefined && data !== undefined) return { event, data };
        continue;
      }
      if (Date.now() > deadline) throw new Error('no event in time');
      const chunk = await reader.read();
      if (chunk.done) return undefined;
      buffer += decoder.decode(chunk.value, { stream: true });
    }
    return undefined;
  };
  return { res, next, close: () => controller.abort() };
}

function busyPort(): Promise<{ server: Server; port: number }> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      resolve({ server, port: typeof address === 'object' && address ? address.port : 0 });
    });
  });
}

const open: LiveServer[] = [];
afterEach(async () => {
  for (const server of open.splice(0)) await server.close();
});

async function serve(m: LiveModel, options: Partial<Parameters<typeof startLiveServer>[0]> = {}) {
  const server = await startLiveServer({ model: m, port: 0, throttleMs: 10, ...options });
  open.push(server);
  return server;
}

describe('the live server', () => {
  it('serves the page with a CSP that allows only its own script, style and origin', async () => {
    const server = await serve(model());
    const res = await fetch(server.url);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const csp = res.headers.get('content-security-policy') ?? '';
    const body = await res.text();
    const script = /<script>([\s\S]*?)<\/script>/.exec(body)?.[1] ?? '';
    const style = /<style>([\s\S]*?)<\/style>/.exec(body)?.[1] ?? '';
    const hash = (text: string) => `'sha256-${createHash('sha256').update(text).digest('base64')}'`;
    expect(csp.split('; ')).toEqual([
      "default-src 'none'",
      `script-src ${hash(script)}`,
      `style-src ${hash(style)}`,
      "connect-src 'self'",
      "img-src 'self'",
      "base-uri 'none'",
      "form-action 'none'",
      "frame-ancestors 'none'",
    ]);
    // Nothing the page could fetch from elsewhere, and no inline handlers or style attributes to allow.
    expect(body).not.toMatch(/\b(src|href)="(?!#)/);
    expect(body).not.toMatch(/ style="| on[a-z]+="/);
    // The state is in the page before any event arrives: the chart is drawn.
    expect(body).toContain('data-series="naive p99"');
    expect(body).toContain('server-test');
  });

  it('sends the whole state on connect, then every change, and counts the pages watching', async () => {
    const watchers: number[] = [];
    const m = model();
    const server = await serve(m, { onWatchers: (n) => watchers.push(n) });
    const events = await openEvents(server.url);
    expect(events.res.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    const first = await events.next();
    expect(first?.event).toBe('view');
    const view = JSON.parse(first!.data) as LiveView;
    expect(Object.keys(view.regions)).toEqual(['head', 'stage', 'cards', 'side', 'latency', 'rates', 'foot']);
    expect(view.regions.cards).toContain('data-gateway="naive"');
    expect(server.watchers()).toBe(1);

    m.setStage({ label: 'fault', faults: ['latency on coin'], endsAt: Date.now() + 5_000, tone: 'fault' });
    m.note('a second change in the same moment');
    const second = JSON.parse((await events.next())!.data) as LiveView;
    // Changes close together are sent as one update with the latest state.
    expect(second.version).toBe(view.version + 2);
    expect(second.regions.stage).toContain('data-stage="fault"');
    expect(second.regions.stage).toMatch(/id="time-left" class="left" data-ends-at="\d+">5 s left/);

    events.close();
    const deadline = Date.now() + 3_000;
    while (server.watchers() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(watchers).toEqual([1, 0]);
  });

  it('delivers the last change before it closes, then ends the stream', async () => {
    const m = model();
    const server = await startLiveServer({ model: m, port: 0, throttleMs: 5_000 });
    const events = await openEvents(server.url);
    await events.next();
    m.setOutcome({ status: 'completed', verdict: 'held', claims: [] });
    await server.close();
    const last = await events.next();
    expect(JSON.parse(last!.data).regions.side).toContain('data-verdict="held"');
    expect(await events.next()).toBeUndefined();
  });

  it('moves to a free port when asked to and the port is taken, and refuses otherwise', async () => {
    const busy = await busyPort();
    try {
      const moved = await serve(model(), { port: busy.port, fallback: true });
      expect(moved.fellBack).toBe(true);
      expect(moved.port).not.toBe(busy.port);
      expect((await fetch(moved.url)).status).toBe(200);
      await expect(startLiveServer({ model: model(), port: busy.port })).rejects.toMatchObject({
        code: 'EADDRINUSE',
      });
    } finally {
      busy.server.close();
    }
  });

  it('answers only to its own host names, only GET, and says where the page is', async () => {
    const server = await serve(model());
    const status = (method: string, path: string, host?: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = request(
          { host: '127.0.0.1', port: server.port, method, path, headers: host ? { host } : {} },
          (res) => {
            let body = '';
            res.on('data', (c: Buffer) => {
              body += c.toString();
            });
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
          },
        );
        req.on('error', reject);
        req.end();
      });
    expect((await status('GET', '/', 'evil.example:80')).status).toBe(403);
    expect((await status('GET', '/', `localhost:${server.port}`)).status).toBe(200);
    expect(await status('POST', '/')).toMatchObject({ status: 405 });
    expect(await status('GET', '/nope')).toEqual({
      status: 404,
      body: 'nothing at /nope: the live page is at /\n',
    });
    const state = await fetch(`${server.url}state.json`);
    expect(await state.json()).toMatchObject({ feed: 'run', title: 'server-test', totals: { naive: 20 } });
  });
});
