/**
 * HTML from untrusted values, for every page nos makes (the report, the dashboard). A run.db is
 * input like any other (a shared or crafted file can hold `<script>` in any text column, or text
 * where a number belongs), so pages are built with the `html` tag: every interpolated value is escaped unless it is `Html` made by this module
 * (another `html` fragment, or `trustedHtml` for markup nos generated itself, such as its SVG
 * charts). Numbers, nulls, booleans and strings alike go through `escapeHtml`, so a value of the
 * wrong type cannot slip through raw.
 *
 *   html`<td>${candidate.bestLr ?? '-'}</td><td><code title="${rule}">${rule}</code></td>`
 *
 * The escaping covers element content and quoted attribute values (`"` and `'` are escaped).
 * Never interpolate into an unquoted attribute, a `<script>` or `<style>` body, an event
 * handler, or a URL attribute: nos's pages have none of those (no scripts, no links built from
 * data).
 */

/** Markup that is safe to insert as is. Only this module makes it. */
export class Html {
  /** @internal use `html` or `trustedHtml` */
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

const ENTITIES: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

// biome-ignore lint/suspicious/noControlCharactersInRegex: replacing control characters is the point
const SPECIAL = /[&<>"']|[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/g;

/**
 * Text as HTML element content or a quoted attribute value. Control characters other than tab
 * and newline (which HTML forbids or browsers drop) become U+FFFD.
 */
export function escapeHtml(value: unknown): string {
  return String(value).replace(SPECIAL, (c) => ENTITIES[c] ?? '\ufffd');
}

/** The same, under its short name. */
export const esc = escapeHtml;

function render(v: unknown): string {
  if (v instanceof Html) return v.text;
  if (Array.isArray(v)) return v.map(render).join('');
  // Nothing for a missing or false value (so `${cond && html`...`}` works); text for the rest.
  if (v === null || v === undefined || v === false) return '';
  return escapeHtml(v);
}

/**
 * A template whose interpolated values are escaped (arrays are joined; `Html` goes in as is;
 * null, undefined and false are nothing).
 */
export function html(strings: TemplateStringsArray, ...values: readonly unknown[]): Html {
  let out = strings[0] as string;
  for (let i = 0; i < values.length; i++) out += render(values[i]) + (strings[i + 1] as string);
  return new Html(out);
}

/** Markup nos generated itself from escaped parts (e.g. plot.ts's SVG), to insert as is. */
export function trustedHtml(markup: string): Html {
  return new Html(markup);
}

/** The same, under its short name. */
export const trusted = trustedHtml;
