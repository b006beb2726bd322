import { type AddressInfo, createServer as createNetServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { backlogSkipReason, listenBacklog } from './__fixtures__/backlog.ts';
import { captureLog, untilTrue } from './__fixtures__/observe.ts';
import { errors } from './errors.ts';
import { createServiceApp, LISTEN_BACKLOG, type Listening, listen } from './service-app.ts';

const open: Listening[] = [];
const slow = { started: false, closed: false };
const slowStarted = () => slow.started;
const slowClosed = () => slow.closed;
afterEach(async () => {
  await Promise.all(open.splice(0).map((l) => l.close()));
});

/** A real service app on loopback with one route that answers and one that fails. */
async function serve(level: string) {
  const captured = captureLog(level);
  const { app, ctx, finalize } = createServiceApp({
    service: 'coin',
    instanceId: 'coin-test',
    log: captured.log,
    processMetrics: false,
  });
  app.get('/ok', (_req, res) => {
    res.json({ ok: true });
  });
  app.get('/busy', (_req, res) => {
    res.status(503).json({ error: 'shed' });
  });
  app.get('/boom', () => {
    throw errors.unavailable('BROKEN', 'it broke');
  });
  app.get('/slow', (_req, res) => {
    slow.started = true;
    res.on('close', () => {
      slow.closed = true;
    });
    setTimeout(() => {
      if (!res.destroyed) res.json({ late: true });
    }, 5_000).unref();
  });
  app.get('/says', (req, res) => {
    req.log.info({ said: 'hello' }, 'a handler speaks');
    res.json({ ok: true });
  });
  finalize();
  const listening = await listen(app, 0);
  open.push(listening);
  const call = async (path: string, id: string, headers: Record<string, string> = {}) => {
    const res = await fetch(`${listening.url}${path}`, { headers: { 'x-request-id': id, ...headers } });
    await res.arrayBuffer();
    return res.status;
  };
  const linesOf = (id: string) => captured.lines().filter((l) => l.reqId === id);
  const levelsOf = (id: string) =>
    captured
      .lines()
      .filter((l) => l.reqId === id)
      .map((l) => l.level);
  return { call, levelsOf, linesOf, ctx, url: listening.url };
}

describe('request log lines', () => {
  it('at info: a served call writes nothing; a refusal, an answered 5xx and an error each a line with its request id', async () => {
    const { call, levelsOf } = await serve('info');
    expect(await call('/ok', 'r-ok')).toBe(200);
    expect(await call('/nope', 'r-404')).toBe(404);
    expect(await call('/busy', 'r-503')).toBe(503);
    expect(await call('/boom', 'r-err')).toBe(503);
    expect(levelsOf('r-ok')).toEqual([]);
    expect(levelsOf('r-404')).toEqual([30]);
    expect(levelsOf('r-503')).toEqual([40]);
    expect(levelsOf('r-err')).toEqual([50]);
  });

  it('at debug: a served call writes its line too', async () => {
    const { call, levelsOf } = await serve('debug');
    expect(await call('/ok', 'r-ok')).toBe(200);
    expect(levelsOf('r-ok')).toEqual([20]);
  });
});

describe('a request log line', () => {
  it("says what pino-http's said: the request (signature abbreviated), the answer, the time taken", async () => {
    const { call, linesOf } = await serve('info');
    const signature = 'ab'.repeat(32);
    expect(await call('/nope?x=1', 'r-404', { 'x-lab-signature': signature })).toBe(404);
    const lines = linesOf('r-404');
    expect(lines).toHaveLength(1);
    const line = lines[0] ?? {};
    expect(line).toMatchObject({
      level: 30,
      msg: 'request completed',
      reqId: 'r-404',
      req: { method: 'GET', url: '/nope?x=1', headers: { 'x-request-id': 'r-404' } },
      res: { statusCode: 404, headers: { 'x-request-id': 'r-404' } },
    });
    expect(line.responseTime).toEqual(expect.any(Number));
    const shown = (line.req as { headers: Record<string, string> }).headers['x-lab-signature'];
    expect(shown).not.toBe(signature);
    expect(signature.startsWith(String(shown).replace(/…$/, ''))).toBe(true);
  });

  it('of an error carries the error and its stack; an answered 5xx carries none', async () => {
    const { call, linesOf } = await serve('info');
    expect(await call('/boom', 'r-err')).toBe(503);
    expect(await call('/busy', 'r-503')).toBe(503);
    const errored = linesOf('r-err')[0] ?? {};
    expect(errored).toMatchObject({ level: 50, msg: 'request errored', err: { message: 'it broke' } });
    expect(String((errored.err as { stack?: string } | undefined)?.stack)).toContain('service-app.test.ts');
    const [shed] = linesOf('r-503');
    expect(shed).toMatchObject({ level: 40, msg: 'request errored' });
    expect(shed).not.toHaveProperty('err');
  });

  it("gives a handler req.log, whose lines carry the request's id", async () => {
    const { call, linesOf } = await serve('info');
    expect(await call('/says', 'r-says')).toBe(200);
    expect(linesOf('r-says')).toEqual([
      expect.objectContaining({ msg: 'a handler speaks', said: 'hello', level: 30 }),
    ]);
  });

  it('times every answered request once, by route and status, and no call the caller left', async () => {
    const { call, ctx, url } = await serve('info');
    expect(await call('/ok', 'm-1')).toBe(200);
    expect(await call('/ok', 'm-2')).toBe(200);
    expect(await call('/nope', 'm-3')).toBe(404);
    // The histogram's `_count` lines, as Prometheus scrapes them.
    const observed = async (labels: Record<string, string>) => {
      const text = await ctx.metrics.metrics();
      return text
        .split('\n')
        .filter((line) => line.startsWith('http_server_request_duration_seconds_count{'))
        .filter((line) => Object.entries(labels).every(([k, value]) => line.includes(`${k}="${value}"`)))
        .reduce((sum, line) => sum + Number(line.split(' ').at(-1)), 0);
    };
    // A caller that leaves before the answer: the request ends without one, and is not timed.
    const gone = new AbortController();
    const left = fetch(`${url}/slow`, { signal: gone.signal }).catch((err: Error) => err.name);
    await untilTrue(() => slowStarted(), 'the slow request to arrive');
    gone.abort();
    expect(await left).toBe('AbortError');
    await untilTrue(() => slowClosed(), 'the slow request to close');
    expect(await observed({ route: '/ok', status: '200' })).toBe(2);
    expect(await observed({ route: 'unmatched', status: '404' })).toBe(1);
    expect(await observed({ route: '/slow' })).toBe(0);
  });
});

describe('listen', () => {
  const skip = backlogSkipReason();
  if (skip) console.log(`skipping the accept backlog test: ${skip}`);
  it.skipIf(skip !== undefined)(
    'asks the kernel for an accept backlog of LISTEN_BACKLOG (capped by somaxconn), not 511',
    async () => {
      const { app, finalize } = createServiceApp({
        service: 'coin',
        instanceId: 'coin-test',
        processMetrics: false,
      });
      finalize();
      const listening = await listen(app, 0);
      open.push(listening);
      const seen = listenBacklog(listening.port);
      expect(seen).toBeDefined();
      expect(seen?.backlog).toBe(Math.min(LISTEN_BACKLOG, seen?.somaxconn ?? 0));
      expect(LISTEN_BACKLOG).toBeGreaterThan(511);
      const withAcceptors = await listen(app, 0, '127.0.0.1', undefined, { acceptors: 3 });
      open.push(withAcceptors);
      expect(listenBacklog(withAcceptors.port)?.backlog).toBe(Math.min(LISTEN_BACKLOG, seen?.somaxconn ?? 0));
    },
  );

  it('serves the connections its extra acceptors take, and closes them all', async () => {
    const { app, finalize } = createServiceApp({
      service: 'coin',
      instanceId: 'coin-test',
      processMetrics: false,
    });
    app.get('/hello', (_req, res) => {
      res.json({ hello: true });
    });
    finalize();
    const listening = await listen(app, 0, '127.0.0.1', undefined, { acceptors: 4 });
    expect(listening.acceptors).toBe(4);
    // A new connection per request (no keep-alive), fifty times: whichever descriptor accepts it.
    for (let i = 0; i < 50; i++) {
      const res = await fetch(`${listening.url}/hello`, { headers: { connection: 'close' } });
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ hello: true });
    }
    await listening.close();
    await expect(fetch(`${listening.url}/hello`)).rejects.toThrow();
  });

  it('goes on with one acceptor, and says why, when the extra ones cannot be added', async () => {
    const { app, finalize } = createServiceApp({
      service: 'coin',
      instanceId: 'coin-test',
      processMetrics: false,
    });
    finalize();
    const listener = createNetServer();
    await new Promise<void>((done) => listener.listen(0, '127.0.0.1', done));
    const taken = (listener.address() as AddressInfo).port;
    // A port in use: listen() rejects before any acceptor is added.
    await expect(listen(app, taken, '127.0.0.1', undefined, { acceptors: 4 })).rejects.toThrow(/EADDRINUSE/);
    listener.close();
    const failures: string[] = [];
    const listening = await listen(app, 0, '127.0.0.1', undefined, {
      acceptors: 4,
      helperExecPath: '/nonexistent/node',
      onAcceptorsFailed: (err) => failures.push(err.message),
    });
    open.push(listening);
    expect(listening.acceptors).toBe(1);
    expect(failures).toEqual([expect.stringMatching(/could not add acceptors to the listener: .*ENOENT/)]);
    expect((await fetch(`${listening.url}/healthz`)).status).toBe(200);
  });
});
