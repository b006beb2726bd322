/**
 * Exec and port-forward over WebSocket, as the API server proxies them from the kubelet. Every
 * binary frame starts with its channel byte. Exec: 1 stdout, 2 stderr, 3 the Status JSON that ends
 * the call. Port-forward (v4.channel.k8s.io): 0 data, 1 error, and the first frame the server sends
 * on each carries the port as 2 bytes little-endian (client-node strips them).
 */
import type { IncomingMessage } from 'node:http';
import { connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { WebSocket, WebSocketServer } from 'ws';
import { resourceByKind } from './resources.ts';
import type { Obj, Store } from './store.ts';

const PODS = resourceByKind('v1', 'Pod')!;
const EXEC_PROTOCOLS = ['v5.channel.k8s.io', 'v4.channel.k8s.io'];
const PORT_FORWARD_PROTOCOLS = ['v4.channel.k8s.io', 'portforward.k8s.io'];

export interface ExecCall {
  readonly namespace: string;
  readonly pod: string;
  readonly container: string;
  readonly command: readonly string[];
}

export interface ExecReply {
  readonly stdout?: string;
  readonly stderr?: string;
  /** @default 0 */
  readonly exitCode?: number;
  /** Ends the call with a Failure Status other than NonZeroExitCode (reason InternalError). */
  readonly error?: string;
}

/** Answers an exec, or returns undefined to let an earlier handler answer. */
export type ExecHandler = (call: ExecCall) => ExecReply | undefined | Promise<ExecReply | undefined>;

export interface PortTarget {
  readonly host: string;
  readonly port: number;
}

type Reject = (socket: Duplex, code: number, body: Record<string, unknown>) => void;

export class PodStreams {
  readonly execs: ExecCall[] = [];
  private readonly handlers: ExecHandler[] = [];
  private readonly forwards: { pod: string | RegExp; port: number; target: PortTarget }[] = [];
  private readonly sockets = new Set<Socket>();

  constructor(private readonly store: Store) {}

  /**
   * The real server picks the client's preferred protocol among those it supports: v5 for exec,
   * but port-forward only speaks v4 (client-node offers v5 first).
   */
  static chooseProtocol(offered: Set<string>, path: string | undefined): string | false {
    const supported = path?.split('?')[0]?.endsWith('/portforward') ? PORT_FORWARD_PROTOCOLS : EXEC_PROTOCOLS;
    for (const p of offered) if (supported.includes(p)) return p;
    return false;
  }

  onExec(handler: ExecHandler): void {
    this.handlers.unshift(handler);
  }

  forwardPodPort(pod: string | RegExp, port: number, target: PortTarget): void {
    this.forwards.unshift({ pod, port, target });
  }

  upgrade(
    wss: WebSocketServer,
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    url: URL,
    reject: Reject,
  ) {
    const m = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)\/(exec|portforward|attach)$/.exec(url.pathname);
    if (!m || m[3] === 'attach') {
      reject(socket, 404, failure(404, 'NotFound', 'the server could not find the requested resource'));
      return;
    }
    const namespace = decodeURIComponent(m[1] ?? '');
    const podName = decodeURIComponent(m[2] ?? '');
    const pod = this.store.get(PODS, namespace, podName);
    if (!pod) {
      reject(socket, 404, {
        ...failure(404, 'NotFound', `pods "${podName}" not found`),
        details: { name: podName, kind: 'pods' },
      });
      return;
    }
    if (m[3] === 'exec') {
      const containers = ((pod.spec as { containers?: { name: string }[] })?.containers ?? []).map(
        (c) => c.name,
      );
      const container = url.searchParams.get('container') ?? containers[0] ?? '';
      if (!containers.includes(container)) {
        reject(
          socket,
          400,
          failure(400, 'BadRequest', `container ${container} is not valid for pod ${podName}`),
        );
        return;
      }
      const command = url.searchParams.getAll('command');
      wss.handleUpgrade(req, socket, head, (ws) => {
        void this.exec(ws, { namespace, pod: podName, container, command });
      });
      return;
    }
    const port = Number(url.searchParams.get('ports'));
    if (!Number.isInteger(port) || port <= 0 || port > 65535) {
      reject(socket, 400, failure(400, 'BadRequest', `invalid port "${url.searchParams.get('ports')}"`));
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => this.portForward(ws, pod, port));
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  private async exec(ws: WebSocket, call: ExecCall): Promise<void> {
    this.execs.push(call);
    let reply: ExecReply | undefined;
    try {
      for (const handler of this.handlers) {
        reply = await handler(call);
        if (reply) break;
      }
    } catch (err) {
      reply = { error: `exec handler threw: ${String(err)}` };
    }
    reply ??= { stderr: `sh: ${call.command[0] ?? ''}: not found\n`, exitCode: 127 };
    if (ws.readyState !== ws.OPEN) return;
    if (reply.stdout) ws.send(frame(1, Buffer.from(reply.stdout)));
    if (reply.stderr) ws.send(frame(2, Buffer.from(reply.stderr)));
    const exitCode = reply.exitCode ?? 0;
    const status = reply.error
      ? { metadata: {}, status: 'Failure', message: reply.error, reason: 'InternalError', code: 500 }
      : exitCode === 0
        ? { metadata: {}, status: 'Success' }
        : {
            metadata: {},
            status: 'Failure',
            message: `command terminated with non-zero exit code: error executing command [${call.command.join(' ')}], exit code ${exitCode}`,
            reason: 'NonZeroExitCode',
            details: { causes: [{ reason: 'ExitCode', message: String(exitCode) }] },
          };
    ws.send(frame(3, Buffer.from(JSON.stringify(status))));
    ws.close(1000);
  }

  private portForward(ws: WebSocket, pod: Obj, port: number): void {
    const portBytes = Buffer.alloc(2);
    portBytes.writeUInt16LE(port, 0);
    ws.send(frame(0, portBytes));
    ws.send(frame(1, portBytes));
    const target = this.forwards.find(
      (f) =>
        f.port === port &&
        (typeof f.pod === 'string' ? f.pod === pod.metadata.name : f.pod.test(pod.metadata.name)),
    )?.target;
    if (!target) {
      ws.send(frame(1, Buffer.from(refused(pod, port))));
      ws.close(1000);
      return;
    }
    const tcp = connect(target.port, target.host);
    this.sockets.add(tcp);
    tcp.on('data', (data: Buffer) => {
      if (ws.readyState === ws.OPEN) ws.send(frame(0, data));
    });
    tcp.on('error', () => {
      if (ws.readyState === ws.OPEN) ws.send(frame(1, Buffer.from(refused(pod, port))));
    });
    tcp.on('close', () => {
      this.sockets.delete(tcp);
      if (ws.readyState === ws.OPEN) ws.close(1000);
    });
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      const buf = isBinary ? data : Buffer.from(data);
      if (buf.length === 0) return;
      const channel = buf[0];
      // v5 would send 255 <channel> to half-close; v4 clients simply close the socket.
      if (channel === 255) tcp.end();
      else if (channel === 0 && buf.length > 1) tcp.write(buf.subarray(1));
    });
    ws.on('close', () => tcp.end());
    ws.on('error', () => tcp.destroy());
  }
}

function frame(channel: number, data: Buffer): Buffer {
  return Buffer.concat([Buffer.from([channel]), data]);
}

function failure(code: number, reason: string, message: string): Record<string, unknown> {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
}

/** The kubelet's message when nothing listens on the pod's port. */
function refused(pod: Obj, port: number): string {
  return (
    `error forwarding port ${port} to pod ${pod.metadata.uid ?? pod.metadata.name}, uid : failed to execute portforward ` +
    `in network namespace: failed to connect to localhost:${port} inside namespace, ` +
    `IPv4: dial tcp4 127.0.0.1:${port}: connect: connection refused`
  );
}
