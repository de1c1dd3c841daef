/**
 * Secrets out of sight: URLs with their password replaced by `***`, and the process title
 * rewritten without one. No imports, so the `nos` binary can run `hideSecrets` before it loads
 * anything else.
 */

/**
 * The text with whatever could be a password replaced by `***`: everything between the scheme
 * (or the start) and the last `@`, but a user name before a `:`. Also for text that does not
 * parse as a URL, and for passwords holding `/`, `@`, `:` or `%` (written raw or encoded).
 */
export function redactUrl(url: string): string {
  const at = url.lastIndexOf('@');
  if (at < 0) return url;
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(url)?.[0] ?? '';
  if (at < scheme.length) return url;
  const auth = url.slice(scheme.length, at);
  const colon = auth.indexOf(':');
  return `${scheme}${colon < 0 ? '***' : `${auth.slice(0, colon)}:***`}${url.slice(at)}`;
}

/** Flags whose value is a URL that may carry a password. */
const URL_FLAGS = ['--queue'] as const;

/** The arguments with any password in a URL flag's value replaced by ***, or undefined if none has one. */
export function redactedArgs(argv: readonly string[]): string[] | undefined {
  let changed = false;
  const out = argv.map((a, i) => {
    for (const f of URL_FLAGS) {
      const inline = a.startsWith(`${f}=`);
      if (!inline && argv[i - 1] !== f) continue;
      const value = inline ? a.slice(f.length + 1) : a;
      const r = redactUrl(value);
      if (r === value) return a;
      changed = true;
      return inline ? `${f}=${r}` : r;
    }
    return a;
  });
  return changed ? out : undefined;
}

/**
 * Rewrite this process's title (what `ps` and /proc/PID/cmdline show) with any password in the
 * arguments replaced by ***. The `nos` binary calls it first thing: a password given on the
 * command line is then visible only for the moment before it runs. Returns whether it did.
 */
export function hideSecrets(argv: readonly string[]): boolean {
  const shown = redactedArgs(argv);
  if (shown === undefined) return false;
  try {
    process.title = ['nos', ...shown].join(' ');
    return true;
  } catch {
    return false; // a platform that does not allow it: the warning still tells the user
  }
}
