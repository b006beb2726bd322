import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import { pino } from 'pino';
import { type FaultProxyDeps, type RunningFaultProxy, startFaultProxy } from '../proxy.ts';

/** Real servers and a real proxy on 127.0.0.1, ephemeral ports, for the proxy's socket tests. */

export const TOKEN = 'proxy-test-token';

export interface Upstream {
  readonly port: number;
  /** Bytes received in all, over every connection. */
  received(): number;
  close(): Promise<void>;
}

function serve(handler: (socket: Socket) => void): Promise<Server> {
  return new Promise((resolve) => {
    const server = createServer({ allowHalfOpen: true }, handler);
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

function closing(server: Server, sockets: Set<Socket>): () => Promise<void> {
  return () =>
    new Promise((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
}

/** Sends back every byte it gets, and ends when the client ends. */
export async function echoServer(): Promise<Upstream> {
  let received = 0;
  const sockets = new Set<Socket>();
  const server = await serve((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => {
      received += chunk.length;
    });
    socket.pipe(socket);
  });
  return {
    port: (server.address() as AddressInfo).port,
    received: () => received,
    close: closing(server, sockets),
  };
}

export interface Harness {
  readonly proxy: RunningFaultProxy;
  admin(method: string, path: string, body?: unknown, token?: string): Promise<Response>;
  /** PUTs a fault and checks it was applied. */
  fault(id: string, kind: string, params: Record<string, number>, leaseMs?: number): Promise<void>;
  /** A raw TCP connection to the proxy's data port. */
  connect(): Promise<Socket>;
  close(): Promise<void>;
}

export async function startHarness(
  upstreamPort: number,
  options: { token?: string | undefined; deps?: FaultProxyDeps } = {},
): Promise<Harness> {
  const token = 'token' in options ? options.token : TOKEN;
  const proxy = await startFaultProxy(
    {
      instanceId: 'test-proxy',
      listenHost: '127.0.0.1',
      listenPort: 0,
      upstream: { host: '127.0.0.1', port: upstreamPort },
      adminPort: 0,
      ...(token ? { adminToken: token } : {}),
    },
    { log: pino({ level: 'silent' }), ...options.deps },
  );
  const admin = (method: string, path: string, body?: unknown, bearer = TOKEN) =>
    fetch(`${proxy.adminUrl}/__chaos${path}`, {
      method,
      headers: {
        authorization: `Bearer ${bearer}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    });
  return {
    proxy,
    admin,
    async fault(id, kind, params, leaseMs = 10_000) {
      const res = await admin('PUT', `/faults/${id}`, { kind, params, leaseMs });
      if (res.status >= 300) throw new Error(`PUT fault ${id}: ${res.status} ${await res.text()}`);
    },
    connect: () =>
      new Promise((resolve, reject) => {
        const socket = connect({ host: '127.0.0.1', port: proxy.dataPort }, () => {
          socket.off('error', reject);
          resolve(socket);
        });
        socket.setNoDelay(true);
        socket.once('error', reject);
      }),
    close: () => proxy.close(),
  };
}

/** Reads from `socket` until `bytes` have arrived (or it ends); fails after `timeoutMs`. */
export function readBytes(socket: Socket, bytes: number, timeoutMs = 10_000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let got = 0;
    const done = (err?: Error) => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('error', done);
      if (err) reject(err);
      else resolve(Buffer.concat(chunks));
    };
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      got += chunk.length;
      if (got >= bytes) done();
    };
    const onEnd = () => done();
    const timer = setTimeout(
      () => done(new Error(`only ${got} of ${bytes} bytes after ${timeoutMs} ms`)),
      timeoutMs,
    );
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('error', done);
  });
}
