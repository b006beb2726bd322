import { type ChildProcess, spawn } from 'node:child_process';
import { createServer as createHttpServer, type Server } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../lib/env.ts';
import { faultProxiesFromEnv, startFaultProxyHost } from './host.ts';

const TOKEN = 'host-test-token';

const entry = (id: string, listenPort: number, adminPort: number, upstream = '127.0.0.1:18140') => ({
  id,
  listenPort,
  adminPort,
  upstream,
});

const envOf = (proxies: unknown) => ({ FAULT_PROXIES: JSON.stringify(proxies), CHAOS_ADMIN_TOKEN: TOKEN });

describe('fault proxy host configuration', () => {
  it('reads every proxy, each with the host’s admin token and loopback unless told', () => {
    const env = envOf([
      entry('coin-1-proxy', 18240, 18340, '127.0.0.1:18140'),
      { ...entry('coin-2-proxy', 18241, 18341, '[::1]:18141'), listenHost: '0.0.0.0' },
    ]);
    expect(faultProxiesFromEnv(env)).toEqual([
      {
        instanceId: 'coin-1-proxy',
        listenHost: '127.0.0.1',
        listenPort: 18240,
        adminPort: 18340,
        upstream: { host: '127.0.0.1', port: 18140 },
        adminToken: TOKEN,
      },
      {
        instanceId: 'coin-2-proxy',
        listenHost: '0.0.0.0',
        listenPort: 18241,
        adminPort: 18341,
        upstream: { host: '::1', port: 18141 },
        adminToken: TOKEN,
      },
    ]);
    const noToken = faultProxiesFromEnv({ FAULT_PROXIES: JSON.stringify([entry('a', 0, 0)]) });
    expect(noToken[0]).not.toHaveProperty('adminToken');
    // Port 0 picks a free one: two proxies asking for it do not clash.
    expect(faultProxiesFromEnv(envOf([entry('a', 0, 0), entry('b', 0, 0)]))).toHaveLength(2);
  });

  it.each([
    ['unset', {}, /^FAULT_PROXIES is not set: set it to a JSON array of proxies, e\.g\. \[\{"id":/],
    [
      'not JSON',
      { FAULT_PROXIES: '[{id: a}]' },
      /^FAULT_PROXIES is not valid JSON \(.+\): expected an array/,
    ],
    [
      'not an array',
      { FAULT_PROXIES: '{"id":"a"}' },
      /^FAULT_PROXIES="\{\\"id\\":\\"a\\"\}" is invalid: expected a non-empty JSON array/,
    ],
    ['empty', { FAULT_PROXIES: '[]' }, /^FAULT_PROXIES="\[\]" is invalid: expected a non-empty JSON array/],
    [
      'a missing field',
      envOf([entry('a', 1, 2), { id: 'b', listenPort: 3, upstream: '127.0.0.1:1' }]),
      /^FAULT_PROXIES\[1\] \(b\): adminPort is missing: expected an integer from 0 to 65535/,
    ],
    [
      'a port out of range',
      envOf([entry('a', 70_000, 2)]),
      /^FAULT_PROXIES\[0\] \(a\): listenPort=70000 is invalid: expected an integer from 0 to 65535/,
    ],
    [
      'a port as a string',
      envOf([entry('a', 1, 2), { ...entry('b', 3, 4), listenPort: '3' }]),
      /^FAULT_PROXIES\[1\] \(b\): listenPort="3" is invalid: expected an integer/,
    ],
    [
      'a bad upstream',
      envOf([entry('a', 1, 2, '18140')]),
      /^FAULT_PROXIES\[0\] \(a\): upstream="18140" is invalid: expected host:port/,
    ],
    [
      'an entry without an id',
      envOf([{ listenPort: 1, adminPort: 2, upstream: '127.0.0.1:1' }]),
      /^FAULT_PROXIES\[0\]: id is missing: expected a name/,
    ],
    [
      'an entry that is not an object',
      envOf([entry('a', 1, 2), 'b']),
      /^FAULT_PROXIES\[1\]: expected an object with id, listenHost, listenPort, adminPort, upstream/,
    ],
    [
      'an unknown field',
      envOf([{ ...entry('a', 1, 2), adminport: 3 }]),
      /^FAULT_PROXIES\[0\] \(a\): unknown field adminport: expected id, listenHost/,
    ],
    [
      'a duplicate id',
      envOf([entry('a', 1, 2), entry('a', 3, 4)]),
      /^FAULT_PROXIES\[1\] \(a\): the id is taken by FAULT_PROXIES\[0\]/,
    ],
    [
      'a port used twice',
      envOf([entry('coin-1-proxy', 18240, 18340), entry('coin-2-proxy', 18241, 18240)]),
      /^FAULT_PROXIES\[1\] \(coin-2-proxy\): adminPort 18240 is taken by FAULT_PROXIES\[0\] \(coin-1-proxy\)'s listenPort/,
    ],
    [
      'one proxy’s two ports alike',
      envOf([entry('a', 5, 5)]),
      /^FAULT_PROXIES\[0\] \(a\): adminPort 5 is taken by FAULT_PROXIES\[0\] \(a\)'s listenPort/,
    ],
  ])('fails fast naming the variable and the entry: %s', (_what, env, message) => {
    expect(() => faultProxiesFromEnv(env)).toThrow(ConfigError);
    expect(() => faultProxiesFromEnv(env)).toThrow(message);
  });
});

/** A port something else holds, for the whole file. */
let taken: Server;
let takenPort: number;
beforeAll(async () => {
  taken = createHttpServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  takenPort = (taken.address() as AddressInfo).port;
});
afterAll(() => new Promise<void>((resolve) => taken.close(() => resolve())));

/** Whether anything accepts a connection on the port. */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

interface Listening {
  readonly instance: string;
  readonly dataPort: number;
  readonly adminUrl: string;
}

function listeningLines(text: string): Listening[] {
  return text
    .split('\n')
    .filter((line) => line.includes('"fault proxy listening"'))
    .map((line) => JSON.parse(line) as Listening);
}

describe('startFaultProxyHost', () => {
  it('starts all or none: one proxy that cannot listen stops the others and is named', async () => {
    let out = '';
    const log = pino(
      { level: 'info' },
      new Writable({
        write(chunk, _encoding, done) {
          out += String(chunk);
          done();
        },
      }),
    );
    const configs = faultProxiesFromEnv(envOf([entry('a-proxy', 0, 0), entry('b-proxy', takenPort, 0)]));
    await expect(startFaultProxyHost(configs, { log })).rejects.toThrow(
      /^fault proxy b-proxy could not start: listen EADDRINUSE/,
    );
    const [started] = listeningLines(out);
    expect(started?.instance).toBe('a-proxy');
    expect(await accepts(started?.dataPort ?? 0)).toBe(false);
    expect(await accepts(Number(new URL(started?.adminUrl ?? 'http://x:1').port))).toBe(false);
  });
});

const HOST_MAIN = fileURLToPath(new URL('./host-main.ts', import.meta.url));

const started = new Set<ChildProcess>();
// A test that failed half-way must not leave a host listening behind it.
afterAll(() => {
  for (const child of started)
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

function start(env: Record<string, string>): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', HOST_MAIN], {
    env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  started.add(child);
  return child;
}

function exited(child: ChildProcess): Promise<{ code: number | null; stderr: string }> {
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += String(d);
  });
  return new Promise((resolve) => child.once('exit', (code) => resolve({ code, stderr })));
}

/** Resolves once `count` proxies have logged that they listen, by id. */
function listening(child: ChildProcess, count: number): Promise<Map<string, Listening>> {
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += String(d);
      const lines = listeningLines(out);
      if (lines.length >= count) resolve(new Map(lines.map((l) => [l.instance, l])));
    });
    child.once('exit', (code) => reject(new Error(`exited with ${code} before listening: ${out}`)));
  });
}

/** A tiny HTTP server that says its name. */
async function namedServer(name: string): Promise<{ port: number; close(): Promise<void> }> {
  const server = createHttpServer((_req, res) => res.end(name));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

const admin = (url: string, method = 'GET', body?: unknown) =>
  fetch(`${url}/__chaos/faults${method === 'PUT' ? '/slow' : ''}`, {
    method,
    headers: {
      authorization: `Bearer ${TOKEN}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });

// Each test starts Node with tsx: seconds on a busy machine of two cores.
const PROCESS_TIMEOUT_MS = 30_000;

describe('fault proxy host process', { timeout: PROCESS_TIMEOUT_MS }, () => {
  it.concurrent('exits 2 naming the variable and the entry when the configuration is bad', async () => {
    const { code, stderr } = await exited(
      start(envOf([entry('a-proxy', 0, 0), entry('b-proxy', 0, 0, 'nowhere')])),
    );
    expect(code).toBe(2);
    expect(stderr).toMatch(/^chaos-lab fault-proxies: FAULT_PROXIES\[1\] \(b-proxy\): upstream="nowhere"/);
  });

  it.concurrent('exits non-zero, naming the proxy, when one cannot listen', async () => {
    const { code, stderr } = await exited(
      start(envOf([entry('a-proxy', 0, 0), entry('b-proxy', 0, takenPort)])),
    );
    expect(code).not.toBe(0);
    expect(stderr).toMatch(/fault proxy b-proxy could not start: listen EADDRINUSE/);
  });

  it.concurrent('runs each proxy with its own upstream, admin API and faults, and stops them all on SIGTERM', async () => {
    const [first, second] = await Promise.all([namedServer('first'), namedServer('second')]);
    const child = start(
      envOf([
        entry('a-proxy', 0, 0, `127.0.0.1:${first.port}`),
        entry('b-proxy', 0, 0, `127.0.0.1:${second.port}`),
        entry('c-proxy', 0, 0, `127.0.0.1:${first.port}`),
      ]),
    );
    const exit = exited(child);
    try {
      const proxies = await listening(child, 3);
      const [a, b, c] = (['a-proxy', 'b-proxy', 'c-proxy'] as const).map((id) => proxies.get(id));
      if (!a || !b || !c) throw new Error(`not every proxy listens: ${[...proxies.keys()].join(', ')}`);

      // Each relays to its own upstream.
      const through = async (p: Listening) =>
        (await fetch(`http://127.0.0.1:${p.dataPort}/`, { headers: { connection: 'close' } })).text();
      expect(await Promise.all([a, b, c].map(through))).toEqual(['first', 'second', 'first']);

      // Each admin API is its own: its name, its readiness, its metrics.
      for (const p of [a, b, c]) {
        const listed = (await (await admin(p.adminUrl)).json()) as { instance: string; faults: unknown[] };
        expect(listed).toMatchObject({ instance: p.instance, faults: [] });
        const ready = (await (await fetch(`${p.adminUrl}/readyz`)).json()) as { instance: string };
        expect(ready).toMatchObject({ ready: true, instance: p.instance });
        const metrics = await (await fetch(`${p.adminUrl}/metrics`)).text();
        expect(metrics).toContain(`instance="${p.instance}"`);
        expect(metrics).not.toMatch(new RegExp(`instance="(?!${p.instance}")`));
        // The process's own figures once, on the first proxy: one event loop, sampled once.
        expect(metrics.includes('process_cpu_user_seconds_total')).toBe(p === a);
      }

      // A fault on one is on that one alone.
      const put = await admin(a.adminUrl, 'PUT', {
        kind: 'latency',
        params: { delayMs: 50 },
        leaseMs: 10_000,
      });
      expect(put.status).toBe(201);
      const faultsOf = async (p: Listening) =>
        ((await (await admin(p.adminUrl)).json()) as { faults: { id: string }[] }).faults.map((f) => f.id);
      expect(await Promise.all([a, b, c].map(faultsOf))).toEqual([['slow'], [], []]);

      child.kill('SIGTERM');
      expect((await exit).code).toBe(0);
      const ports = [a, b, c].flatMap((p) => [p.dataPort, Number(new URL(p.adminUrl).port)]);
      expect(await Promise.all(ports.map(accepts))).toEqual(ports.map(() => false));
    } finally {
      child.kill('SIGKILL');
      await Promise.all([first.close(), second.close()]);
    }
  });
});
