/**
 * HTML with escaping by default: `html` is a tagged template whose every interpolated value is
 * escaped as text, unless it is markup built the same way (an `Html`, or an array of them).
 * Values from a run.db (rule text, run names, configs, error messages) are untrusted input: they
 * only ever reach a page as escaped text.
 */

// One escaping for every page nos makes: the report's (search-results/html.ts).
export { esc, Html, html, trusted } from '../search-results/html.js';

/** A number with `digits` decimals, or '-' for anything that is not a finite number. */
export function fixed(x: unknown, digits = 4): string {
  return typeof x === 'number' && Number.isFinite(x) ? x.toFixed(digits) : '-';
}
