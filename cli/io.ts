/**
 * Where a command reads and writes: stdout for results (one JSON document with --json),
 * stderr for the rest; files the user names are read through `readUserFile`, which refuses
 * devices, FIFOs and oversized files before reading them.
 */
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { BindError, bindParams, type CheckedRule, parseNumberLiteral } from '../dsl/index.js';
import { cutLongLines, shown, terminalSafe } from '../util/terminal.js';
import { UsageError } from './args.js';

export interface Io {
  out(text: string): void;
  err(text: string): void;
}

export const processIo: Io = {
  out: (text) => process.stdout.write(`${text}\n`),
  err: (text) => process.stderr.write(`${text}\n`),
};

/**
 * The same output with every control character escaped (ESC, BEL, NUL, CR... from rule text, run
 * databases, jobs: util/terminal.ts) and, on stderr, over-long lines cut. `main` wraps the Io it
 * is given in this, so nothing a command prints reaches the terminal raw. JSON on stdout keeps
 * its meaning: the escapes are JSON's own.
 */
export function safeIo(io: Io): Io {
  return {
    out: (text) => io.out(terminalSafe(text)),
    err: (text) => io.err(cutLongLines(terminalSafe(text))),
  };
}

/** Collects output, for tests. */
export function bufferIo(): Io & { stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return { stdout, stderr, out: (t) => stdout.push(t), err: (t) => stderr.push(t) };
}

/** Default size limit of a file read by `readUserFile` (JSON inputs, configs). */
export const MAX_INPUT_BYTES = 64 * 1024 * 1024;

export interface ReadLimits {
  /** Largest file, in bytes (checked before reading, and again while reading). Default MAX_INPUT_BYTES. */
  readonly maxBytes?: number;
  /** Largest text, in characters (UTF-16 code units, as JS strings count them). */
  readonly maxChars?: number;
  /** What the file holds, for messages: 'rule text', 'the trace input'. */
  readonly what?: string;
}

function fsMessage(path: string, e: unknown): string {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case 'ENOENT':
      return `${path}: no such file`;
    case 'EACCES':
    case 'EPERM':
      return `${path}: permission denied`;
    case 'EISDIR':
      return `${path}: is a directory, not a file`;
    case 'ENOTDIR':
      return `${path}: a part of the path is not a directory`;
    case 'ENXIO':
      return `${path}: not a regular file (a socket or device); give the path of a file`;
    default:
      return `${path}: cannot read (${code ?? (e instanceof Error ? e.message : String(e))})`;
  }
}

/**
 * Read a UTF-8 text file named by the user, without trusting it: opens without blocking
 * (a FIFO never hangs), refuses anything but a regular file (`/dev/zero`, FIFOs,
 * directories), refuses a file larger than the limit before reading it, and stops reading
 * past the limit (files whose size the kernel does not report, as under /proc). Every
 * problem is a UsageError that names the path.
 */
export function readUserFile(path: string, limits: ReadLimits = {}): string {
  const maxChars = limits.maxChars;
  // UTF-8 needs at most 3 bytes per UTF-16 code unit (4 per surrogate pair).
  const maxBytes = limits.maxBytes ?? (maxChars !== undefined ? maxChars * 3 : MAX_INPUT_BYTES);
  const what = limits.what ?? 'the input';
  const tooLarge = (size: string): string =>
    `${path}: the file is ${size}; ${what} is limited to ${maxChars !== undefined ? `${maxChars} characters` : `${maxBytes} bytes`}`;
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  } catch (e) {
    throw new UsageError(fsMessage(path, e));
  }
  try {
    const st = fstatSync(fd);
    if (st.isDirectory()) throw new UsageError(`${path}: is a directory, not a file`);
    if (!st.isFile())
      throw new UsageError(`${path}: not a regular file (a device, FIFO or socket); give the path of a file`);
    if (st.size > maxBytes) throw new UsageError(tooLarge(`${st.size} bytes`));
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const chunk = Buffer.allocUnsafe(Math.min(1 << 16, maxBytes + 1 - total));
      let n: number;
      try {
        n = readSync(fd, chunk, 0, chunk.length, null);
      } catch (e) {
        throw new UsageError(fsMessage(path, e));
      }
      if (n === 0) break;
      chunks.push(chunk.subarray(0, n));
      total += n;
      if (total > maxBytes) throw new UsageError(tooLarge(`over ${maxBytes} bytes`));
    }
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks, total));
    } catch {
      throw new UsageError(`${path}: not UTF-8 text`);
    }
    if (maxChars !== undefined && text.length > maxChars) throw new UsageError(tooLarge(`${text.length} characters`));
    return text;
  } finally {
    closeSync(fd);
  }
}

/**
 * `--set k=v` values by name. Values are decimal numbers as rule text writes them
 * (`parseNumberLiteral`: no hex, binary, octal, Infinity, NaN or empty values, at most 1e30 in
 * magnitude); a name given twice is an error.
 */
export function parseSetValues(
  pairs: readonly string[],
  flagName = 'set',
): Map<string, { value: number; text: string }> {
  const out = new Map<string, { value: number; text: string }>();
  for (const kv of pairs) {
    const m = /^\s*([A-Za-z][A-Za-z0-9]*)\s*=(.*)$/s.exec(kv);
    if (!m) throw new UsageError(`--${flagName} expects name=value, got '${shown(kv, 60)}'`);
    const name = m[1] as string;
    const text = (m[2] as string).trim();
    const parsed = parseNumberLiteral(text);
    if (!parsed.ok) throw new UsageError(`--${flagName} ${shown(name, 40)}=${shown(text, 40)}: ${parsed.message}`);
    if (out.has(name)) throw new UsageError(`--${flagName} ${name} is given more than once`);
    out.set(name, { value: parsed.value, text });
  }
  return out;
}

/**
 * `--set k=v` values checked against a rule: each name one of its hyperparameters, each value
 * within the language's limits and the ranges of the primitives it reaches (ema's beta in
 * [0, 1], ...). Returns a record with no prototype, so any hyperparameter name is safe as a key.
 */
export function ruleOverrides(
  rule: Pick<CheckedRule, 'params' | 'expr'>,
  pairs: readonly string[],
  flagName = 'set',
): Readonly<Record<string, number>> {
  const given = parseSetValues(pairs, flagName);
  const values = new Map([...given].map(([k, v]) => [k, v.value]));
  try {
    bindParams(rule, values);
  } catch (e) {
    if (!(e instanceof BindError)) throw e;
    const which = e.param !== undefined ? given.get(e.param) : undefined;
    throw new UsageError(
      which !== undefined ? `--${flagName} ${e.param}=${which.text}: ${e.message}` : `--${flagName}: ${e.message}`,
    );
  }
  const out: Record<string, number> = Object.create(null) as Record<string, number>;
  for (const [k, v] of values) out[k] = v;
  return out;
}
