import { createHmac, timingSafeEqual } from 'node:crypto';
import { ConfigError } from './env.ts';

/**
 * Trust between the gateway and the backends — the seed's three levels:
 * - `zero`: no checks (anyone who can reach a backend is believed);
 * - `half`: authentication — every call carries the caller's identity and an HMAC over
 *   method, path, time and identity; a backend refuses missing, forged or expired ones;
 * - `full`: authentication plus encryption (TLS from a lab CA). The seam is `transport`
 *   below; TLS itself is not built yet, and asking for it fails at start-up.
 */
export const TRUST_MODES = ['zero', 'half', 'full'] as const;
export type TrustMode = (typeof TRUST_MODES)[number];

export const TRUST_HEADERS = {
  caller: 'x-lab-caller',
  timestamp: 'x-lab-timestamp',
  signature: 'x-lab-signature',
} as const;

/** How far a signature's time may be from the backend's clock, either way. */
export const SIGNATURE_MAX_SKEW_MS = 30_000;

export interface SignedRequest {
  readonly method: string;
  /** Path with query string, exactly as sent on the wire. */
  readonly path: string;
}

function mac(key: string, caller: string, timestamp: string, request: SignedRequest): string {
  return createHmac('sha256', key)
    .update(`${request.method.toUpperCase()}\n${request.path}\n${timestamp}\n${caller}`)
    .digest('hex');
}

/** The headers that authenticate one call from `caller`. */
export function signRequest(
  key: string,
  caller: string,
  request: SignedRequest,
  now: number = Date.now(),
): Record<string, string> {
  const timestamp = String(now);
  return {
    [TRUST_HEADERS.caller]: caller,
    [TRUST_HEADERS.timestamp]: timestamp,
    [TRUST_HEADERS.signature]: mac(key, caller, timestamp, request),
  };
}

export type VerifyResult =
  | { readonly ok: true; readonly caller: string }
  | {
      readonly ok: false;
      readonly status: 401 | 403;
      readonly reason: TrustRejection;
      readonly message: string;
    };

export type TrustRejection = 'missing' | 'expired' | 'forged';

type HeaderBag = Readonly<Record<string, string | string[] | undefined>>;

function header(headers: HeaderBag, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/**
 * Checks the signature headers of one incoming call. Missing or expired → 401 (authenticate
 * again), forged → 403 (you are not who you say).
 */
export function verifyRequest(
  key: string,
  headers: HeaderBag,
  request: SignedRequest,
  now: number = Date.now(),
): VerifyResult {
  const caller = header(headers, TRUST_HEADERS.caller);
  const timestamp = header(headers, TRUST_HEADERS.timestamp);
  const signature = header(headers, TRUST_HEADERS.signature);
  if (!caller || !timestamp || !signature) {
    return { ok: false, status: 401, reason: 'missing', message: 'call is not signed (half trust)' };
  }
  const sentAt = Number(timestamp);
  if (!Number.isFinite(sentAt) || Math.abs(now - sentAt) > SIGNATURE_MAX_SKEW_MS) {
    return {
      ok: false,
      status: 401,
      reason: 'expired',
      message: 'signature has expired or its time is invalid',
    };
  }
  const expected = Buffer.from(mac(key, caller, timestamp, request), 'hex');
  const given = Buffer.from(signature, 'hex');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    return { ok: false, status: 403, reason: 'forged', message: 'signature does not match' };
  }
  return { ok: true, caller };
}

export function isTrustMode(value: string): value is TrustMode {
  return (TRUST_MODES as readonly string[]).includes(value);
}

/** Whether calls between services are signed, for a trust mode. */
export function signsCalls(mode: TrustMode): boolean {
  return mode !== 'zero';
}

/**
 * The transport seam for `full` trust: the day TLS lands, servers and clients ask this for
 * their scheme and credentials. Until then `full` is refused with a message that says so.
 */
export function transport(mode: TrustMode): { scheme: 'http' } {
  if (mode === 'full') {
    throw new ConfigError(
      'TRUST_MODE=full (TLS between services) is not built yet; use "half" (authentication) or "zero"',
    );
  }
  return { scheme: 'http' };
}
