/** Located problems in rule text. The front door returns these; it never throws. */

export interface Span {
  /** 0-based character offset of the first character. */
  readonly offset: number;
  /** Number of characters (at least 1 for display). */
  readonly length: number;
  /** 1-based line and column. */
  readonly line: number;
  readonly col: number;
}

export type DiagnosticCode =
  | 'lex'
  | 'syntax'
  | 'unknown-name'
  | 'arity'
  | 'not-scalar'
  | 'bad-argument'
  | 'bad-prev'
  | 'duplicate'
  | 'reserved-name'
  | 'cycle'
  | 'limit'
  | 'number'
  | 'range'
  | 'no-gradient'
  | 'unknown-param'
  | 'empty'
  | 'internal';

export interface Diagnostic {
  readonly code: DiagnosticCode;
  readonly severity: 'error' | 'warning';
  readonly message: string;
  readonly span: Span;
  /** Name of the source: a file name or `<arg>`. */
  readonly source: string;
}

/** Maps offsets to line/column for one source text. */
export class SourceText {
  private readonly lineStarts: number[] = [0];

  constructor(
    readonly name: string,
    readonly text: string,
  ) {
    for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) this.lineStarts.push(i + 1);
  }

  span(offset: number, length = 1): Span {
    const o = Math.max(0, Math.min(offset, this.text.length));
    let lo = 0;
    let hi = this.lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((this.lineStarts[mid] as number) <= o) lo = mid;
      else hi = mid - 1;
    }
    return { offset: o, length: Math.max(1, length), line: lo + 1, col: o - (this.lineStarts[lo] as number) + 1 };
  }

  lineText(line: number): string {
    const start = this.lineStarts[line - 1] ?? this.text.length;
    const next = this.lineStarts[line];
    return this.text.slice(start, next === undefined ? undefined : next - 1).replace(/\r$/, '');
  }
}

/** Most characters of a source line shown under a diagnostic; longer lines are cut around the column. */
export const MAX_SHOWN_LINE = 160;
/** Characters shown before the column when a long line is cut. */
const SHOWN_BEFORE = 60;

/**
 * The part of a line to show for a problem at 1-based column `col` spanning `length`
 * characters: the whole line when short, else about MAX_SHOWN_LINE characters around the
 * column with `...` where it was cut. `col` is the caret's column in the returned text.
 */
export function clipLine(line: string, col: number, length: number): { text: string; col: number; width: number } {
  const at = Math.max(0, Math.min(col - 1, line.length));
  let start = 0;
  let end = line.length;
  if (line.length > MAX_SHOWN_LINE) {
    start = Math.max(0, at - SHOWN_BEFORE);
    end = Math.min(line.length, start + MAX_SHOWN_LINE);
    start = Math.max(0, end - MAX_SHOWN_LINE);
  }
  const head = start > 0 ? '...' : '';
  const tail = end < line.length ? '...' : '';
  const width = Math.max(1, Math.min(length, end - at));
  return { text: `${head}${line.slice(start, end)}${tail}`, col: head.length + at - start + 1, width };
}

/** `<source>:<line>:<col>: error: <message>`, the line (cut when long), and a caret under the column. */
export function formatDiagnostic(d: Diagnostic, src: SourceText): string {
  const shown = clipLine(src.lineText(d.span.line).replace(/\t/g, ' '), d.span.col, d.span.length);
  const caret = `${' '.repeat(shown.col - 1)}^${'~'.repeat(shown.width - 1)}`;
  return `${clipText(d.source, MAX_SHOWN_LINE)}:${d.span.line}:${d.span.col}: ${d.severity}: ${d.message}\n${shown.text}\n${caret}`;
}

/** `text`, or its start and `...` when longer than `max` characters. */
export function clipText(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max)}...` : text;
}

/** Longest quoted excerpt of the source kept in a message ('...' replaces the rest). */
const MAX_QUOTED = 60;

/** A message with long quoted excerpts (names, numbers, tokens from the source) shortened. */
export function clipMessage(message: string): string {
  // Quotes pair up left to right (names and numbers never contain one).
  return message.replace(/'([^'\n]*)'/g, (m, q: string) =>
    q.length > MAX_QUOTED ? `'${clipText(q, MAX_QUOTED)}'` : m,
  );
}

/** Edit distance with adjacent transpositions (optimal string alignment), for "did you mean". */
export function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d = new Array<number>(rows * cols).fill(0);
  const at = (i: number, j: number): number => d[i * cols + j] as number;
  for (let i = 0; i < rows; i++) d[i * cols] = i;
  for (let j = 0; j < cols; j++) d[j] = j;
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, at(i - 2, j - 2) + 1);
      d[i * cols + j] = v;
    }
  }
  return at(a.length, b.length);
}

/** The nearest known name, if it is near enough to be a plausible typo. */
export function nearest(name: string, known: Iterable<string>): string | undefined {
  // No known name is this long: a typo of one is not (and the distance would cost name.length x k).
  if (name.length > 200) return undefined;
  let best: string | undefined;
  let bestD = Number.POSITIVE_INFINITY;
  const lower = name.toLowerCase();
  for (const k of known) {
    const d = editDistance(lower, k.toLowerCase());
    if (d < bestD || (d === bestD && best !== undefined && k < best)) {
      best = k;
      bestD = d;
    }
  }
  if (best === undefined) return undefined;
  const limit = Math.max(1, Math.floor(Math.max(name.length, best.length) / 3));
  return bestD <= limit && bestD < name.length ? best : undefined;
}
