import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { processTree } from '../../lab/bench/lab-figures.ts';
import { backlogSkipReason, listenBacklog } from './__fixtures__/backlog.ts';
import { descriptorsTo, tcpListener } from './__fixtures__/listener.ts';
import { addAcceptors } from './acceptors.ts';

/** Not Node's default (511), so that a copy listening with the default would show. */
const BACKLOG = 1_000;

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

async function listening(): Promise<{ server: Server; port: number; sockets: Socket[] }> {
  const sockets: Socket[] = [];
  const server = createServer((socket) => {
    sockets.push(socket);
    socket.on('error', () => {});
  });
  await new Promise<void>((done) => server.listen({ port: 0, host: '127.0.0.1', backlog: BACKLOG }, done));
  cleanups.push(() => {
    for (const socket of sockets) socket.destroy();
    server.close();
  });
  return { server, port: (server.address() as { port: number }).port, sockets };
}

/** Connections waiting in the kernel's accept queue of the listener on `port`. */
const acceptQueue = (port: number): number => tcpListener(port)?.acceptQueue ?? 0;

/**
 * Opens `count` connections to `port` from another process while this one's loop is blocked, so
 * that they all wait in the accept queue at once; then counts, turn by turn of this loop, how many
 * connections the listener accepts. A `setImmediate` runs once per turn.
 */
async function acceptedPerTurn(server: Server, port: number, count: number): Promise<number[]> {
  const clients: ChildProcess = spawn(
    process.execPath,
    [
      '-e',
      `const net = require('node:net');
       for (let i = 0; i < ${count}; i++) net.connect(${port}, '127.0.0.1').on('error', () => {});
       setTimeout(() => {}, 60000);`,
    ],
    { stdio: 'ignore', env: {} },
  );
  cleanups.push(() => clients.kill());
  const signal = new Int32Array(new SharedArrayBuffer(4));
  const deadline = Date.now() + 20_000;
  while (acceptQueue(port) < count && Date.now() < deadline) Atomics.wait(signal, 0, 0, 10);
  const queued = acceptQueue(port);
  if (queued < count)
    throw new Error(`only ${queued} of ${count} connections reached the accept queue in 20 s`);
  const perTurn: number[] = [];
  let turn = 0;
  let accepted = 0;
  return new Promise((resolve) => {
    server.on('connection', () => {
      perTurn[turn] = (perTurn[turn] ?? 0) + 1;
      if (++accepted === count) resolve(perTurn.filter((n) => n > 0));
    });
    const tick = () => {
      turn++;
      if (accepted < count) setImmediate(tick);
    };
    setImmediate(tick);
  });
}

describe('addAcceptors', () => {
  it("accepts one connection per turn of the loop with Node's one descriptor (libuv 1.45+)", async () => {
    const { server, port } = await listening();
    const perTurn = await acceptedPerTurn(server, port, 12);
    expect(perTurn).toEqual(Array(12).fill(1));
  });

  it('accepts up to as many connections per turn as the socket has descriptors', async () => {
    const { server, port } = await listening();
    const acceptors = await addAcceptors(server, 4, BACKLOG);
    cleanups.push(() => acceptors.close());
    expect(acceptors.count).toBe(4);
    const perTurn = await acceptedPerTurn(server, port, 12);
    expect(perTurn.reduce((a, b) => a + b, 0)).toBe(12);
    expect(Math.max(...perTurn)).toBeGreaterThan(1);
    expect(Math.max(...perTurn)).toBeLessThanOrEqual(4);
    expect(perTurn.length).toBeLessThan(12);
  });

  it("gives the listener's socket that many descriptors in this process, and leaves no helper process", async () => {
    const { server, port } = await listening();
    const socket = tcpListener(port)?.socket as string;
    expect(descriptorsTo('self', socket)).toBe(1);
    const acceptors = await addAcceptors(server, 5, BACKLOG);
    cleanups.push(() => acceptors.close());
    expect(descriptorsTo('self', socket)).toBe(5);
    const helpers = processTree(process.pid)
      .slice(1)
      .filter((pid) => {
        try {
          return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('copies');
        } catch {
          return false;
        }
      });
    expect(helpers).toEqual([]);
  });

  const skip = backlogSkipReason();
  if (skip) console.log(`skipping the acceptors' backlog test: ${skip}`);
  it.skipIf(skip !== undefined)(
    "keeps the listener's backlog (listen() on a copy sets it anew)",
    async () => {
      const { server, port } = await listening();
      const acceptors = await addAcceptors(server, 3, BACKLOG);
      cleanups.push(() => acceptors.close());
      const seen = listenBacklog(port);
      expect(seen?.backlog).toBe(Math.min(BACKLOG, seen?.somaxconn ?? 0));
    },
  );

  it('closes every descriptor on close: the port then refuses connections', async () => {
    const { server, port } = await listening();
    const acceptors = await addAcceptors(server, 4, BACKLOG);
    acceptors.close();
    await new Promise<void>((done) => server.close(() => done()));
    const refused = await new Promise<string>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve('connected');
      });
      socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    });
    expect(refused).toBe('ECONNREFUSED');
  });

  it('is a no-op for one acceptor, and says why when the helper cannot start', async () => {
    const { server, port } = await listening();
    expect((await addAcceptors(server, 1, BACKLOG)).count).toBe(1);
    await expect(addAcceptors(server, 4, BACKLOG, { execPath: '/nonexistent/node' })).rejects.toThrow(
      /could not add acceptors to the listener: .*ENOENT/,
    );
    expect(descriptorsTo('self', tcpListener(port)?.socket as string)).toBe(1);
  });
});
