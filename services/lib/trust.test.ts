import { describe, expect, it } from 'vitest';
import {
  isTrustMode,
  SIGNATURE_MAX_SKEW_MS,
  signRequest,
  signsCalls,
  TRUST_HEADERS,
  transport,
  verifyRequest,
} from './trust.ts';

const KEY = 'k';
const NOW = 1_700_000_000_000;
const REQUEST = { method: 'GET', path: '/archives/2?x=1' };

describe('signRequest / verifyRequest', () => {
  it('round-trips, naming the caller', () => {
    const headers = signRequest(KEY, 'gateway-naive', REQUEST, NOW);
    expect(Object.keys(headers).sort()).toEqual(Object.values(TRUST_HEADERS).sort());
    expect(headers[TRUST_HEADERS.timestamp]).toBe(String(NOW));
    expect(verifyRequest(KEY, headers, REQUEST, NOW)).toEqual({ ok: true, caller: 'gateway-naive' });
  });

  it('is deterministic for the same inputs and differs when any input differs', () => {
    const sig = (key: string, caller: string, method: string, path: string, now: number) =>
      signRequest(key, caller, { method, path }, now)[TRUST_HEADERS.signature];
    const base = sig(KEY, 'gw', 'GET', '/a', NOW);
    expect(sig(KEY, 'gw', 'GET', '/a', NOW)).toBe(base);
    expect(base).toMatch(/^[0-9a-f]{64}$/);
    for (const other of [
      sig('k2', 'gw', 'GET', '/a', NOW),
      sig(KEY, 'gw2', 'GET', '/a', NOW),
      sig(KEY, 'gw', 'POST', '/a', NOW),
      sig(KEY, 'gw', 'GET', '/a?b', NOW),
      sig(KEY, 'gw', 'GET', '/a', NOW + 1),
    ]) {
      expect(other).not.toBe(base);
    }
  });

  it('treats the method case-insensitively', () => {
    const headers = signRequest(KEY, 'gw', { method: 'get', path: '/a' }, NOW);
    expect(verifyRequest(KEY, headers, { method: 'GET', path: '/a' }, NOW).ok).toBe(true);
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
});

describe('trust modes', () => {
  it('knows its modes', () => {
    expect(['zero', 'half', 'full', 'none'].map(isTrustMode)).toEqual([true, true, true, false]);
    expect(signsCalls('zero')).toBe(false);
    expect(signsCalls('half')).toBe(true);
    expect(signsCalls('full')).toBe(true);
  });

  it('refuses full trust with a message that says what to use instead', () => {
    expect(transport('zero')).toEqual({ scheme: 'http' });
    expect(transport('half')).toEqual({ scheme: 'http' });
    expect(() => transport('full')).toThrow(/TRUST_MODE=full.*not built yet.*"half"/);
  });
});
