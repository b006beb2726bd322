import { isTemporary, isTimeout, LabError } from '../lib/errors.ts';
import { REQUEST_ID_HEADER } from '../lib/service-app.ts';
import type { BackendName } from '../topology.ts';
import { fail, ok, type Result } from './result.ts';
import type { UpstreamInstance } from './upstream.ts';

/**
 * One HTTP call to one backend instance. Whatever happens on the wire comes back as a value:
 * the JSON body, or a LabError that says what it means for the page and how it behaves —
 * temporary (worth retrying elsewhere), a timeout (our own deadline), or final.
 */
export interface UpstreamCall {
  readonly dependency: BackendName;
  /** Path and query, exactly as sent (and signed). */
  readonly path: string;
  readonly requestId: string;
  /** Aborts the call; when it aborts because of `deadlineMs`, the result is a timeout. */
  readonly signal?: AbortSignal;
  readonly deadlineMs?: number;
  /** Headers that authenticate the call (half trust; none in zero and full trust). */
  readonly sign?: (request: { method: 'GET'; path: string; audience: BackendName }) => Record<string, string>;
}

/** Socket-level failures: the instance is not there (or not any more). */
const CONNECTION_FAILURES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_CLOSED',
]);

export async function callUpstream(instance: UpstreamInstance, call: UpstreamCall): Promise<Result<unknown>> {
  const headers: Record<string, string> = {
    accept: 'application/json',
    [REQUEST_ID_HEADER]: call.requestId,
    ...call.sign?.({ method: 'GET', path: call.path, audience: call.dependency }),
  };
  const where = { dependency: call.dependency, upstream: instance.url };
  let response: Awaited<ReturnType<typeof instance.pool.request>>;
  let body: unknown;
  try {
    response = await instance.pool.request({
      path: call.path,
      method: 'GET',
      headers,
      ...(call.signal ? { signal: call.signal } : {}),
    });
    body = await response.body.json().catch(() => undefined);
  } catch (err) {
    if (call.signal?.aborted && isTimeout(call.signal.reason)) {
      return fail(
        new LabError({
          status: 504,
          reason: 'DEPENDENCY_TIMEOUT',
          message: `${call.dependency} did not answer within its deadline of ${call.deadlineMs ?? '?'} ms (${instance.url})`,
          timeout: true,
          metadata: where,
          cause: err,
        }),
      );
    }
    const code = errorCode(err);
    if (code !== undefined && CONNECTION_FAILURES.has(code)) instance.eject();
    return fail(
      new LabError({
        status: 503,
        reason: 'DEPENDENCY_UNAVAILABLE',
        message: `${call.dependency} is unreachable at ${instance.url}: ${code ?? messageOf(err)}`,
        temporary: true,
        metadata: { ...where, ...(code ? { code } : {}) },
        cause: err,
      }),
    );
  }

  const status = response.statusCode;
  if (status >= 200 && status < 300 && body !== undefined) return ok(body);
  const upstream = upstreamError(body);
  const metadata = {
    ...where,
    upstreamStatus: String(status),
    ...(upstream.reason ? { upstreamReason: upstream.reason } : {}),
  };
  if (status === 404) {
    return fail(
      new LabError({
        status: 404,
        reason: upstream.reason ?? 'NOT_FOUND',
        message: upstream.message ?? `${call.dependency} has no ${call.path}`,
        metadata,
      }),
    );
  }
  if (status === 503 || status === 429) {
    return fail(
      new LabError({
        status: 503,
        reason: 'DEPENDENCY_UNAVAILABLE',
        message: `${call.dependency} answered ${status} (${upstream.reason ?? 'no reason'}) at ${instance.url}`,
        temporary: true,
        metadata,
      }),
    );
  }
  return fail(
    new LabError({
      status: 502,
      reason: 'DEPENDENCY_FAILED',
      message:
        status >= 200 && status < 300
          ? `${call.dependency} answered ${status} without a JSON body at ${instance.url}`
          : `${call.dependency} answered ${status} (${upstream.reason ?? 'no reason'}) at ${instance.url}`,
      metadata,
    }),
  );
}

/**
 * Whether an outcome tells the breaker the backend did not accept the call: timeouts,
 * temporary failures and 5xx do; a 404 or another 4xx is the backend answering.
 */
export function rejectedByBackend(err: LabError): boolean {
  if (isTimeout(err) || isTemporary(err)) return true;
  const upstreamStatus = Number(err.metadata.upstreamStatus);
  return Number.isInteger(upstreamStatus) && upstreamStatus >= 500;
}

function upstreamError(body: unknown): { reason?: string; message?: string } {
  if (typeof body !== 'object' || body === null) return {};
  const error = (body as { error?: unknown }).error;
  if (typeof error !== 'object' || error === null) return {};
  const { reason, message } = error as { reason?: unknown; message?: unknown };
  return {
    ...(typeof reason === 'string' ? { reason } : {}),
    ...(typeof message === 'string' ? { message } : {}),
  };
}

function errorCode(err: unknown): string | undefined {
  // undici and net report the cause at different depths (and as an AggregateError when
  // several addresses were tried); look a few levels down, no further.
  let current: unknown = err;
  for (let depth = 0; depth < 4 && typeof current === 'object' && current !== null; depth++) {
    const e = current as { code?: unknown; cause?: unknown; errors?: unknown[] };
    if (typeof e.code === 'string' && e.code !== 'UND_ERR') return e.code;
    current = e.cause ?? e.errors?.[0];
  }
  return undefined;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
