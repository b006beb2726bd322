import { describe, expect, it } from 'vitest';
import {
  abbreviate,
  isTrustMode,
  NonceBook,
  newNonce,
  SIGNATURE_MAX_SKEW_MS,
  signRequest,
  signsCalls,
  TRUST_HEADERS,
  usesTls,
  verifyRequest,
} from './trust.ts';

const KEY = 'k';
const NOW = 1_700_000_000_000;
const REQUEST = { method: 'GET', path: '/archives/2?x=1', audience: 'archive' };

describe('signRequest / verifyRequest', () => {
  it('round-trips, naming the caller', () => {
    const headers = signRequest(KEY, 'gateway-naive', REQUEST, NOW);
    expect(Object.keys(headers).sort()).toEqual(Object.values(TRUST_HEADERS).sort());
    expect(headers[TRUST_HEADERS.timestamp]).toBe(String(NOW));
    expect(verifyRequest(KEY, headers, REQUEST, NOW)).toEqual({
      ok: true,
      caller: 'gateway-naive',
      nonce: headers[TRUST_HEADERS.nonce],
      nonceExpiresAt: NOW + SIGNATURE_MAX_SKEW_MS,
    });
  });

  it('is deterministic for the same inputs and differs when any input differs', () => {
    const N = 'ab'.repeat(16);
    const sig = (
      key: string,
      caller: string,
      method: string,
      path: string,
      now: number,
      nonce = N,
      audience = 'coin',
    ) => signRequest(key, caller, { method, path, audience }, now, nonce)[TRUST_HEADERS.signature];
    const base = sig(KEY, 'gw', 'GET', '/a', NOW);
    expect(sig(KEY, 'gw', 'GET', '/a', NOW)).toBe(base);
    expect(base).toMatch(/^[0-9a-f]{64}$/);
    for (const other of [
      sig('k2', 'gw', 'GET', '/a', NOW),
      sig(KEY, 'gw2', 'GET', '/a', NOW),
      sig(KEY, 'gw', 'POST', '/a', NOW),
      sig(KEY, 'gw', 'GET', '/a?b', NOW),
      sig(KEY, 'gw', 'GET', '/a', NOW + 1),
      sig(KEY, 'gw', 'GET', '/a', NOW, 'cd'.repeat(16)),
      sig(KEY, 'gw', 'GET', '/a', NOW, N, 'like'),
    ]) {
      expect(other).not.toBe(base);
    }
  });

  it('treats the method case-insensitively', () => {
    const headers = signRequest(KEY, 'gw', { method: 'get', path: '/a', audience: 'coin' }, NOW);
    expect(verifyRequest(KEY, headers, { method: 'GET', path: '/a', audience: 'coin' }, NOW).ok).toBe(true);
  });

  it('accepts a clock skew up to the limit either way, and no more', () => {
    const at = (sentAt: number) => verifyRequest(KEY, signRequest(KEY, 'gw', REQUEST, sentAt), REQUEST, NOW);
    expect(at(NOW - SIGNATURE_MAX_SKEW_MS).ok).toBe(true);
    expect(at(NOW + SIGNATURE_MAX_SKEW_MS).ok).toBe(true);
    expect(at(NOW - SIGNATURE_MAX_SKEW_MS - 1)).toMatchObject({ ok: false, status: 401, reason: 'expired' });
    expect(at(NOW + SIGNATURE_MAX_SKEW_MS + 1)).toMatchObject({ ok: false, status: 401, reason: 'expired' });
  });

  it('calls a timestamp that is not a number expired, not forged', () => {
    const headers = { ...signRequest(KEY, 'gw', REQUEST, NOW), [TRUST_HEADERS.timestamp]: 'yesterday' };
    expect(verifyRequest(KEY, headers, REQUEST, NOW)).toMatchObject({
      ok: false,
      status: 401,
      reason: 'expired',
    });
  });

  it('reports each missing header as missing', () => {
    for (const name of Object.values(TRUST_HEADERS)) {
      const headers: Record<string, string> = signRequest(KEY, 'gw', REQUEST, NOW);
      delete headers[name];
      expect(verifyRequest(KEY, headers, REQUEST, NOW)).toMatchObject({
        ok: false,
        status: 401,
        reason: 'missing',
      });
    }
    expect(verifyRequest(KEY, {}, REQUEST, NOW)).toMatchObject({ reason: 'missing' });
  });

  it('calls a wrong, truncated or non-hex signature forged', () => {
    const good = signRequest(KEY, 'gw', REQUEST, NOW);
    const sig = good[TRUST_HEADERS.signature]!;
    for (const bad of [
      sig.slice(0, 10),
      'zz'.repeat(32),
      `${sig}00`,
      sig.replace(/^./, sig[0] === 'a' ? 'b' : 'a'),
      // Buffer.from(hex) stops at the first character that is not hex: these used to pass.
      `${sig}zz`,
      `${sig}z`,
      sig.toUpperCase(),
      ` ${sig}`,
    ]) {
      const result = verifyRequest(KEY, { ...good, [TRUST_HEADERS.signature]: bad }, REQUEST, NOW);
      expect(result).toMatchObject({ ok: false, status: 403, reason: 'forged' });
    }
  });

  it('reads the first value of a repeated header', () => {
    const good = signRequest(KEY, 'gw', REQUEST, NOW);
    const headers = { ...good, [TRUST_HEADERS.signature]: [good[TRUST_HEADERS.signature]!, 'junk'] };
    expect(verifyRequest(KEY, headers, REQUEST, NOW).ok).toBe(true);
  });

  it('refuses a signature made for another service (a call to coin replayed on like)', () => {
    const headers = signRequest(KEY, 'gw', { ...REQUEST, audience: 'coin' }, NOW);
    expect(verifyRequest(KEY, headers, { ...REQUEST, audience: 'like' }, NOW)).toMatchObject({
      reason: 'forged',
    });
  });

  it('gives every call a nonce of its own, and refuses one that is not 32 lower-case hex digits', () => {
    const a = signRequest(KEY, 'gw', REQUEST, NOW);
    const b = signRequest(KEY, 'gw', REQUEST, NOW);
    expect(a[TRUST_HEADERS.nonce]).toMatch(/^[0-9a-f]{32}$/);
    expect(a[TRUST_HEADERS.nonce]).not.toBe(b[TRUST_HEADERS.nonce]);
    for (const nonce of ['AB'.repeat(16), 'ab'.repeat(15), `${'ab'.repeat(16)}zz`]) {
      const headers = signRequest(KEY, 'gw', REQUEST, NOW, nonce);
      expect(verifyRequest(KEY, headers, REQUEST, NOW)).toMatchObject({ ok: false, reason: 'forged' });
    }
  });

  it('calls a timestamp with anything but digits expired', () => {
    const headers = signRequest(KEY, 'gw', REQUEST, NOW);
    for (const timestamp of [` ${NOW}`, `${NOW}.0`, `+${NOW}`, '0x18bcfe56800']) {
      expect(
        verifyRequest(KEY, { ...headers, [TRUST_HEADERS.timestamp]: timestamp }, REQUEST, NOW),
      ).toMatchObject({ reason: 'expired' });
    }
  });
});

describe('newNonce', () => {
  it('is 32 lower-case hex digits, a new one every time, that a backend accepts', () => {
    const nonces = Array.from({ length: 1_000 }, () => newNonce());
    for (const nonce of nonces) expect(nonce).toMatch(/^[0-9a-f]{32}$/);
    expect(new Set(nonces).size).toBe(nonces.length);
    const headers = signRequest(KEY, 'gateway-resilient', REQUEST, NOW);
    expect(headers[TRUST_HEADERS.nonce]).toMatch(/^[0-9a-f]{32}$/);
    expect(verifyRequest(KEY, headers, REQUEST, NOW)).toMatchObject({ ok: true });
  });
});

describe('NonceBook', () => {
  it('accepts a nonce once until it expires, then forgets it', () => {
    const book = new NonceBook();
    expect(book.accept('n1', NOW + 100, NOW)).toBe(true);
    expect(book.accept('n1', NOW + 100, NOW + 50)).toBe(false);
    expect(book.accept('n2', NOW + 300, NOW + 60)).toBe(true);
    expect(book.size).toBe(2);
    // n1's signature has expired by now: it is swept, and n2 is still held.
    expect(book.accept('n3', NOW + 400, NOW + 200)).toBe(true);
    expect(book.size).toBe(2);
    expect(book.accept('n2', NOW + 300, NOW + 250)).toBe(false);
  });
});

describe('abbreviate', () => {
  it('keeps only the first digits of a signature for logs', () => {
    const sig = 'a'.repeat(64);
    expect(abbreviate(sig)).toBe('aaaaaaaa…');
    expect(abbreviate(undefined)).toBeUndefined();
    expect(abbreviate('short')).toBe('short');
  });
});

describe('trust modes', () => {
  it('knows its modes', () => {
    expect(['zero', 'half', 'full', 'none'].map(isTrustMode)).toEqual([true, true, true, false]);
    expect(signsCalls('zero')).toBe(false);
    expect(signsCalls('half')).toBe(true);
    // Full trust is half trust's signatures, over mutual TLS.
    expect(signsCalls('full')).toBe(true);
    expect(['zero', 'half', 'full'].map((m) => usesTls(m as 'zero'))).toEqual([false, false, true]);
  });
});
