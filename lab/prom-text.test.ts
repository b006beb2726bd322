import { describe, expect, it } from 'vitest';
import { firstValue, parsePromText, sumOf } from './prom-text.ts';

const TEXT = `# HELP worker_panics_recovered_total Panics recovered in background tasks
# TYPE worker_panics_recovered_total counter
worker_panics_recovered_total{task="record-view",service="archive",instance="archive-1"} 3
worker_panics_recovered_total{task="other",service="archive",instance="archive-1"} 2
chaos_injected_total{kind="http-error",service="like",instance="like-1"} 7
chaos_injected_total{kind="http-delay",service="like",instance="like-1"} 11
http_server_request_duration_seconds_count{method="GET",route="/likes/:aid",status="200",service="like",instance="like-1"} 40
http_server_request_duration_seconds_count{method="GET",route="/readyz",status="200",service="like",instance="like-1"} 99
odd_label{message="a \\"quoted\\", comma\\nand line"} 1
process_start_time_seconds{service="like",instance="like-1"} 1795513780
up 1 1795513780000
broken{label=unquoted} 5
nan_value NaN
`;

describe('parsePromText', () => {
  const samples = parsePromText(TEXT);

  it('sums a counter over its label sets, or over the ones a filter accepts', () => {
    expect(sumOf(samples, 'worker_panics_recovered_total')).toBe(5);
    expect(sumOf(samples, 'chaos_injected_total', (l) => l.kind === 'http-error')).toBe(7);
    expect(sumOf(samples, 'http_server_request_duration_seconds_count', (l) => l.route !== '/readyz')).toBe(
      40,
    );
    expect(sumOf(samples, 'absent_total')).toBe(0);
  });

  it('reads escaped label values, unlabelled samples with a timestamp, and skips what it cannot parse', () => {
    expect(samples.find((s) => s.name === 'odd_label')?.labels.message).toBe('a "quoted", comma\nand line');
    expect(firstValue(samples, 'up')).toBe(1);
    expect(firstValue(samples, 'process_start_time_seconds')).toBe(1_795_513_780);
    expect(firstValue(samples, 'broken')).toBeUndefined();
    expect(firstValue(samples, 'nan_value')).toBeUndefined();
    expect(firstValue(samples, 'absent')).toBeUndefined();
  });
});
