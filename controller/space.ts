/**
 * `--space` files: a JSON object with up to three lists, `operands`, `unary` and `binary`, each
 * naming NOS entries by id or adding `{"id", "text"}` entries (unary texts use `$1`, binary
 * texts `$1` and `$2`). Checked with a schema, then every entry as rule text; every problem is
 * reported with where it is (`unary[1].text`) and what was expected.
 */
import { closeSync, constants, fstatSync, openSync, readFileSync } from 'node:fs';
import { z } from 'zod';
import { nearest } from '../dsl/diagnostics.js';
import { compileRules, formatDiagnostics } from '../dsl/index.js';
import {
  configureSpace,
  fill,
  NOS_SPACE,
  type SearchSpace,
  type SpaceConfig,
  type SpaceEntry,
} from '../primitives/nos-space.js';

/** A problem with a space: the message says where (the key) and what was expected. */
export class SpaceError extends Error {
  /** The class's own name (subclasses included), as `instanceof`-free callers and logs read it. */
  override get name(): string {
    return this.constructor.name;
  }
}

const KINDS = ['operands', 'unary', 'binary'] as const;
type Kind = (typeof KINDS)[number];

const ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const MAX_TEXT = 500;
const MAX_ENTRIES = 200;

const entryObject = z
  .object({
    id: z
      .string()
      .regex(ID, { message: "an id of 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit" }),
    text: z
      .string()
      .min(1, { message: 'non-empty rule text' })
      .max(MAX_TEXT, { message: `rule text of at most ${MAX_TEXT} characters` }),
  })
  .strict();
const entry = z.union([z.string(), entryObject]);
const list = z.array(entry).min(1).max(MAX_ENTRIES);
const spaceSchema = z.object({ operands: list.optional(), unary: list.optional(), binary: list.optional() }).strict();

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v)}`;
  return `${typeof v === 'number' ? 'the number' : typeof v === 'boolean' ? 'the boolean' : typeof v} ${String(v)}`;
}

function at(value: unknown, path: readonly (string | number)[]): unknown {
  let v = value;
  for (const k of path)
    v = v !== null && typeof v === 'object' ? (v as Record<string | number, unknown>)[k] : undefined;
  return v;
}

function where(path: readonly (string | number)[]): string {
  if (path.length === 0) return 'the file';
  return path.map((k, i) => (typeof k === 'number' ? `[${k}]` : i === 0 ? k : `.${k}`)).join('');
}

const EXPECTED: Readonly<Record<string, string>> = {
  '': 'a JSON object with lists "operands", "unary" and/or "binary"',
  list: 'a list of NOS ids (strings) or {"id", "text"} entries',
  entry: 'a NOS id (a string) or an {"id", "text"} entry',
};

/** One located line per zod issue. */
function describeIssue(issue: z.ZodIssue, input: unknown): string {
  const path = issue.path;
  const value = at(input, path);
  const place = where(path);
  const kind = path.length === 1 ? 'list' : path.length === 2 ? 'entry' : '';
  switch (issue.code) {
    case 'invalid_union': {
      // An entry: a string, or an object whose own problem is the useful one.
      if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
        const inner = issue.unionErrors[1]?.issues[0];
        if (inner) return describeIssue(inner, input);
      }
      return `${place}: expected ${EXPECTED.entry}, got ${typeName(value)}`;
    }
    case 'invalid_type': {
      if (value === undefined)
        return `${place}: missing (expected ${path[path.length - 1] === 'id' ? 'an id' : 'rule text'})`;
      const expected =
        path.length === 0
          ? EXPECTED['']
          : kind === 'list'
            ? EXPECTED.list
            : path[path.length - 1] === 'id'
              ? 'an id (a string)'
              : 'rule text (a string)';
      return `${place}: expected ${expected}, got ${typeName(value)}`;
    }
    case 'unrecognized_keys': {
      const allowed = path.length === 0 ? KINDS.join(', ') : 'id, text';
      return `${place}: unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `'${k}'`).join(', ')} (expected ${allowed})`;
    }
    case 'too_small':
      return `${place}: ${issue.type === 'array' ? 'the list is empty (leave the key out to keep the whole NOS list)' : `expected ${issue.message}`}`;
    case 'too_big':
      return `${place}: ${issue.type === 'array' ? `at most ${MAX_ENTRIES} entries` : `expected ${issue.message}`}`;
    default:
      return `${place}: expected ${issue.message}, got ${typeName(value)}`;
  }
}

function checkEntryText(kind: Kind, index: number, e: SpaceEntry): void {
  const place = `${kind}[${index}] (id '${e.id}')`;
  const holes = new Set([...e.text.matchAll(/\$(\d)/g)].map((m) => m[1]));
  const want = kind === 'operands' ? [] : kind === 'unary' ? ['1'] : ['1', '2'];
  for (const h of holes)
    if (!want.includes(h as string))
      throw new SpaceError(
        `${place}: '$${h}' is not allowed in ${kind === 'operands' ? 'an operand' : `a ${kind} entry`} (${kind === 'operands' ? 'operands take no arguments' : kind === 'unary' ? 'use $1' : 'use $1 and $2'})`,
      );
  if (kind !== 'operands' && !holes.has('1'))
    throw new SpaceError(`${place}: a ${kind} entry must use its argument $1`);
  // Brackets must balance within the entry, so that no entry reaches outside its place in a rule
  // (`g) + (m`); then the entry, as the search uses it, must be one valid rule.
  let depth = 0;
  for (const ch of e.text) {
    if (ch === '(' || ch === '[' || ch === '{') depth++;
    else if (ch === ')' || ch === ']' || ch === '}') depth--;
    if (depth < 0) break;
  }
  if (depth !== 0) throw new SpaceError(`${place}: '${e.text}' has unbalanced brackets`);
  const args = kind === 'operands' ? [] : kind === 'unary' ? ['g'] : ['g', 'm'];
  const text = kind === 'operands' ? `(${e.text}) * g` : fill(e.text, args);
  const r = compileRules(text, `${kind}[${index}]`);
  if (!r.ok) {
    const as =
      kind === 'operands'
        ? ' as an operand, in (operand) * g'
        : ` with ${args.map((a, i) => `$${i + 1} = ${a}`).join(', ')}`;
    throw new SpaceError(`${place}: '${e.text}' is not valid rule text${as}:\n${formatDiagnostics(r)}`);
  }
  if (r.rules.length !== 1) throw new SpaceError(`${place}: '${e.text}' must be one expression, not rule definitions`);
}

/**
 * A space configuration from parsed JSON: the schema, the ids (NOS entries) and every entry as
 * rule text. Throws SpaceError with a located message.
 */
export function parseSpaceConfig(raw: unknown): { config: SpaceConfig; space: SearchSpace } {
  const r = spaceSchema.safeParse(raw);
  if (!r.success) throw new SpaceError(r.error.issues.map((i) => describeIssue(i, raw)).join('; '));
  const config = r.data as SpaceConfig;
  if (KINDS.every((k) => config[k] === undefined))
    throw new SpaceError(`the file names no list: give "operands", "unary" and/or "binary"`);
  for (const kind of KINDS) {
    const items = config[kind];
    if (items === undefined) continue;
    const seen = new Map<string, number>();
    items.forEach((item, i) => {
      const id = typeof item === 'string' ? item : item.id;
      if (typeof item === 'string' && !NOS_SPACE[kind].some((e) => e.id === item)) {
        const ids = NOS_SPACE[kind].map((e) => e.id);
        const hint = nearest(item, ids);
        throw new SpaceError(
          `${kind}[${i}]: no ${kind === 'operands' ? 'operand' : kind} entry '${item}' in the NOS space${hint ? `; did you mean '${hint}'?` : ''} (ids: ${ids.join(', ')}; or add {"id", "text"})`,
        );
      }
      const first = seen.get(id);
      if (first !== undefined) throw new SpaceError(`${kind}[${i}]: duplicate id '${id}' (also ${kind}[${first}])`);
      seen.set(id, i);
    });
  }
  let space: SearchSpace;
  try {
    space = configureSpace(config);
  } catch (e) {
    throw new SpaceError(e instanceof Error ? e.message : String(e));
  }
  for (const kind of KINDS) {
    if (config[kind] === undefined) continue;
    space[kind].forEach((e, i) => {
      checkEntryText(kind, i, e);
    });
  }
  return { config, space };
}

/** Line and column of a JSON.parse error's position, when Node gives one. */
function jsonErrorPlace(text: string, message: string): string {
  const m = /position (\d+)/.exec(message);
  if (!m) return '';
  const pos = Number(m[1]);
  const before = text.slice(0, pos);
  const line = before.split('\n').length;
  const col = pos - before.lastIndexOf('\n');
  return ` at line ${line}, column ${col}`;
}

const MAX_FILE_BYTES = 1 << 20;

/** Read and check a `--space` file. Throws SpaceError (the message starts with the file name). */
export function readSpaceFile(path: string): { config: SpaceConfig; space: SearchSpace } {
  let text: string;
  try {
    // Non-blocking, and only a regular file of sane size: a FIFO or /dev/zero never hangs nos.
    const fd = openSync(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
    try {
      const st = fstatSync(fd);
      if (st.isDirectory()) throw new SpaceError(`${path}: cannot read it (it is a folder, not a file)`);
      if (!st.isFile()) throw new SpaceError(`${path}: cannot read it (not a regular file)`);
      if (st.size > MAX_FILE_BYTES)
        throw new SpaceError(`${path}: the file is ${st.size} bytes; a space file is at most ${MAX_FILE_BYTES}`);
      text = readFileSync(fd, 'utf8');
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    if (e instanceof SpaceError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EISDIR'
          ? 'it is a folder, not a file'
          : code === 'EACCES'
            ? 'permission denied'
            : (code ?? String(e));
    throw new SpaceError(`${path}: cannot read it (${why})`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    throw new SpaceError(`${path}: not valid JSON${jsonErrorPlace(text, message)} (${message})`);
  }
  try {
    return parseSpaceConfig(raw);
  } catch (e) {
    if (e instanceof SpaceError) throw new SpaceError(`${path}: ${e.message}`);
    throw e;
  }
}
