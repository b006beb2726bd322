/**
 * The live page's HTTP server, on loopback: `GET /` the page, `GET /events` its updates as Server-Sent
 * Events, `GET /state.json` the state itself (for scripts and tests).
 *
 * Server-Sent Events rather than polling: the page changes when the run does (a second measured, a phase
 * begun), the browser reconnects by itself after a hiccup, and every connection starts with the whole
 * state, so a reload or a late projector shows everything there is. Updates are rendered at most every
 * `throttleMs`, once for all pages, and only while a page is connected.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { LOOPBACK } from '../local/layout.ts';
import type { LiveModel } from './model.ts';
import { CONTENT_SECURITY_POLICY, type LiveView, renderPage, renderView } from './page.ts';

export interface LiveServerOptions {
  readonly model: LiveModel;
  readonly port: number;
  /** @default 127.0.0.1 */
  readonly host?: string;
  /** When `port` is taken: serve on a free port instead (true) or fail (false). @default false */
  readonly fallback?: boolean;
  /** Told how many pages are connected whenever that changes: the lab feed measures only while watched. */
  readonly onWatchers?: (count: number) => void;
  /**
   * Changes within this window go out as one update. A run's page renders in the runner's process, beside
   * the load generator: a render of ten minutes of history takes tens of milliseconds, so not more often.
   * @default 500
   */
  readonly throttleMs?: number;
  /** A comment line that keeps idle connections (and proxies in between) from timing out. @default 15000 */
  readonly heartbeatMs?: number;
}

export interface LiveServer {
  /** `http://127.0.0.1:<port>/` */
  readonly url: string;
  readonly port: number;
  /** The port asked for was taken, and the server took a free one instead. */
  readonly fellBack: boolean;
  /** Pages connected right now. */
  watchers(): number;
  close(): Promise<void>;
}

const PAGE_HEADERS = {
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
} as const;

export async function startLiveServer(options: LiveServerOptions): Promise<LiveServer> {
  const { model } = options;
  const host = options.host ?? LOOPBACK;
  const throttleMs = options.throttleMs ?? 500;
  const clients = new Set<ServerResponse>();
  let pending: NodeJS.Timeout | undefined;
  let closed = false;

  const render = (): LiveView => renderView(model.snapshot());
  const frame = (view: LiveView) => `event: view\nid: ${view.version}\ndata: ${JSON.stringify(view)}\n\n`;

  const flush = () => {
    pending = undefined;
    if (clients.size === 0 || closed) return;
    const text = frame(render());
    for (const client of clients) client.write(text);
  };
  const unsubscribe = model.subscribe(() => {
    if (clients.size === 0 || pending || closed) return;
    pending = setTimeout(flush, throttleMs);
  });
  const heartbeat = setInterval(() => {
    for (const client of clients) client.write(': still here\n\n');
  }, options.heartbeatMs ?? 15_000);
  heartbeat.unref();

  const watchersChanged = () => {
    try {
      options.onWatchers?.(clients.size);
    } catch {
      // The feed's trouble is not the page's: the page keeps what it has.
    }
  };

  let allowedHosts = new Set<string>();
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    // A page on another site could rebind its name to 127.0.0.1 and read this one: only our own names pass.
    if (!allowedHosts.has(req.headers.host ?? '')) {
      return text(res, 403, `this page answers to ${[...allowedHosts].join(' and ')} only`);
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      return text(res, 405, `${req.method} is not served here: the live page is read-only`);
    }
    const url = new URL(req.url ?? '/', 'http://live');
    switch (url.pathname) {
      case '/':
        res.writeHead(200, { ...PAGE_HEADERS, 'content-type': 'text/html; charset=utf-8' });
        res.end(req.method === 'HEAD' ? undefined : renderPage(render()));
        return;
      case '/events':
        res.writeHead(200, {
          'content-type': 'text/event-stream; charset=utf-8',
          'cache-control': 'no-store',
          connection: 'keep-alive',
          'x-accel-buffering': 'no',
        });
        if (req.method === 'HEAD') return void res.end();
        // The whole state first: a page that (re)connects misses nothing.
        res.write(`retry: 2000\n\n${frame(render())}`);
        clients.add(res);
        watchersChanged();
        res.on('close', () => {
          if (clients.delete(res)) watchersChanged();
        });
        return;
      case '/state.json':
        res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
        res.end(req.method === 'HEAD' ? undefined : JSON.stringify(model.snapshot()));
        return;
      case '/favicon.ico':
        res.writeHead(204, { 'cache-control': 'max-age=86400' });
        res.end();
        return;
      default:
        return text(res, 404, `nothing at ${url.pathname}: the live page is at /`);
    }
  };

  const server = createServer(handle);
  const listen = (port: number) =>
    new Promise<number>((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      server.once('error', onError);
      server.listen({ port, host, exclusive: true }, () => {
        server.off('error', onError);
        resolve((server.address() as AddressInfo).port);
      });
    });

  let port: number;
  let fellBack = false;
  try {
    port = await listen(options.port);
  } catch (err) {
    if (!(options.fallback && (err as NodeJS.ErrnoException).code === 'EADDRINUSE')) {
      unsubscribe();
      clearInterval(heartbeat);
      throw err;
    }
    port = await listen(0);
    fellBack = true;
  }
  allowedHosts = new Set([`${host}:${port}`, `localhost:${port}`]);

  return {
    url: `http://${host}:${port}/`,
    port,
    fellBack,
    watchers: () => clients.size,
    close: async () => {
      if (closed) return;
      const unsent = pending !== undefined;
      clearTimeout(pending);
      // The last change (a run's verdict, often) still reaches the pages before the connections end.
      if (unsent) flush();
      closed = true;
      clearInterval(heartbeat);
      unsubscribe();
      const ended = [...clients].map((client) => new Promise<void>((done) => client.end(() => done())));
      clients.clear();
      await Promise.race([Promise.all(ended), new Promise((done) => setTimeout(done, 1_000).unref())]);
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

function text(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
  res.end(`${body}\n`);
}
