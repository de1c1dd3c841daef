/**
 * HTML with escaping by default: `html` is a tagged template whose every interpolated value is
 * escaped as text, unless it is markup built the same way (an `Html`, or an array of them).
 * Values from a run.db (rule text, run names, configs, error messages) are untrusted input: they
 * only ever reach a page as escaped text.
 */

/** Markup that is safe to place as is (built by `html`, or by code that escapes what it places, such as the SVG charts). */
export class Html {
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

/** Text as HTML text or attribute value (inside quotes): & < > " ' escaped. */
export function esc(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => ENTITIES[c] as string);
}

function part(value: unknown): string {
  if (value instanceof Html) return value.text;
  if (Array.isArray(value)) return value.map(part).join('');
  if (value === null || value === undefined || value === false) return '';
  return esc(value);
}

/** A template whose interpolations are escaped (Html values and arrays of them are placed as they are). */
export function html(strings: TemplateStringsArray, ...values: readonly unknown[]): Html {
  let out = strings[0] as string;
  values.forEach((v, i) => {
    out += part(v) + (strings[i + 1] as string);
  });
  return new Html(out);
}

/** Markup from code that escapes what it places itself (search-results/plot.ts's SVG). */
export const trusted = (markup: string): Html => new Html(markup);

/** A number with `digits` decimals, or '-' for anything that is not a finite number. */
export function fixed(x: unknown, digits = 4): string {
  return typeof x === 'number' && Number.isFinite(x) ? x.toFixed(digits) : '-';
}
