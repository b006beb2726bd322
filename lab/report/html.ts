/**
 * Markup built so that escaping cannot be forgotten: every value interpolated into `html\`…\`` is
 * escaped unless it is itself markup made by `html` or `raw`. Experiment names and descriptions come
 * from files anyone can write, and the report is opened in a browser.
 */

const MARKUP = Symbol('markup');

export interface Markup {
  readonly [MARKUP]: true;
  readonly text: string;
}

/** A value a template accepts: text (escaped), a number, markup, nothing, or a list of these. */
export type Fragment = Markup | string | number | null | undefined | false | readonly Fragment[];

const ENTITIES: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** Safe in element content and in quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ENTITIES[c] ?? c);
}

/** Markup taken as is: only for text this module's callers generated themselves. */
export function raw(text: string): Markup {
  return { [MARKUP]: true, text };
}

export function html(strings: TemplateStringsArray, ...values: readonly Fragment[]): Markup {
  let out = strings[0] ?? '';
  for (let i = 0; i < values.length; i++) {
    out += render(values[i]) + (strings[i + 1] ?? '');
  }
  return raw(out);
}

export function render(value: Fragment): string {
  if (value === null || value === undefined || value === false) return '';
  if (typeof value === 'string') return escapeHtml(value);
  if (typeof value === 'number') return escapeHtml(String(value));
  if (isMarkup(value)) return value.text;
  return value.map(render).join('');
}

function isMarkup(value: Markup | readonly Fragment[]): value is Markup {
  return (value as Partial<Markup>)[MARKUP] === true;
}
