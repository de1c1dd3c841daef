/**
 * The store's errors (user or environment errors about runs: the CLI prints the message and
 * exits 1), without Node built-ins: the search loop, which runs in browsers too, throws them.
 * store.ts re-exports them.
 */

/** A user or environment error about runs: the CLI prints the message and exits 1. */
export class StoreError extends Error {
  /** The class's own name (subclasses included), as `instanceof`-free callers and logs read it. */
  override get name(): string {
    return this.constructor.name;
  }
}
export class RunExistsError extends StoreError {}
export class RunMissingError extends StoreError {}
export class RunLockedError extends StoreError {}
export class RunNameError extends StoreError {}
/** The file system or the database refused (permissions, read-only or full disk, a system folder). */
export class StoreAccessError extends StoreError {}
/**
 * A run.db whose content is not what nos writes (a table or column missing, a value of the wrong
 * type, JSON that does not parse, an oversized value): the message names the run and the place.
 */
export class RunDamagedError extends StoreError {}
