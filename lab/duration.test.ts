import { describe, expect, it } from 'vitest';
import { DurationError, formatDuration, parseDuration } from './duration.ts';

describe('parseDuration', () => {
  it.each([
    ['300ms', 300],
    ['0ms', 0],
    ['1.5s', 1_500],
    ['20s', 20_000],
    ['2m', 120_000],
    ['1h', 3_600_000],
    ['0.25s', 250],
  ])('reads %s as %i ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(['300', '', 's', '-1s', '1.5', '3x', '1 s', '1e3ms', '.5s', '1,5s', '10sec'])(
    'refuses %j with a message that shows the right form',
    (text) => {
      expect(() => parseDuration(text)).toThrow(DurationError);
      expect(() => parseDuration(text)).toThrow(/e\.g\. 300ms, 1\.5s, 20s or 2m/);
    },
  );

  it('refuses a fraction of a millisecond instead of rounding it away', () => {
    expect(() => parseDuration('1.0005s')).toThrow(/whole number of milliseconds/);
    expect(() => parseDuration('0.5ms')).toThrow(/whole number of milliseconds/);
  });
});

describe('formatDuration', () => {
  it.each([
    [250, '250ms'],
    [1_500, '1.5s'],
    [20_000, '20s'],
    [60_000, '1m'],
    [90_000, '1.5m'],
    [3_600_000, '1h'],
  ])('writes %i ms as %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });

  it('round-trips what parseDuration reads', () => {
    for (const text of ['300ms', '1.5s', '20s', '2m']) expect(formatDuration(parseDuration(text))).toBe(text);
  });
});
