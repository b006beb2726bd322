import { createServer as createHttpServer, type RequestListener, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { SERVICE_ENV } from '../names.ts';
import { ConfigError } from './env.ts';

/**
 * Full trust's transport: mutual TLS with the lab's own CA (generated at `up`, see
 * lab/pki.ts). Every backend has a server certificate for its service's name; the gateways
 * share one client certificate, `GATEWAY_IDENTITY`. A backend listens on one port for both
 * plain HTTP (probes, scraping, the fault agent, and calls in zero or half trust) and TLS,
 * told apart by the first byte; its TLS side asks for a client certificate and ends the
 * handshake of any client without one from the lab's CA — before HTTP, before any handler.
 */

/** The common name of the gateways' client certificate: the one identity a backend serves in full trust. */
export const GATEWAY_IDENTITY = 'chaos-lab-gateway';

export interface TlsMaterial {
  /** PEM of the lab's CA. */
  readonly ca: string;
  /** PEM of this process's certificate. */
  readonly cert: string;
  /** PEM of its private key. */
  readonly key: string;
}

type Env = Readonly<Record<string, string | undefined>>;

/** TLS_CA, TLS_CERT and TLS_KEY: all three, or none (no TLS: full trust cannot be asked for). */
export function tlsFromEnv(env: Env): TlsMaterial | undefined {
  const names = [SERVICE_ENV.tlsCa, SERVICE_ENV.tlsCert, SERVICE_ENV.tlsKey] as const;
  const values = names.map((name) => env[name]?.trim() || undefined);
  if (values.every((v) => v === undefined)) return undefined;
  const missing = names.filter((_, i) => values[i] === undefined);
  if (missing.length > 0) {
    throw new ConfigError(`${missing.join(' and ')} not set: TLS needs ${names.join(', ')} together`);
  }
  for (const [i, name] of names.entries()) {
    const pem = values[i] as string;
    const label = i === 2 ? 'PRIVATE KEY' : 'CERTIFICATE';
    if (!pem.includes(`-----BEGIN ${label}-----`) && !pem.includes(`-----BEGIN EC ${label}-----`)) {
      throw new ConfigError(`${name} is not a PEM ${label.toLowerCase()} (no "-----BEGIN ${label}-----")`);
    }
  }
  const [ca, cert, key] = values as [string, string, string];
  return { ca, cert, key };
}

/** The first byte of a TLS connection: a handshake record. */
const TLS_HANDSHAKE = 0x16;

export interface DualServer {
  /** What listens: a TCP server handing each connection to `plain` or to the TLS side. */
  readonly listener: NetServer;
  /** The HTTP server of plain connections. */
  readonly plain: Server;
  /** Ends every connection of both sides. */
  closeAllConnections(): void;
}

/**
 * One port, two protocols: plain HTTP and HTTPS with client certificates from `tls.ca`
 * required (`rejectUnauthorized`). Both serve `handler`; a handler tells them apart by
 * `req.socket.encrypted`.
 */
export function createDualServer(
  handler: RequestListener,
  tls: TlsMaterial,
  keepAliveTimeout: number,
): DualServer {
  const plain = createHttpServer(handler);
  const secure = createHttpsServer(
    { ca: tls.ca, cert: tls.cert, key: tls.key, requestCert: true, rejectUnauthorized: true },
    handler,
  );
  plain.keepAliveTimeout = keepAliveTimeout;
  secure.keepAliveTimeout = keepAliveTimeout;
  // A client that fails the handshake (no certificate, another CA) is simply disconnected.
  secure.on('tlsClientError', (_err, socket) => socket.destroy());
  // Every connection, whichever side owns it (or none yet): closing ends them all.
  const sockets = new Set<Socket>();
  const listener = createNetServer((socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    // Until a server owns it, a reset by the peer must not be an uncaught error, and a client
    // that connects and says nothing is let go.
    socket.on('error', () => socket.destroy());
    socket.setTimeout(keepAliveTimeout, () => socket.destroy());
    socket.once('data', (first: Buffer) => {
      socket.setTimeout(0);
      socket.pause();
      socket.unshift(first);
      (first[0] === TLS_HANDSHAKE ? secure : plain).emit('connection', socket);
      process.nextTick(() => socket.resume());
    });
  });
  return {
    listener,
    plain,
    closeAllConnections() {
      plain.closeAllConnections();
      secure.closeAllConnections();
      for (const socket of sockets) socket.destroy();
    },
  };
}

/** The common name of the client certificate a request came with over TLS, if any. */
export function clientIdentity(socket: unknown): string | undefined {
  const tls = socket as Partial<TLSSocket> & { encrypted?: boolean };
  if (!tls.encrypted || !tls.authorized || typeof tls.getPeerCertificate !== 'function') return undefined;
  const cn = tls.getPeerCertificate().subject?.CN;
  return typeof cn === 'string' ? cn : undefined;
}
