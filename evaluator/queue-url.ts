/**
 * Queue URLs: `redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]` (or `rediss://` for TLS), parsed and
 * checked, and the only form of one that is ever printed (the password as `***`). Kept apart
 * from queue.ts so that the types of the library (controller/run.ts) do not reach ioredis's.
 */
import { redactUrl } from '../util/redact.js';

export { redactUrl };

/** A queue URL that cannot be used, or a Redis that cannot be reached: a user error. */
export class QueueError extends Error {
  override readonly name = 'QueueError';
}

/** A queue URL, checked: redis:// or rediss:// (TLS), a host, a port, an optional /DB. */
export interface QueueUrl {
  readonly tls: boolean;
  readonly host: string;
  readonly port: number;
  readonly db: number;
  readonly username: string | undefined;
  readonly password: string | undefined;
  /** The URL with its password replaced by ***: the only form that is ever printed. */
  readonly redacted: string;
}

/** A percent-encoded part of the URL's credentials, decoded; a QueueError (without the text) if it is malformed. */
function decodeCredential(text: string, what: 'user name' | 'password', display: string, source: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw new QueueError(
      `${source} '${display}': the ${what} holds a '%' that does not start a valid %XX escape (write % itself as %25, or give the password in REDISCLI_AUTH, where it is taken as is)`,
    );
  }
}

/** Largest database number accepted in a URL (a Redis has 16 unless its `databases` setting says more). */
export const MAX_DB = 9999;

/**
 * Parse `redis://[[user]:password@]host[:port][/db]` (or `rediss://` for TLS). The credentials
 * end at the last `@`, so a password may hold `/`, `@` or `:` as typed; `%XX` escapes in it are
 * decoded. `source` names where the URL came from, for messages (`--queue`, `NOS_QUEUE_URL`).
 */
export function parseQueueUrl(text: string, source = '--queue'): QueueUrl {
  const display = redactUrl(text.length > 300 ? `${text.slice(0, 300)}...` : text);
  const expected = 'expected redis://HOST:PORT[/DB] (or rediss:// for TLS)';
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(text);
  if (scheme === null) throw new QueueError(`${source} '${display}' is not a URL: ${expected}`);
  const protocol = (scheme[1] as string).toLowerCase();
  if (protocol !== 'redis' && protocol !== 'rediss')
    throw new QueueError(`${source} '${display}': the scheme must be redis:// or rediss:// (TLS), not ${protocol}://`);
  const rest = text.slice(scheme[0].length);
  const at = rest.lastIndexOf('@');
  const auth = at < 0 ? undefined : rest.slice(0, at);
  let u: URL;
  try {
    u = new URL(`${protocol}://${rest.slice(at + 1)}`);
  } catch {
    throw new QueueError(`${source} '${display}' is not a URL: ${expected}`);
  }
  if (u.hostname === '' || u.username !== '' || u.password !== '')
    throw new QueueError(`${source} '${display}': no host (${expected})`);
  if (u.search !== '' || u.hash !== '')
    throw new QueueError(`${source} '${display}': options after ? or # are not supported`);
  const port = u.port === '' ? 6379 : Number(u.port);
  const path = u.pathname.replace(/^\//, '');
  if (path !== '' && !/^\d{1,4}$/.test(path))
    throw new QueueError(
      `${source} '${display}': the path must be a database number (/0 to /15 on a Redis with the default 'databases 16'), got '/${path.length > 40 ? `${path.slice(0, 40)}...` : path}'`,
    );
  const db = path === '' ? 0 : Number(path);
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
  const colon = auth === undefined ? -1 : auth.indexOf(':');
  const userText = auth === undefined ? '' : colon < 0 ? auth : auth.slice(0, colon);
  const passwordText = auth === undefined || colon < 0 ? '' : auth.slice(colon + 1);
  const username = userText === '' ? undefined : decodeCredential(userText, 'user name', display, source);
  const password = passwordText === '' ? undefined : decodeCredential(passwordText, 'password', display, source);
  const userShown = username === undefined ? '' : encodeURIComponent(username);
  return {
    tls: protocol === 'rediss',
    host,
    port,
    db,
    username,
    password,
    redacted: `${protocol}://${password !== undefined ? `${userShown}:***@` : username !== undefined ? `${userShown}@` : ''}${u.host}/${db}`,
  };
}

/** The same URL with another password (the one from REDISCLI_AUTH, say); its redacted form says one is set. */
export function withPassword(url: QueueUrl, password: string): QueueUrl {
  return {
    ...url,
    password,
    redacted: url.redacted.replace(/^(rediss?:\/\/)(?:([^@]*)@)?/, (_m, scheme: string, user: string | undefined) => {
      const name = user === undefined ? '' : user.replace(/:\*\*\*$/, '');
      return `${scheme}${name}:***@`;
    }),
  };
}
