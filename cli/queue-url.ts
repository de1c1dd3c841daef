/**
 * Where `search`, `eval` and `worker` find the queue, and how its password stays secret:
 *
 * - `--queue URL`, else `--queue-file F` (a file holding the URL: keep it mode 600), else the
 *   environment variable `NOS_QUEUE_URL` (as BullMQ apps read their Redis URL from the environment).
 * - A URL without a password takes the one in `REDISCLI_AUTH`, as `redis-cli` does, taken as is
 *   (no %XX decoding).
 * - A password given on the command line is visible to other users in `ps` while nos starts: nos
 *   says so (as redis-cli does), and rewrites its process title without it at once (util/redact.ts).
 * - Messages only ever show the URL with `***` for the password (evaluator/queue.ts).
 */
import { type QueueUrl, parseQueueUrl, withPassword } from '../evaluator/queue.js';
import { type FlagSpecs, flag, type ParsedArgs, UsageError } from './args.js';
import { type Io, readUserFile } from './io.js';

/** The environment variable that holds the queue's URL. */
export const QUEUE_URL_ENV = 'NOS_QUEUE_URL';
/** The environment variable that holds the Redis password (redis-cli's own). */
export const PASSWORD_ENV = 'REDISCLI_AUTH';

export function queueFlags(what: string): FlagSpecs {
  return {
    queue: {
      type: 'string',
      value: 'URL',
      description: `${what}: redis://[[USER]:PASSWORD@]HOST[:PORT][/DB] or rediss:// (TLS); also from $${QUEUE_URL_ENV}, with the password from $${PASSWORD_ENV} if the URL has none`,
    },
    'queue-file': {
      type: 'string',
      value: 'F',
      description: 'read the queue URL from this file instead (keeps a password out of ps and shell history)',
    },
  };
}

/**
 * The queue the flags or the environment name, or undefined for none. Problems are user errors
 * that never show the password.
 */
export function queueFromArgs(
  args: ParsedArgs,
  io: Io,
  command: string,
  env: Readonly<Record<string, string | undefined>> = process.env,
): QueueUrl | undefined {
  const given = flag(args, 'queue');
  const file = flag(args, 'queue-file');
  if (given !== undefined && file !== undefined) throw new UsageError('give --queue or --queue-file, not both');
  let text: string;
  let source: string;
  if (given !== undefined) {
    text = given;
    source = '--queue';
  } else if (file !== undefined) {
    const lines = readUserFile(file, { maxBytes: 4096, what: 'a queue URL' })
      .split(/\r?\n/)
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('#'));
    if (lines.length !== 1)
      throw new UsageError(
        `--queue-file ${file}: expected one line with the queue's URL (redis://...), found ${lines.length}`,
      );
    text = lines[0] as string;
    source = `--queue-file ${file}`;
  } else {
    const fromEnv = env[QUEUE_URL_ENV]?.trim();
    if (fromEnv === undefined || fromEnv === '') return undefined;
    text = fromEnv;
    source = `$${QUEUE_URL_ENV}`;
  }
  let url = parseQueueUrl(text, source);
  if (url.password !== undefined && source === '--queue') {
    io.err(
      `nos ${command}: warning: a password on the command line can be read by other users of this machine (ps, /proc) and stays in your shell's history; put the URL in $${QUEUE_URL_ENV} or a file given to --queue-file, or the password in $${PASSWORD_ENV}`,
    );
  }
  const password = env[PASSWORD_ENV];
  if (url.password === undefined && password !== undefined && password !== '') url = withPassword(url, password);
  return url;
}
