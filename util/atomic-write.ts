/**
 * Files written whole or not at all. A write that fails half-way (a full disk, a quota, a file
 * size limit, a crash) must not leave a truncated file where a good one was: the text goes to a
 * temporary file in the same folder, which is flushed to the disk (fsync) and then renamed over
 * the target in one step. On failure the temporary file is removed and the target is as it was;
 * the error says so.
 *
 * The file-system calls go through a `AtomicFs` seam, so tests can make any step fail.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { basename, dirname, join } from 'node:path';

/** The calls an atomic write makes (node:fs by default; tests pass failing ones). */
export interface AtomicFs {
  openSync(path: string, flags: string, mode?: number): number;
  writeSync(fd: number, buffer: Uint8Array, offset: number, length: number): number;
  fsyncSync(fd: number): void;
  closeSync(fd: number): void;
  renameSync(from: string, to: string): void;
  rmSync(path: string, options: { force: boolean }): void;
}

const nodeFs: AtomicFs = {
  openSync: (p, f, m) => fs.openSync(p, f, m),
  writeSync: (fd, b, o, l) => fs.writeSync(fd, b, o, l),
  fsyncSync: (fd) => fs.fsyncSync(fd),
  closeSync: (fd) => fs.closeSync(fd),
  renameSync: (a, b) => fs.renameSync(a, b),
  rmSync: (p, o) => fs.rmSync(p, o),
};

/** A write that did not happen: the target is unchanged (or still absent), as `message` says. */
export class AtomicWriteError extends Error {
  override readonly name = 'AtomicWriteError';
  constructor(
    readonly path: string,
    /** The error of the step that failed (its `code`: ENOSPC, EFBIG, EACCES...). */
    override readonly cause: unknown,
    /** Whether a file was at `path` before (and still is, unchanged). */
    readonly existed: boolean,
  ) {
    const code = (cause as { code?: unknown } | null)?.code;
    const why = typeof code === 'string' ? code : cause instanceof Error ? cause.message : String(cause);
    super(
      `could not write ${path} (${why}): ${existed ? 'the file that was there is unchanged' : 'no file was written'}`,
    );
  }

  /** The underlying error's code (ENOSPC, EFBIG, EDQUOT, EACCES, ...), if it has one. */
  get code(): string | undefined {
    const code = (this.cause as { code?: unknown } | null)?.code;
    return typeof code === 'string' ? code : undefined;
  }
}

/** The temporary file's name: hidden, beside the target, unique to this write. */
export function temporaryPath(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
}

/**
 * Write `data` to `path` atomically: a temporary file beside it, fsync, rename. Throws an
 * AtomicWriteError (target unchanged, temporary file removed) if any step fails. A file that was
 * there keeps its permissions; a new one gets 0o666 less the umask, as a plain write would. A
 * symbolic link is followed: the file it points to is replaced.
 */
export function writeFileAtomic(target: string, data: string | Uint8Array, io: AtomicFs = nodeFs): void {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  let existed = false;
  let mode: number | undefined;
  let path = target;
  try {
    // A symbolic link is written through (as a plain write would), not replaced by a file.
    path = fs.realpathSync(target);
    const st = fs.statSync(path);
    existed = st.isFile();
    mode = existed ? st.mode & 0o7777 : undefined;
  } catch {
    // no file there yet (or a dangling link: written in place)
  }
  const tmp = temporaryPath(path);
  let fd: number | undefined;
  try {
    fd = io.openSync(tmp, 'wx', 0o666);
    if (mode !== undefined) {
      try {
        fs.fchmodSync(fd, mode); // the file keeps the permissions it had
      } catch {
        // a file system without modes
      }
    }
    let off = 0;
    while (off < bytes.length) off += io.writeSync(fd, bytes, off, bytes.length - off);
    io.fsyncSync(fd);
    const f = fd;
    fd = undefined;
    io.closeSync(f);
    io.renameSync(tmp, path);
  } catch (e) {
    if (fd !== undefined) {
      try {
        io.closeSync(fd);
      } catch {
        // closing a file whose write failed: nothing more to do
      }
    }
    try {
      io.rmSync(tmp, { force: true });
    } catch {
      // the folder refuses even that: the name is unique and hidden
    }
    throw new AtomicWriteError(target, e, existed);
  }
  // The rename itself is durable once the folder is flushed (best effort: not every file system allows it).
  try {
    const dfd = fs.openSync(dirname(path), 'r');
    try {
      fs.fsyncSync(dfd);
    } finally {
      fs.closeSync(dfd);
    }
  } catch {
    // a folder that cannot be opened for fsync (some network file systems): the data is written
  }
}
