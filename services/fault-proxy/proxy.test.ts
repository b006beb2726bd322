import { createHash, randomBytes } from 'node:crypto';
import { type AddressInfo, createServer, type Socket } from 'node:net';
import { pino } from 'pino';
import { Client } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningBackend, startBackend } from '../backends/server.ts';
import { backlogSkipReason, listenBacklog } from '../lib/__fixtures__/backlog.ts';
import { LISTEN_BACKLOG } from '../lib/service-app.ts';
import { echoServer, type Harness, readBytes, startHarness, type Upstream } from './__fixtures__/harness.ts';
import { seededRandom } from './__fixtures__/seeded.ts';
import type { ProxyStatsSnapshot } from './stats.ts';

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/** Writes `data` in chunks of random sizes, honouring backpressure, then ends. */
async function writeInChunks(
  socket: Socket,
  data: Buffer,
  random: () => number,
  maxChunk: number,
): Promise<void> {
  let offset = 0;
  while (offset < data.length) {
    const size = 1 + Math.floor(random() * maxChunk);
    const ok = socket.write(data.subarray(offset, offset + size));
    offset += size;
    if (!ok) await new Promise((resolve) => socket.once('drain', resolve));
  }
  socket.end();
}

function ended(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    if (socket.readableEnded) resolve();
    else socket.once('end', () => resolve());
  });
}

/** Polls until `done` holds; fails after `ms`. */
async function eventually<T>(
  read: () => T,
  done: (value: T) => boolean,
  ms: number,
  what: string,
): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const value = read();
    if (done(value)) return value;
    if (Date.now() > until)
      throw new Error(`after ${ms} ms still waiting for ${what}: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

async function echoRoundTrip(h: Harness, message: string): Promise<{ socket: Socket; ms: number }> {
  const started = performance.now();
  const socket = await h.connect();
  const reply = readBytes(socket, message.length, 5_000);
  socket.write(message);
  expect(String(await reply)).toBe(message);
  return { socket, ms: performance.now() - started };
}

describe('fault proxy on real sockets', () => {
  let echo: Upstream;
  beforeAll(async () => {
    echo = await echoServer();
  });
  afterAll(() => echo.close());

  it('relays 3 MB intact and in order under latency with jitter, with half-close passed through', async () => {
    const h = await startHarness(echo.port, { deps: { random: seededRandom(1) } });
    try {
      await h.fault('jittery', 'latency', { delayMs: 3, jitterMs: 3 });
      const data = randomBytes(3 << 20);
      const socket = await h.connect();
      const reading = readBytes(socket, data.length, 15_000);
      await writeInChunks(socket, data, seededRandom(2), 32 << 10);
      const got = await reading;
      await ended(socket);
      expect(got.length).toBe(data.length);
      expect(sha256(got)).toBe(sha256(data));
      const stats = await eventually(
        h.proxy.stats,
        (s) => s.connections.active === 0,
        2_000,
        'the connection to close',
      );
      expect(stats.latency.count).toBeGreaterThan(20);
      expect(stats.latency.meanMs).toBeGreaterThanOrEqual(2);
      expect(stats.bytes).toEqual({ upstream: data.length, downstream: data.length });
    } finally {
      await h.close();
    }
  });

  it('relays 1 MB intact when loss and latency hold chunks back in both directions', async () => {
    const h = await startHarness(echo.port, { deps: { random: seededRandom(3) } });
    try {
      const data = randomBytes(1 << 20);
      const { socket } = await echoRoundTrip(h, 'hi');
      const reading = readBytes(socket, data.length + 0, 15_000);
      await h.fault('lossy', 'loss', { percent: 5 });
      await h.fault('slow', 'latency', { delayMs: 4, jitterMs: 4, requestShare: 0.5 });
      await writeInChunks(socket, data, seededRandom(4), 16 << 10);
      const got = await reading;
      expect(sha256(got)).toBe(sha256(data));
      expect(h.proxy.stats().loss.segments.rolls).toBeGreaterThan(20);
    } finally {
      await h.close();
    }
  });

  it('stops reading from the upstream while the client does not read (backpressure)', async () => {
    const firehose = createServer((socket) => {
      socket.on('error', () => {});
      const block = Buffer.alloc(64 << 10, 7);
      // Bounded: at most 64 MiB, and only as fast as the proxy takes it.
      let sent = 0;
      const pump = () => {
        while (sent < 64 << 20) {
          sent += block.length;
          if (!socket.write(block)) {
            socket.once('drain', pump);
            return;
          }
        }
      };
      pump();
    });
    await new Promise<void>((resolve) => firehose.listen(0, '127.0.0.1', resolve));
    const h = await startHarness((firehose.address() as AddressInfo).port);
    try {
      await h.fault('slow', 'latency', { delayMs: 20 });
      const socket = await h.connect();
      socket.pause();
      await new Promise((resolve) => setTimeout(resolve, 400));
      // Without backpressure the proxy would have read all 64 MiB by now; with it, what it
      // holds is capped and the rest waits in socket buffers.
      expect(h.proxy.stats().bytes.downstream).toBeGreaterThan(1 << 20);
      expect(h.proxy.stats().bytes.downstream).toBeLessThan(24 << 20);
      socket.destroy();
    } finally {
      await h.close();
      await new Promise((resolve) => firehose.close(resolve));
    }
  });

  const backlogSkip = backlogSkipReason();
  if (backlogSkip) console.log(`skipping the proxy's accept backlog test: ${backlogSkip}`);
  it.skipIf(backlogSkip !== undefined)(
    'data and admin ports ask for an accept backlog of LISTEN_BACKLOG (capped by somaxconn)',
    async () => {
      const h = await startHarness(echo.port);
      try {
        for (const port of [h.proxy.dataPort, h.proxy.adminPort]) {
          const seen = listenBacklog(port);
          expect(seen?.backlog, `port ${port}`).toBe(Math.min(LISTEN_BACKLOG, seen?.somaxconn ?? 0));
        }
      } finally {
        await h.close();
      }
    },
  );

  it('a SYN lost to 100% loss costs the 1 s SYN timeout before the connection works', async () => {
    const h = await startHarness(echo.port);
    try {
      // Short lease: the retransmitted SYN, 1 s later, gets through.
      await h.fault('blackhole', 'loss', { percent: 100 }, 300);
      const { socket, ms } = await echoRoundTrip(h, 'ping');
      socket.destroy();
      expect(ms).toBeGreaterThanOrEqual(1_000);
      expect(ms).toBeLessThan(3_000);
      expect(h.proxy.stats().loss.syns).toEqual({ rolls: 1, lost: 1, share: 1 });
      expect(h.proxy.faults()).toEqual([]);
    } finally {
      await h.close();
    }
  });

  it('with 30% loss, /stats reports an observed loss share near 30%', async () => {
    const h = await startHarness(echo.port, { deps: { random: seededRandom(5) } });
    try {
      const { socket } = await echoRoundTrip(h, 'hi');
      socket.on('error', () => {});
      await h.fault('lossy', 'loss', { percent: 30 });
      // Separate reads: one small write at a time, a little apart.
      for (let i = 0; i < 150; i++) {
        socket.write(Buffer.alloc(64, i));
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
      const stats = await eventually(
        () => h.proxy.stats(),
        (s) => s.loss.segments.rolls >= 100,
        3_000,
        '100 loss rolls',
      );
      socket.destroy();
      const res = await h.admin('GET', '/stats');
      expect(res.status).toBe(200);
      const body = (await res.json()) as { stats: ProxyStatsSnapshot; faults: unknown[] };
      expect(body.faults).toHaveLength(1);
      expect(body.stats.loss.segments.share).toBeGreaterThan(0.18);
      expect(body.stats.loss.segments.share).toBeLessThan(0.42);
      expect(stats.loss.addedMs).toBeGreaterThanOrEqual(200 * stats.loss.segments.lost);
      const metrics = await (await fetch(`${h.proxy.adminUrl}/metrics`)).text();
      expect(metrics).toMatch(/proxy_losses_total\{what="segment"[^}]*\} [1-9]/);
    } finally {
      await h.close();
    }
  });

  it('reset 100%: the client sees ECONNRESET for its first request, and the upstream sees nothing', async () => {
    const before = echo.received();
    const h = await startHarness(echo.port);
    try {
      await h.fault('rst', 'reset', { percent: 100 });
      const socket = await h.connect();
      const failure = new Promise<NodeJS.ErrnoException>((resolve) => socket.once('error', resolve));
      socket.write('GET / HTTP/1.1\r\nhost: x\r\n\r\n');
      expect((await failure).code).toBe('ECONNRESET');
      expect(h.proxy.stats().reset).toEqual({ rolls: 1, reset: 1, share: 1 });
      expect(echo.received()).toBe(before);
      expect(await (await fetch(`${h.proxy.adminUrl}/metrics`)).text()).toMatch(
        /proxy_resets_total\{[^}]*\} 1/,
      );
    } finally {
      await h.close();
    }
  });

  it('resets the client when the upstream refuses', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const h = await startHarness(port);
    try {
      const socket = await h.connect();
      const failure = await new Promise<NodeJS.ErrnoException>((resolve) => socket.once('error', resolve));
      expect(failure.code).toBe('ECONNRESET');
      await eventually(
        h.proxy.stats,
        (s) => s.connections.upstreamFailed === 1,
        1_000,
        'the failure counted',
      );
    } finally {
      await h.close();
    }
  });

  it('faults end with their lease unless renewed (injected clock)', async () => {
    let skew = 0;
    const h = await startHarness(echo.port, { deps: { clock: () => Date.now() + skew } });
    try {
      await h.fault('slow', 'latency', { delayMs: 2_000 }, 1_000);
      skew += 900;
      await h.fault('slow', 'latency', { delayMs: 2_000 }, 1_000);
      skew += 900;
      expect(h.proxy.faults().map((f) => f.id)).toEqual(['slow']);
      skew += 100;
      const list = (await (await h.admin('GET', '/faults')).json()) as { faults: unknown[] };
      expect(list.faults).toEqual([]);
      const { socket, ms } = await echoRoundTrip(h, 'fast again');
      socket.destroy();
      expect(ms).toBeLessThan(1_000);
      expect(await (await fetch(`${h.proxy.adminUrl}/metrics`)).text()).toMatch(
        /chaos_faults_expired_total\{kind="latency"[^}]*\} 1/,
      );
    } finally {
      await h.close();
    }
  });
});

/** A TCP upstream that answers `pong` to each chunk and notes when each arrived (performance.now()). */
async function pingServer(): Promise<{ port: number; arrivals: number[]; close(): Promise<void> }> {
  const arrivals: number[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    socket.on('data', () => {
      arrivals.push(performance.now());
      socket.write('pong');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    arrivals,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

describe('latency per direction, timed at the upstream', () => {
  const DELAY_MS = 200;
  // The proxy's clock counts whole milliseconds, so a chunk may leave up to 1 ms early as timed here.
  const TICK_MS = 1;
  let upstream: Awaited<ReturnType<typeof pingServer>>;
  let h: Harness;
  beforeAll(async () => {
    upstream = await pingServer();
    h = await startHarness(upstream.port);
  });
  afterAll(async () => {
    await h.close();
    await upstream.close();
  });

  /** One ping on a new connection (its first bytes): when it was sent, reached the upstream, and was answered. */
  async function ping(): Promise<{ sent: number; arrived: number; answered: number }> {
    const socket = await h.connect();
    try {
      const seen = upstream.arrivals.length;
      const answer = readBytes(socket, 4, 5_000);
      const sent = performance.now();
      socket.write('ping');
      expect(String(await answer)).toBe('pong');
      const answered = performance.now();
      expect(upstream.arrivals).toHaveLength(seen + 1);
      return { sent, arrived: upstream.arrivals[seen]!, answered };
    } finally {
      socket.destroy();
    }
  }

  async function withLatency(params: Record<string, number>) {
    await h.fault('slow', 'latency', { delayMs: DELAY_MS, jitterMs: 0, ...params });
    await h.admin('DELETE', '/stats');
    try {
      const timing = await ping();
      const { stats } = (await (await h.admin('GET', '/stats')).json()) as { stats: ProxyStatsSnapshot };
      return { ...timing, stats };
    } finally {
      await h.admin('DELETE', '/faults');
    }
  }

  it('requestShare 1: the upstream gets the request the delay after it was sent; the answer is not held', async () => {
    const { sent, arrived, stats } = await withLatency({ requestShare: 1 });
    expect(arrived - sent).toBeGreaterThanOrEqual(DELAY_MS - TICK_MS);
    expect(stats.requestLatency).toMatchObject({ count: 1 });
    expect(stats.requestLatency?.meanMs).toBeGreaterThanOrEqual(DELAY_MS);
    // The answer passed through at once, by the proxy's own count.
    expect(stats.latency.count).toBe(1);
    expect(stats.latency.maxMs).toBeLessThanOrEqual(TICK_MS);
  });

  it('requestShare 0: the upstream gets the request at once; the answer comes back the delay later', async () => {
    const { arrived, answered, stats } = await withLatency({ requestShare: 0 });
    expect(answered - arrived).toBeGreaterThanOrEqual(DELAY_MS - TICK_MS);
    expect(stats.requestLatency).toMatchObject({ count: 1 });
    expect(stats.requestLatency?.maxMs).toBeLessThanOrEqual(TICK_MS);
    expect(stats.latency.count).toBe(1);
    expect(stats.latency.meanMs).toBeGreaterThanOrEqual(DELAY_MS);
  });

  it('requestShare 0.5: half the delay each way, the whole of it in all', async () => {
    const { sent, arrived, answered, stats } = await withLatency({ requestShare: 0.5 });
    expect(arrived - sent).toBeGreaterThanOrEqual(DELAY_MS / 2 - TICK_MS);
    expect(answered - arrived).toBeGreaterThanOrEqual(DELAY_MS / 2 - TICK_MS);
    expect(stats.requestLatency?.meanMs).toBeGreaterThanOrEqual(DELAY_MS / 2);
    expect(stats.latency.meanMs).toBeGreaterThanOrEqual(DELAY_MS / 2);
  });

  it('requestShare left out: responses only, as before it existed', async () => {
    const { arrived, answered, stats } = await withLatency({});
    expect(answered - arrived).toBeGreaterThanOrEqual(DELAY_MS - TICK_MS);
    expect(stats.requestLatency?.maxMs).toBeLessThanOrEqual(TICK_MS);
  });

  it('two overlapping latencies add up, way by way: every call pays the sum of both delays, not the larger', async () => {
    // 75 ms each way, and 100 ms more on requests: 175 ms there, 75 ms back, 250 ms in all (the larger alone: 150 ms).
    await h.fault('both-ways', 'latency', { delayMs: 150, jitterMs: 0, requestShare: 0.5 });
    await h.fault('requests', 'latency', { delayMs: 100, jitterMs: 0, requestShare: 1 });
    try {
      for (let i = 0; i < 4; i++) {
        const { sent, arrived, answered } = await ping();
        expect(arrived - sent).toBeGreaterThanOrEqual(175 - TICK_MS);
        expect(answered - arrived).toBeGreaterThanOrEqual(75 - TICK_MS);
        expect(answered - sent).toBeGreaterThanOrEqual(250 - 2 * TICK_MS);
      }
    } finally {
      await h.admin('DELETE', '/faults');
    }
  });

  it('reset still rolls at the first bytes, before any latency on requests: nothing reaches the upstream', async () => {
    await h.fault('rst', 'reset', { percent: 100 });
    await h.fault('slow', 'latency', { delayMs: DELAY_MS, requestShare: 1 });
    const seen = upstream.arrivals.length;
    try {
      const socket = await h.connect();
      const failure = new Promise<NodeJS.ErrnoException>((resolve) => socket.once('error', resolve));
      socket.write('ping');
      expect((await failure).code).toBe('ECONNRESET');
      // Had the chunk been queued instead of dropped, it would have gone out by now.
      await new Promise((resolve) => setTimeout(resolve, DELAY_MS + 50));
      expect(upstream.arrivals).toHaveLength(seen);
    } finally {
      await h.admin('DELETE', '/faults');
    }
  });
});

describe('fault proxy in front of a real backend', () => {
  let backend: RunningBackend;
  let h: Harness;
  let client: Client;
  beforeAll(async () => {
    const log = pino({ level: 'silent' });
    backend = await startBackend(
      {
        name: 'like',
        instanceId: 'like-t',
        port: 0,
        host: '127.0.0.1',
        trustMode: 'zero',
        workerRecovery: true,
      },
      { log },
    );
    h = await startHarness(backend.port);
    client = new Client(`http://127.0.0.1:${h.proxy.dataPort}`);
  });
  afterAll(async () => {
    await client.close();
    await h.close();
    await backend.close();
  });

  async function get(path: string): Promise<{ status: number; body: unknown; ms: number }> {
    const started = performance.now();
    const res = await client.request({ method: 'GET', path });
    const body = await res.body.json();
    return { status: res.statusCode, body, ms: performance.now() - started };
  }

  it('answers through the proxy as the backend would', async () => {
    const res = await get('/likes/7');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ aid: 7, likes: expect.any(Number) });
  });

  it('adds the latency once per request/response, several faults adding up', async () => {
    await h.fault('a', 'latency', { delayMs: 100, jitterMs: 0 });
    await h.fault('b', 'latency', { delayMs: 60, jitterMs: 0 });
    await h.admin('DELETE', '/stats');
    try {
      const res = await get('/likes/8');
      expect(res.status).toBe(200);
      // Both faults add up (160 ms), and no call pays less. No wall-clock upper bound (a shared
      // machine's stall is not the proxy's): the proxy's own record of what each delayed chunk
      // waited says the sum was applied once per way, not once per fault and again (320 ms).
      expect(res.ms).toBeGreaterThanOrEqual(160);
      const { stats } = (await (await h.admin('GET', '/stats')).json()) as { stats: ProxyStatsSnapshot };
      expect(stats.latency.p50Ms).toBeGreaterThanOrEqual(160);
      expect(stats.latency.p50Ms).toBeLessThan(2 * 160);
    } finally {
      await h.admin('DELETE', '/faults');
    }
    await h.admin('DELETE', '/stats');
    expect((await get('/likes/9')).status).toBe(200);
    expect(h.proxy.stats().latency.count).toBe(0);
  });
});
