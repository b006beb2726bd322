import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Server as NetServer } from 'node:net';
import express, { type ErrorRequestHandler, type Express, type Request, type RequestHandler } from 'express';
import { type Logger, pino, stdSerializers } from 'pino';
import { Counter, collectDefaultMetrics, Histogram, Registry } from 'prom-client';
import { PLATFORM_PATHS, REQUEST_DURATION_METRIC, SERVICE_ENV } from '../names.ts';
import { type Acceptors, addAcceptors, NODE_ACCEPTOR } from './acceptors.ts';
import { asLabError, errors } from './errors.ts';
import { createDualServer, type TlsMaterial } from './tls.ts';
import { abbreviate, TRUST_HEADERS } from './trust.ts';

export const REQUEST_ID_HEADER = 'x-request-id';

const INFRA_PATHS = Object.values(PLATFORM_PATHS);

/** A path the platform uses (probes, scraping, the fault agent): faults and trust skip it. */
export function isInfraPath(path: string): boolean {
  return INFRA_PATHS.some((p) => path === p || path.startsWith(`${p}/`));
}

export interface ServiceContext {
  /** `account`, …, or `gateway`. */
  readonly service: string;
  /** This instance: `account-1` locally, the pod name on Kubernetes. */
  readonly instanceId: string;
  readonly log: Logger;
  /** This instance's own registry (not prom-client's global one, so tests can run many). */
  readonly metrics: Registry;
  /** Readiness as `/readyz` reports it. Starts false; the service sets it when it can serve. */
  readonly readiness: { get(): boolean; set(ready: boolean): void };
}

export interface ServiceAppOptions {
  readonly service: string;
  readonly instanceId: string;
  /** @default a pino logger to stdout at `LOG_LEVEL` (info) */
  readonly log?: Logger;
  /** @default true */
  readonly processMetrics?: boolean;
}

export interface ServiceApp {
  readonly app: Express;
  readonly ctx: ServiceContext;
  /** Installs the 404 and error handlers. Call after mounting every route. */
  finalize(): void;
}

declare module 'node:http' {
  interface IncomingMessage {
    /** This request's id: the caller's `x-request-id`, or a new UUID. */
    id?: string;
    /** A logger whose lines carry this request's id (made on first use). */
    readonly log: Logger;
  }
  interface ServerResponse {
    /** The error that reached the error middleware, written with the request's log line. */
    err?: Error;
  }
}

/** The request id of a request, as set by the service app's middleware. */
export function requestIdOf(req: Request): string {
  return String(req.id ?? '');
}

export function createLogger(
  service: string,
  instanceId: string,
  level = process.env[SERVICE_ENV.logLevel] ?? 'info',
): Logger {
  return pino({ level, base: { service, instance: instanceId } });
}

/**
 * An express 5 app with what every lab service has: request ids, JSON request logs,
 * RED metrics by route and status, liveness and readiness, and an error middleware that
 * turns every request-path error into a JSON answer without ever killing the process
 * (the Kratos recovery middleware: express 5 routes rejected promises here too).
 */
/** How finely process metrics sample the event loop's delay (nodejs_eventloop_lag_*). */
export const EVENT_LOOP_PRECISION_MS = 1_000;

export function createServiceApp(options: ServiceAppOptions): ServiceApp {
  const log = options.log ?? createLogger(options.service, options.instanceId);
  const metrics = new Registry();
  metrics.setDefaultLabels({ service: options.service, instance: options.instanceId });
  // The event loop's delay is sampled once a second, not every 10 ms (prom-client's default):
  // idle, fifteen lab processes woke 100 times a second each for it, a tenth of an idle lab's CPU.
  if (options.processMetrics ?? true) {
    collectDefaultMetrics({ register: metrics, eventLoopMonitoringPrecision: EVENT_LOOP_PRECISION_MS });
  }

  let ready = false;
  const ctx: ServiceContext = {
    service: options.service,
    instanceId: options.instanceId,
    log,
    metrics,
    readiness: {
      get: () => ready,
      set: (value) => {
        ready = value;
      },
    },
  };

  const duration = new Histogram({
    name: REQUEST_DURATION_METRIC,
    help: 'Time to answer an HTTP request, by route and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [metrics],
  });
  const requestErrors = new Counter({
    name: 'http_server_errors_total',
    help: 'Requests that ended in the error middleware, by reason',
    labelNames: ['reason'] as const,
    registers: [metrics],
  });

  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);

  app.use(requestLog(log, duration));

  app.get(PLATFORM_PATHS.health, (_req, res) => {
    res.json({ status: 'ok', service: ctx.service, instance: ctx.instanceId });
  });
  app.get(PLATFORM_PATHS.ready, (_req, res) => {
    res.status(ready ? 200 : 503).json({ ready, service: ctx.service, instance: ctx.instanceId });
  });
  app.get(PLATFORM_PATHS.metrics, async (_req, res) => {
    res.setHeader('content-type', metrics.contentType);
    res.send(await metrics.metrics());
  });

  const notFound: RequestHandler = (req, _res, next) => {
    next(errors.notFound('ROUTE_NOT_FOUND', `no route for ${req.method} ${req.path}`));
  };
  const onError: ErrorRequestHandler = (err, req, res, _next) => {
    const labError = asLabError(err);
    requestErrors.inc({ reason: labError.reason });
    if (labError.status >= 500) {
      // The request's log line carries this error, its stack included.
      res.err = err;
    }
    if (res.headersSent) {
      res.destroy();
      return;
    }
    res.status(labError.status).json({ error: labError.toJSON(), requestId: requestIdOf(req) });
  };

  return {
    app,
    ctx,
    finalize: () => {
      app.use(notFound);
      app.use(onError);
    },
  };
}

/**
 * The level of a request's log line. An answered 5xx (an injected fault, a shed page, a failed
 * dependency) is a warning; only an error that reached the error middleware (set on `res.err`)
 * is an error; a refusal (4xx) is worth a line. A call that went well is written only at debug:
 * a line per page in every process cost more CPU than the page itself, and said nothing the
 * metrics do not.
 */
export function requestLogLevel(
  _req: IncomingMessage,
  res: ServerResponse,
  err?: Error,
): 'error' | 'warn' | 'info' | 'debug' {
  if (err ?? res.err) return 'error';
  if (res.statusCode >= 500) return 'warn';
  if (res.statusCode >= 400) return 'info';
  return 'debug';
}

type DurationHistogram = Histogram<'method' | 'route' | 'status'>;

/** Times a request answered outside the app (a front door) in the service's request histogram. */
export function timeRequest(
  ctx: Pick<ServiceContext, 'metrics'>,
  labels: { readonly method: string; readonly route: string; readonly status: number },
  seconds: number,
): void {
  const duration = ctx.metrics.getSingleMetric(REQUEST_DURATION_METRIC) as DurationHistogram | undefined;
  duration?.observe({ method: labels.method, route: labels.route, status: String(labels.status) }, seconds);
}

/** `x-request-id` when the caller sent a usable one, else a new UUID. */
export function requestIdFrom(req: IncomingMessage): string {
  const given = req.headers[REQUEST_ID_HEADER];
  return typeof given === 'string' && given.length > 0 && given.length <= 128 ? given : randomUUID();
}

/**
 * Request ids, the request's log line and its RED metrics, with one listener per request.
 * It writes pino-http's line (`reqId`, `req`, `res`, `responseTime`, `err`; "request completed"
 * or "request errored") without pino-http's cost: pino-http made two child loggers per request
 * and serialized every request's headers even when its line was below the level. Here a line
 * is built only when its level is written, and `req.log` only when a handler uses it.
 */
function requestLog(log: Logger, duration: DurationHistogram): RequestHandler {
  return (req, res, next) => {
    const id = requestIdFrom(req);
    const began = performance.now();
    req.id = id;
    res.setHeader(REQUEST_ID_HEADER, id);
    let reqLog: Logger | undefined;
    Object.defineProperty(req, 'log', {
      configurable: true,
      get: () => {
        reqLog ??= log.child({ reqId: id });
        return reqLog;
      },
    });
    res.once('close', () => {
      const finished = res.writableFinished;
      const infra = isInfraPath(req.path);
      if (finished) {
        const route = req.route ? `${req.baseUrl}${String(req.route.path)}` : infra ? req.path : 'unmatched';
        duration.observe(
          { method: req.method, route, status: String(res.statusCode) },
          (performance.now() - began) / 1_000,
        );
      }
      if (infra) return;
      const level = requestLogLevel(req, res);
      if (!log.isLevelEnabled(level)) return;
      const failed = res.err !== undefined || res.statusCode >= 500;
      log[level](
        {
          reqId: id,
          req: redactSignature(stdSerializers.req(req)),
          res: stdSerializers.res(res),
          ...(res.err ? { err: res.err } : {}),
          responseTime: Math.round(performance.now() - began),
        },
        !finished ? 'request aborted' : failed ? 'request errored' : 'request completed',
      );
    });
    next();
  };
}

/** A URL a client on this machine can use for a server bound to `host`. */
function clientHost(host: string): string {
  if (host === '0.0.0.0' || host === '') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}

export interface Listening {
  /** The plain HTTP server (with `tls`, the one that serves plain connections). */
  readonly server: Server;
  readonly port: number;
  readonly url: string;
  /** Descriptors accepting connections on the port (see `ListenOptions.acceptors`). */
  readonly acceptors: number;
  close(): Promise<void>;
}

export interface ListenOptions {
  /** Answers some requests before express reads them. */
  readonly front?: FrontDoor;
  /**
   * Descriptors of the listening socket that accept connections, each one more connection
   * accepted per turn of the event loop (`acceptors.ts`). 1 is Node's own behaviour.
   * @default 1
   */
  readonly acceptors?: number;
  /** Told when the extra acceptors could not be added; the port then works with one. */
  readonly onAcceptorsFailed?: (err: Error) => void;
  /** The Node binary that hands the socket's copies over. @default process.execPath */
  readonly helperExecPath?: string;
}

/** @internal A serialized request as a log line shows it: signature and nonce abbreviated. */
export function redactSignature<T extends { headers?: Record<string, unknown> }>(req: T): T {
  const headers = req.headers;
  if (!headers) return req;
  const secret = [TRUST_HEADERS.signature, TRUST_HEADERS.nonce].filter((name) => headers[name] !== undefined);
  if (secret.length === 0) return req;
  const shown = { ...headers };
  for (const name of secret) shown[name] = abbreviate(headers[name] as string | string[]);
  return { ...req, headers: shown };
}

/**
 * How many connections the kernel completes for a listener before the process accepts them
 * (Linux caps it at net.core.somaxconn, 4096 by default). Node's default, 511, overflowed when
 * a client opened hundreds of connections at once, as a load generator does at the onset of an
 * overload: the kernel dropped the handshakes, and each client waited a second for its SYN to be
 * sent again (an overload run at five times the resilient gateway's capacity: 547 overflows,
 * 415 SYNs sent again; none in eight runs with 4096).
 */
export const LISTEN_BACKLOG = 4_096;

/**
 * Answers a request before express reads it, or returns false to let express have it. The
 * resilient gateway's refusals go through one: a refusal must cost far less than a page, or
 * refusing is what overloads the gateway.
 */
export type FrontDoor = (req: IncomingMessage, res: ServerResponse) => boolean;

/** Keep-alive longer than the clients' idle timeout so a pooled socket is never closed under a request in flight (undici's default keep-alive is 4s). */
const KEEP_ALIVE_MS = 10_000;

/**
 * Listens, and resolves once the port is bound (rejects on EADDRINUSE and friends). With
 * `tls`, the port also speaks mutual TLS (full trust, see tls.ts); `url` stays the plain one.
 */
export function listen(
  app: Express,
  port: number,
  host = '127.0.0.1',
  tls?: TlsMaterial,
  options: ListenOptions = {},
): Promise<Listening> {
  const { front, acceptors = 1 } = options;
  return new Promise((resolve, reject) => {
    const handler = front
      ? (req: IncomingMessage, res: ServerResponse) => {
          if (!front(req, res)) app(req, res);
        }
      : app;
    const dual = tls ? createDualServer(handler, tls, KEEP_ALIVE_MS) : undefined;
    const server = dual ? dual.plain : createServer(handler);
    server.keepAliveTimeout = KEEP_ALIVE_MS;
    const listener: NetServer = dual ? dual.listener : server;
    listener.once('error', reject);
    listener.listen({ port, host, backlog: LISTEN_BACKLOG }, () => {
      listener.off('error', reject);
      const address = listener.address() as AddressInfo;
      const listening = (extra: Acceptors): Listening => ({
        server,
        port: address.port,
        url: `http://${clientHost(host)}:${address.port}`,
        acceptors: extra.count,
        close: () =>
          new Promise<void>((done) => {
            extra.close();
            listener.close(() => done());
            if (dual) dual.closeAllConnections();
            else server.closeAllConnections();
          }),
      });
      const helper = options.helperExecPath ? { execPath: options.helperExecPath } : {};
      addAcceptors(listener, acceptors, LISTEN_BACKLOG, helper).then(
        (extra) => resolve(listening(extra)),
        (err: Error) => {
          options.onAcceptorsFailed?.(err);
          resolve(listening(NODE_ACCEPTOR));
        },
      );
    });
  });
}
