import { spawn } from 'node:child_process';
import { Server as NetServer, type Socket } from 'node:net';

/**
 * More accepts per turn of the event loop for one listening socket.
 *
 * Since libuv 1.45 (Node 20 ships 1.46), a listener accepts one connection per turn of the loop
 * (libuv/libuv#3696: accepting in a loop was unfair to the other I/O). A gateway whose turns take
 * a few milliseconds under load then accepts a few hundred connections a second, whatever its
 * CPU: at the onset of an overload, when a client opens hundreds of connections at once, they
 * wait in the kernel's accept queue for a second or more, where no admission control can see
 * them, and the refusals that should take a millisecond take as long as the pages. (Measured: an
 * overload at five times the resilient gateway's capacity, `strace` of the gateway showed one
 * `accept4` per `epoll_pwait`, and `ss` an accept queue of 584 connections.)
 *
 * Each extra descriptor of the same socket is one more accept per turn: the epoll set has every
 * one of them, and each is readable while a connection waits. Node 20 cannot duplicate a socket's
 * descriptor (no `dup`, no `reusePort` before Node 22.12), but passing a handle to another process
 * over IPC does, as the cluster module does with its shared handles: a helper process is given the
 * listener's handle and sends it back `count` times, and each copy arrives as a new descriptor.
 * The helper never listens on its copy (a raw handle is sent, not a server), so it never accepts a
 * connection, and it exits once the copies are home.
 */
const HELPER_SOURCE = `
process.on('disconnect', () => process.exit(0));
process.on('message', (message, handle) => {
  if (message === 'done') process.exit(0);
  for (let i = 0; i < message.copies; i++) process.send({ copy: i }, handle);
});`;

/** How long the helper may take to send the copies back before the listener goes on alone. */
const HELPER_TIMEOUT_MS = 10_000;

export interface Acceptors {
  /** Descriptors accepting on the socket, the listener's own included. */
  readonly count: number;
  /** Stops the extra descriptors accepting (the listener's own is closed by its owner). */
  close(): void;
}

/** Node's own: the listener's one descriptor, nothing to close. */
export const NODE_ACCEPTOR: Acceptors = { count: 1, close: () => {} };

/**
 * Gives `listener` (listening already) `count - 1` more descriptors of its socket; the connections
 * they accept are emitted on `listener` as its own. Rejects when the helper cannot be started or
 * does not answer; the listener then keeps working with its one descriptor.
 */
export function addAcceptors(
  listener: NetServer,
  count: number,
  backlog: number,
  options: { readonly execPath?: string } = {},
): Promise<Acceptors> {
  const copies = Math.max(0, Math.floor(count) - 1);
  if (copies === 0) return Promise.resolve(NODE_ACCEPTOR);
  const handle = (listener as unknown as { _handle?: object | null })._handle;
  if (!handle) return Promise.reject(new Error('the listener is not listening'));
  return new Promise((resolve, reject) => {
    const extra: NetServer[] = [];
    const closeAll = () => {
      for (const server of extra) server.close();
    };
    // No environment: NODE_OPTIONS (tsx's loader in development) would only slow the helper down.
    const helper = spawn(options.execPath ?? process.execPath, ['-e', HELPER_SOURCE], {
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      env: {},
    });
    let stderr = '';
    helper.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    let settled = false;
    let home = false;
    const fail = (why: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      closeAll();
      helper.kill();
      reject(
        new Error(`could not add acceptors to the listener: ${why}${stderr ? ` (${stderr.trim()})` : ''}`),
      );
    };
    const timer = setTimeout(
      () => fail(`the helper process did not send the copies back within ${HELPER_TIMEOUT_MS} ms`),
      HELPER_TIMEOUT_MS,
    );
    // `on`, not `once`: a helper that failed to start can also fail the message sent to it.
    helper.on('error', (err) => fail(err.message));
    // Resolved once the helper is gone, so that nothing of it outlives the call.
    helper.once('exit', (code, signal) => {
      if (!home) {
        fail(`the helper process ended (${signal ?? `exit code ${code}`})`);
        return;
      }
      settled = true;
      clearTimeout(timer);
      resolve({ count: extra.length + 1, close: closeAll });
    });
    helper.on('message', (_message, copy) => {
      if (home || settled || !copy) return;
      const server = new NetServer();
      server.on('connection', (socket: Socket) => listener.emit('connection', socket));
      // A copy that cannot listen is one acceptor fewer, nothing worse.
      server.on('error', () => server.close());
      // The same backlog again: listen() on a listening socket sets it anew.
      server.listen(copy as never, backlog);
      extra.push(server);
      if (extra.length < copies) return;
      home = true;
      helper.send('done');
    });
    helper.send({ copies }, handle as never);
  });
}
