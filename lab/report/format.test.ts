import { describe, expect, it } from 'vitest';
import {
  formatCount,
  formatDateTime,
  formatElapsed,
  formatExpected,
  formatMetric,
  formatMs,
  formatParams,
  formatRps,
  formatShare,
  formatTime,
  humanKey,
} from './format.ts';
import { escapeHtml, html, raw } from './html.ts';

describe('numbers', () => {
  it.each([
    [412.4, '412 ms'],
    [2013.2, '2,013 ms'],
    [4.24, '4.2 ms'],
    [0.42, '0.42 ms'],
    [0, '0 ms'],
    [null, '—'],
    [Number.NaN, '—'],
  ])('writes %s milliseconds as %s', (value, text) => {
    expect(formatMs(value)).toBe(text);
  });

  it.each([
    [0.995, '99.5%'],
    [1, '100%'],
    [0, '0%'],
    [0.9996, '99.96%'],
    [0.99999, '>99.99%'],
    [0.0004, '0.04%'],
    [0.00001, '<0.01%'],
    [0.3, '30.0%'],
    [null, '—'],
  ])('writes the share %s as %s, never rounding a failure away', (value, text) => {
    expect(formatShare(value)).toBe(text);
  });

  it('writes rates and counts with their units and separators', () => {
    expect(formatRps(49.94)).toBe('49.9 rps');
    expect(formatCount(12_345)).toBe('12,345');
    expect(formatCount(undefined)).toBe('—');
  });

  it('formats a claim value by its metric', () => {
    expect(formatMetric('p99', 111.8)).toBe('112 ms');
    expect(formatMetric('successRate', 0.998)).toBe('99.8%');
    expect(formatMetric('achievedRps', 50)).toBe('50.0 rps');
    expect(formatMetric('restarts', 3)).toBe('3');
    expect(formatMetric('somethingNew', 1.23456)).toBe('1.235');
    expect(formatMetric('p99', null)).toBe('—');
  });

  it('writes expectations in the unit of their metric', () => {
    expect(formatExpected('successRate', '>= 0.99')).toBe('≥ 99%');
    expect(formatExpected('degradedRate', '< 0.005')).toBe('< 0.5%');
    expect(formatExpected('p99', '< 350ms')).toBe('< 350 ms');
    expect(formatExpected('p99', '<= 1.5s')).toBe('≤ 1,500 ms');
    expect(formatExpected('restarts', '== 0')).toBe('= 0');
    // Anything else is shown as written.
    expect(formatExpected('successRate', 'about 0.99')).toBe('about 0.99');
    expect(formatExpected('successRate', '> 5s')).toBe('> 5s');
  });

  it('names fault parameters in words with their units', () => {
    expect(formatParams({ delayMs: 400, jitterMs: 20 })).toBe('delay 400 ms, jitter 20 ms');
    expect(formatParams({ status: 503, percent: 30 })).toBe('status 503, percent 30%');
    expect(formatParams({ lossRate: 0.29 })).toBe('loss rate 29.0%');
    expect(formatParams({})).toBe('—');
    expect(humanKey('addedLatencyMs')).toBe('added latency');
  });
});

describe('times', () => {
  it('writes instants in UTC whatever the machine’s zone', () => {
    expect(formatDateTime('2025-06-01T14:03:09.102Z')).toBe('2025-06-01 14:03:09 UTC');
    expect(formatTime('2025-06-01T14:03:22.418Z')).toBe('14:03:22.418');
    expect(formatTime('not a date')).toBe('not a date');
    expect(formatTime(null)).toBe('—');
  });

  it.each([
    [45_000, '45 s'],
    [200_000, '3 min 20 s'],
    [120_000, '2 min'],
    [3_720_000, '1 h 2 min'],
    [250, '250 ms'],
    [null, '—'],
  ])('writes %s ms elapsed as %s', (ms, text) => {
    expect(formatElapsed(ms)).toBe(text);
  });
});

describe('html', () => {
  it('escapes interpolated text and keeps markup made by html or raw', () => {
    const name = '<img src=x onerror="alert(1)">&\'';
    const out = html`<p title="${name}">${name}${html`<b>${'<i>'}</b>`}${raw('<hr>')}${[1, null, false, 'x']}</p>`;
    expect(out.text).toBe(
      `<p title="${escapeHtml(name)}">&lt;img src=x onerror=&quot;alert(1)&quot;&gt;&amp;&#39;<b>&lt;i&gt;</b><hr>1x</p>`,
    );
  });
});
