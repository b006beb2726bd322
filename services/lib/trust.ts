import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';

/**
 * Trust between the gateway and the backends — the seed's three levels:
 * - `zero`: no checks (anyone who can reach a backend is believed);
 * - `half`: authentication — every call carries the caller's identity, a fresh nonce and an
 *   HMAC over method, path, time, caller, nonce and the service it is meant for; a backend
 *   refuses missing, forged, expired and replayed ones (each nonce is accepted once in its window);
 * - `full`: authentication and encryption — half trust's signatures, over mutual TLS with the
 *   lab's CA: a backend serves a call only over TLS with the gateway's client certificate (see
 *   `tls.ts`), and signed. A gateway in a stricter mode than a backend is still served by it,
 *   so a running lab can be switched from one mode to another without refusals.
 */
export const TRUST_MODES = ['zero', 'half', 'full'] as const;
export type TrustMode = (typeof TRUST_MODES)[number];

export const TRUST_HEADERS = {
  caller: 'x-lab-caller',
  timestamp: 'x-lab-timestamp',
  nonce: 'x-lab-nonce',
  signature: 'x-lab-signature',
} as const;

/** How far a signature's time may be from the backend's clock, either way. */
export const SIGNATURE_MAX_SKEW_MS = 30_000;

/** A signature is 64 lower-case hex digits (HMAC-SHA256), exactly: no prefix, suffix or upper case. */
const SIGNATURE_FORMAT = /^[0-9a-f]{64}$/;
/** A nonce is 32 lower-case hex digits (16 random bytes). */
const NONCE_FORMAT = /^[0-9a-f]{32}$/;
/** Milliseconds since the epoch, as decimal digits only. */
const TIMESTAMP_FORMAT = /^[0-9]{1,15}$/;

export interface SignedRequest {
  readonly method: string;
  /** Path with query string, exactly as sent on the wire. */
  readonly path: string;
  /** The service the call is meant for (`coin`…): a signature for one service is no good on another. */
  readonly audience: string;
}

interface Signed {
  readonly caller: string;
  readonly timestamp: string;
  readonly nonce: string;
}

function mac(key: string, signed: Signed, request: SignedRequest): string {
  return createHmac('sha256', key)
    .update(
      [
        request.method.toUpperCase(),
        request.path,
        request.audience,
        signed.timestamp,
        signed.caller,
        signed.nonce,
      ].join('\n'),
    )
    .digest('hex');
}

/**
 * 32 random hex digits. A v4 UUID without its dashes: Node draws UUIDs from a cached pool of
 * randomness, where `randomBytes(16)` asked OpenSSL on every call (3% of a gateway's CPU).
 * Its fixed version and variant digits leave 122 random bits, plenty for a nonce.
 */
export function newNonce(): string {
  return randomUUID().replaceAll('-', '');
}

/** The headers that authenticate one call from `caller`; every call gets a nonce of its own. */
export function signRequest(
  key: string,
  caller: string,
  request: SignedRequest,
  now: number = Date.now(),
  nonce: string = newNonce(),
): Record<string, string> {
  const signed = { caller, timestamp: String(now), nonce };
  return {
    [TRUST_HEADERS.caller]: caller,
    [TRUST_HEADERS.timestamp]: signed.timestamp,
    [TRUST_HEADERS.nonce]: nonce,
    [TRUST_HEADERS.signature]: mac(key, signed, request),
  };
}

export type VerifyResult =
  | {
      readonly ok: true;
      readonly caller: string;
      readonly nonce: string;
      /** Until when the nonce must be remembered: after that its signature has expired anyway. */
      readonly nonceExpiresAt: number;
    }
  | {
      readonly ok: false;
      readonly status: 401 | 403;
      readonly reason: TrustRejection;
      readonly message: string;
    };

export type TrustRejection = 'missing' | 'expired' | 'forged' | 'replayed' | 'untrusted-transport';

type HeaderBag = Readonly<Record<string, string | string[] | undefined>>;

function header(headers: HeaderBag, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

const forged = (message: string): VerifyResult => ({ ok: false, status: 403, reason: 'forged', message });

/**
 * Checks the signature headers of one incoming call. Missing or expired → 401 (authenticate
 * again), forged → 403 (you are not who you say). Whether the nonce was seen before is the
 * caller's to check (`NonceBook`), after the signature is known to be good.
 */
export function verifyRequest(
  key: string,
  headers: HeaderBag,
  request: SignedRequest,
  now: number = Date.now(),
): VerifyResult {
  const caller = header(headers, TRUST_HEADERS.caller);
  const timestamp = header(headers, TRUST_HEADERS.timestamp);
  const nonce = header(headers, TRUST_HEADERS.nonce);
  const signature = header(headers, TRUST_HEADERS.signature);
  if (!caller || !timestamp || !nonce || !signature) {
    return { ok: false, status: 401, reason: 'missing', message: 'call is not signed (half trust)' };
  }
  const sentAt = TIMESTAMP_FORMAT.test(timestamp) ? Number(timestamp) : Number.NaN;
  if (!Number.isFinite(sentAt) || Math.abs(now - sentAt) > SIGNATURE_MAX_SKEW_MS) {
    return {
      ok: false,
      status: 401,
      reason: 'expired',
      message: 'signature has expired or its time is invalid',
    };
  }
  if (!NONCE_FORMAT.test(nonce)) return forged('nonce is not 32 lower-case hex digits');
  if (!SIGNATURE_FORMAT.test(signature)) return forged('signature is not 64 lower-case hex digits');
  const expected = Buffer.from(mac(key, { caller, timestamp, nonce }, request), 'hex');
  const given = Buffer.from(signature, 'hex');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    return forged('signature does not match');
  }
  return { ok: true, caller, nonce, nonceExpiresAt: sentAt + SIGNATURE_MAX_SKEW_MS };
}

/**
 * The nonces of the calls accepted in the last window, so that each signed call is served
 * once: a copy of it (replayed from a log, or through the proxy) is refused. Only calls whose
 * signature is good get in, so only the key's holders can fill it; entries leave once their
 * signature has expired anyway. One book per process: a replay on another instance of the
 * same service is caught only by that instance's own book (at most once there) — half trust
 * does not encrypt, so a call seen on the wire can be tried once per instance within the
 * window. Full trust closes that.
 */
export class NonceBook {
  readonly #expiries = new Map<string, number>();

  /** Remembers `nonce` until `expiresAt`; false when it is already remembered (a replay). */
  accept(nonce: string, expiresAt: number, now: number): boolean {
    this.#sweep(now);
    if (this.#expiries.has(nonce)) return false;
    this.#expiries.set(nonce, expiresAt);
    return true;
  }

  get size(): number {
    return this.#expiries.size;
  }

  #sweep(now: number): void {
    // Insertion order is nearly expiry order (a fixed window after each call's time); an
    // entry that expires later than the ones behind it only keeps them a little longer.
    for (const [nonce, expiresAt] of this.#expiries) {
      if (expiresAt >= now) return;
      this.#expiries.delete(nonce);
    }
  }
}

/** At most this many hex digits of a signature or nonce are ever written to a log. */
export const LOGGED_HEX_DIGITS = 8;

/** A signature or nonce as a log may show it: its first digits, enough to match, too few to replay. */
export function abbreviate(value: string | readonly string[] | undefined): string | undefined {
  if (value === undefined) return undefined;
  const text = Array.isArray(value) ? value.join(',') : String(value);
  return text.length <= LOGGED_HEX_DIGITS ? text : `${text.slice(0, LOGGED_HEX_DIGITS)}…`;
}

export function isTrustMode(value: string): value is TrustMode {
  return (TRUST_MODES as readonly string[]).includes(value);
}

/** Whether calls between services are signed with the shared key, for a trust mode. */
export function signsCalls(mode: TrustMode): boolean {
  return mode !== 'zero';
}

/** zero < half < full: a gateway is served by a backend whose mode is no stricter than its own. */
export function strictness(mode: TrustMode): number {
  return TRUST_MODES.indexOf(mode);
}

/** Whether calls between services go over mutual TLS, for a trust mode. */
export function usesTls(mode: TrustMode): boolean {
  return mode === 'full';
}
