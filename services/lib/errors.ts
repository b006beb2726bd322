/**
 * Opaque errors with behaviour, as in the seed notes (Go's `net.Error` with `Timeout()` and
 * `Temporary()`): callers never switch on concrete types or messages, they ask what an
 * error *does* — may it be retried? did a deadline run out? The Kratos shape adds a status
 * code and a machine-readable reason that travel over HTTP.
 */

/** Anything that can say whether retrying it might help. */
interface Temporary {
  temporary(): boolean;
}
/** Anything that can say whether it is a deadline running out. */
interface Timeout {
  timeout(): boolean;
}

export interface LabErrorOptions {
  /** HTTP status to answer with when this error reaches the edge. */
  readonly status: number;
  /** Machine-readable reason, UPPER_SNAKE (e.g. `DEPENDENCY_TIMEOUT`). */
  readonly reason: string;
  readonly message: string;
  readonly temporary?: boolean;
  readonly timeout?: boolean;
  readonly metadata?: Readonly<Record<string, string>>;
  readonly cause?: unknown;
}

export class LabError extends Error implements Temporary, Timeout {
  readonly status: number;
  readonly reason: string;
  readonly metadata: Readonly<Record<string, string>>;
  readonly #temporary: boolean;
  readonly #timeout: boolean;

  constructor(options: LabErrorOptions) {
    super(options.message, { cause: options.cause });
    this.name = 'LabError';
    this.status = options.status;
    this.reason = options.reason;
    this.metadata = options.metadata ?? {};
    this.#temporary = options.temporary ?? false;
    this.#timeout = options.timeout ?? false;
  }

  temporary(): boolean {
    return this.#temporary;
  }

  timeout(): boolean {
    return this.#timeout;
  }

  /** The JSON body the edge answers with. */
  toJSON(): { status: number; reason: string; message: string; metadata: Readonly<Record<string, string>> } {
    return { status: this.status, reason: this.reason, message: this.message, metadata: this.metadata };
  }
}

function hasMethod<K extends string>(value: unknown, key: K): value is Record<K, () => unknown> {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Record<string, unknown>)[key] === 'function'
  );
}

/** True when the error says a retry might succeed (connection refused, 503, reset…). */
export function isTemporary(err: unknown): boolean {
  return hasMethod(err, 'temporary') && err.temporary() === true;
}

/** True when the error is a deadline running out. */
export function isTimeout(err: unknown): boolean {
  return hasMethod(err, 'timeout') && err.timeout() === true;
}

export function isLabError(err: unknown): err is LabError {
  return err instanceof LabError;
}

/** Any thrown value as a LabError: unknown errors become an opaque 500. */
export function asLabError(err: unknown): LabError {
  if (err instanceof LabError) return err;
  const status = httpStatusOf(err);
  if (status !== undefined && status >= 400 && status < 500) {
    return new LabError({ status, reason: reasonOf(err, status), message: messageOf(err), cause: err });
  }
  return new LabError({ status: 500, reason: 'INTERNAL', message: 'internal error', cause: err });
}

function httpStatusOf(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as { status?: unknown; statusCode?: unknown };
  const status = e.status ?? e.statusCode;
  return typeof status === 'number' ? status : undefined;
}

const REASON_BY_STATUS: Readonly<Record<number, string>> = {
  400: 'BAD_REQUEST',
  401: 'UNAUTHORIZED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  405: 'METHOD_NOT_ALLOWED',
  413: 'PAYLOAD_TOO_LARGE',
  415: 'UNSUPPORTED_MEDIA_TYPE',
};

/** Body-parser says what went wrong in `type` (`entity.parse.failed`…); else the status does. */
function reasonOf(err: unknown, status: number): string {
  const type = (err as { type?: unknown }).type;
  if (typeof type === 'string' && type.length > 0) return type.toUpperCase().replace(/[^A-Z0-9]+/g, '_');
  return REASON_BY_STATUS[status] ?? 'CLIENT_ERROR';
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export const errors = {
  badRequest: (reason: string, message: string, metadata?: Record<string, string>) =>
    new LabError({ status: 400, reason, message, ...(metadata ? { metadata } : {}) }),
  notFound: (reason: string, message: string) => new LabError({ status: 404, reason, message }),
  unauthorized: (reason: string, message: string) => new LabError({ status: 401, reason, message }),
  forbidden: (reason: string, message: string) => new LabError({ status: 403, reason, message }),
  conflict: (reason: string, message: string, metadata?: Record<string, string>) =>
    new LabError({ status: 409, reason, message, ...(metadata ? { metadata } : {}) }),
  unavailable: (reason: string, message: string, cause?: unknown) =>
    new LabError({ status: 503, reason, message, temporary: true, cause }),
  timeout: (reason: string, message: string, cause?: unknown) =>
    new LabError({ status: 504, reason, message, timeout: true, cause }),
  internal: (reason: string, message: string, cause?: unknown) =>
    new LabError({ status: 500, reason, message, cause }),
};
