/**
 * What a dashboard query asks of Prometheus, read with Prometheus's own PromQL grammar
 * (@prometheus-io/lezer-promql) rather than guessed with regular expressions: the series it
 * selects (metric name and label matchers) and the labels it groups by.
 */

import { parser } from '@prometheus-io/lezer-promql';

/** Lezer's node type, taken from the parser (its package, @lezer/common, is not ours to import). */
type SyntaxNode = ReturnType<typeof parser.parse>['topNode'];

export interface LabelMatcher {
  readonly label: string;
  readonly op: '=' | '!=' | '=~' | '!~';
  readonly value: string;
}

export interface Selector {
  readonly metric: string;
  readonly matchers: readonly LabelMatcher[];
}

/** `sum by (a, b) (…)` or `… / on (a) …`: labels the selectors inside must carry. */
export interface Grouping {
  readonly labels: readonly string[];
  readonly selectors: readonly Selector[];
}

export interface QueryAnalysis {
  readonly selectors: readonly Selector[];
  readonly groupings: readonly Grouping[];
}

export class PromqlError extends Error {
  override readonly name = 'PromqlError';
}

/**
 * Grafana's range variables are not PromQL; a concrete duration stands in for them. Other
 * variables (`"$strategy"`) only ever appear inside label-matcher strings, where they parse.
 */
const GRAFANA_RANGES =
  /\$(?:__rate_interval|__interval|__range)\b|\$\{(?:__rate_interval|__interval|__range)\}/g;

export function withGrafanaRangesFilled(expr: string): string {
  return expr.replace(GRAFANA_RANGES, '5m');
}

function text(source: string, node: SyntaxNode): string {
  return source.slice(node.from, node.to);
}

function children(node: SyntaxNode): SyntaxNode[] {
  const found: SyntaxNode[] = [];
  for (let child = node.firstChild; child; child = child.nextSibling) found.push(child);
  return found;
}

/** Every node below `node` (itself included), depth first. */
function descendants(node: SyntaxNode): SyntaxNode[] {
  const found: SyntaxNode[] = [node];
  for (const child of children(node)) found.push(...descendants(child));
  return found;
}

function stringValue(literal: string): string {
  // PromQL strings are Go strings: "…" with escapes (JSON reads those), '…' and `…` raw enough here.
  if (literal.startsWith('"')) return JSON.parse(literal) as string;
  return literal.slice(1, -1);
}

function selectorOf(source: string, node: SyntaxNode): Selector {
  const identifier = node.getChild('Identifier');
  const matchers: LabelMatcher[] = [];
  const list = node.getChild('LabelMatchers');
  for (const matcher of list ? children(list) : []) {
    const name = matcher.getChild('LabelName') ?? matcher.getChild('QuotedLabelName');
    const op = matcher.getChild('MatchOp');
    const value = matcher.getChild('StringLiteral');
    if (!name || !op || !value) continue;
    const label = name.name === 'QuotedLabelName' ? stringValue(text(source, name)) : text(source, name);
    matchers.push({
      label,
      op: text(source, op) as LabelMatcher['op'],
      value: stringValue(text(source, value)),
    });
  }
  const metric = identifier
    ? text(source, identifier)
    : matchers.find((m) => m.label === '__name__' && m.op === '=')?.value;
  if (!metric) {
    throw new PromqlError(`a selector without a metric name is not supported here: ${text(source, node)}`);
  }
  return { metric, matchers: matchers.filter((m) => m.label !== '__name__') };
}

function groupingLabels(source: string, node: SyntaxNode | null): string[] {
  if (!node) return [];
  return children(node)
    .filter((child) => child.name === 'LabelName' || child.name === 'QuotedLabelName')
    .map((child) =>
      child.name === 'QuotedLabelName' ? stringValue(text(source, child)) : text(source, child),
    );
}

/**
 * The selectors and groupings of `expr`, a PromQL expression as a Grafana panel holds it.
 * Throws a PromqlError naming the position and the text around a syntax error.
 */
export function analyseQuery(expr: string): QueryAnalysis {
  const source = withGrafanaRangesFilled(expr);
  const tree = parser.parse(source);
  const all = descendants(tree.topNode);
  const broken = all.find((node) => node.type.isError);
  if (broken) {
    const around = source.slice(Math.max(0, broken.from - 20), broken.to + 20);
    throw new PromqlError(`PromQL syntax error at offset ${broken.from}: …${around}…`);
  }
  const selectorAt = new Map<number, Selector>();
  for (const node of all) {
    if (node.name === 'VectorSelector') selectorAt.set(node.from, selectorOf(source, node));
  }
  const inside = (node: SyntaxNode) =>
    descendants(node)
      .filter((d) => d.name === 'VectorSelector')
      .map((d) => selectorAt.get(d.from) as Selector);

  const groupings: Grouping[] = [];
  for (const node of all) {
    if (node.name === 'AggregateExpr') {
      const modifier = node.getChild('AggregateModifier');
      // `without (…)` names labels to drop; they need not exist.
      if (modifier?.getChild('By')) {
        groupings.push({
          labels: groupingLabels(source, modifier.getChild('GroupingLabels')),
          selectors: inside(node),
        });
      }
    }
    if (node.name === 'BinaryExpr') {
      const clause = node.getChild('MatchingModifierClause');
      if (clause?.getChild('On')) {
        groupings.push({
          labels: groupingLabels(source, clause.getChild('GroupingLabels')),
          selectors: inside(node),
        });
      }
    }
  }
  return { selectors: [...selectorAt.values()], groupings };
}
