/**
 * Reading the Prometheus text format that every lab process serves on `/metrics`, enough to
 * add up counters: `name{label="value",…} 12` and `name 12` lines; comments, timestamps and
 * everything else are skipped.
 */

export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?\s*/y;

function unescapeLabel(value: string): string {
  return value.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
}

function parseLabels(text: string): Record<string, string> | undefined {
  const labels: Record<string, string> = {};
  let at = 0;
  // Each round consumes one label; a line has far fewer than its length.
  for (let round = 0; at < text.length && round <= text.length; round++) {
    LABEL.lastIndex = at;
    const match = LABEL.exec(text);
    if (!match) return undefined;
    labels[match[1] as string] = unescapeLabel(match[2] as string);
    at = LABEL.lastIndex;
  }
  return labels;
}

/** Every sample in `text`; a line that does not parse is left out rather than guessed at. */
export function parsePromText(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const match = LINE.exec(line);
    if (!match) continue;
    const labels = match[2] === undefined ? {} : parseLabels(match[2]);
    const value = Number(match[3]);
    if (!labels || Number.isNaN(value)) continue;
    samples.push({ name: match[1] as string, labels, value });
  }
  return samples;
}

/** The sum of `name` over every label set that `where` accepts (all by default); 0 when absent. */
export function sumOf(
  samples: readonly Sample[],
  name: string,
  where: (labels: Readonly<Record<string, string>>) => boolean = () => true,
): number {
  let total = 0;
  for (const sample of samples) if (sample.name === name && where(sample.labels)) total += sample.value;
  return total;
}

/** The value of `name` with no filter on labels, or undefined when the family is absent. */
export function firstValue(samples: readonly Sample[], name: string): number | undefined {
  return samples.find((s) => s.name === name)?.value;
}
