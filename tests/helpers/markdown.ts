/**
 * Reading the project's markdown in tests: tables (by their header row), links and headings'
 * anchors (GitHub's slugs). Only what the docs use: pipe tables, inline links and images.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './reference.js';

export function readDoc(path: string): string {
  return readFileSync(join(repoRoot, path), 'utf8');
}

/** The text without fenced code blocks (their lines become empty, so line numbers hold). */
export function withoutCode(md: string): string {
  let fenced = false;
  return md
    .split('\n')
    .map((line) => {
      if (/^\s*(```|~~~)/.test(line)) {
        fenced = !fenced;
        return '';
      }
      return fenced ? '' : line;
    })
    .join('\n');
}

/** A table row's cells, trimmed; `\|` is a pipe inside a cell. */
export function cells(line: string): string[] {
  const inner = line.trim().replace(/^\|/, '').replace(/\|$/, '');
  return inner.split(/(?<!\\)\|/).map((c) => c.trim().replace(/\\\|/g, '|'));
}

/**
 * The body rows of the one table whose header row has exactly these cells (an error if there is
 * none or more than one: a test must not silently read another table).
 */
export function table(md: string, header: readonly string[]): string[][] {
  const lines = withoutCode(md).split('\n');
  const found: string[][][] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    if (!line.trim().startsWith('|')) continue;
    if (JSON.stringify(cells(line)) !== JSON.stringify(header)) continue;
    const rows: string[][] = [];
    for (let j = i + 2; j < lines.length && (lines[j] as string).trim().startsWith('|'); j++)
      rows.push(cells(lines[j] as string));
    found.push(rows);
  }
  if (found.length !== 1) throw new Error(`expected one table headed | ${header.join(' | ')} |, found ${found.length}`);
  return found[0] as string[][];
}

/** The spans in backticks of a cell, in order. */
export function codeSpans(cell: string): string[] {
  return [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1] as string);
}

export interface Link {
  readonly target: string;
  readonly line: number;
  readonly image: boolean;
}

/** Inline links and images outside code (fenced blocks and code spans). */
export function links(md: string): Link[] {
  const out: Link[] = [];
  withoutCode(md)
    .split('\n')
    .forEach((line, i) => {
      const text = line.replace(/`[^`]*`/g, '');
      for (const m of text.matchAll(/(!?)\[(?:[^\]]|\][^(])*\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g))
        out.push({ target: m[2] as string, line: i + 1, image: m[1] === '!' });
    });
  return out;
}

/** GitHub's anchor for a heading's text: lower case, punctuation dropped, spaces to hyphens. */
export function slug(heading: string): string {
  return heading
    .replace(/`/g, '')
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/ /g, '-');
}

/** Every heading's anchor in a document (repeated headings get -1, -2, ... as on GitHub). */
export function anchors(md: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const line of withoutCode(md).split('\n')) {
    const m = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!m) continue;
    const base = slug(m[1] as string);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}
