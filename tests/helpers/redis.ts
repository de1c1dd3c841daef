/**
 * Real processes for the queue tests: a throwaway redis-server (bench/redis-server.ts: a free
 * loopback port, its own folder, append-only persistence) and `nos` processes whose output is
 * collected as it comes, to wait on and to assert. Every process started here is remembered, so
 * `stopAll` in afterAll leaves none behind.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { type RedisServerOptions, startRedisServer } from '../../bench/redis-server.js';
import { repoRoot } from './reference.js';

export type { RedisServer } from '../../bench/redis-server.js';

type Server = Awaited<ReturnType<typeof startRedisServer>>;
const servers: Server[] = [];
const processes: NosProcess[] = [];

export async function redis(options: RedisServerOptions = {}): Promise<Server> {
  const s = await startRedisServer(options);
  servers.push(s);
  return s;
}

export class NosProcess {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  readonly exit: Promise<number | null>;

  constructor(argv: readonly string[], env: Readonly<Record<string, string>>) {
    this.child = spawn(process.execPath, [join(repoRoot, 'bin', 'nos.js'), ...argv], {
      cwd: repoRoot,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child.stdout?.on('data', (d: Buffer) => {
      this.stdout += d.toString();
    });
    this.child.stderr?.on('data', (d: Buffer) => {
      this.stderr += d.toString();
    });
    this.exit = new Promise((resolve) =>
      this.child.on('exit', (code, signal) => resolve(code ?? (signal === null ? null : -1))),
    );
    processes.push(this);
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Wait until `what` holds (checked every 50 ms), or fail with this process's output. */
  async until(what: () => boolean, ms = 60_000, label = 'a condition'): Promise<void> {
    const deadline = Date.now() + ms;
    while (!what()) {
      if (Date.now() > deadline)
        throw new Error(`timed out waiting for ${label}; stderr:\n${this.stderr.slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async finished(ms = 90_000): Promise<number | null> {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        this.exit,
        new Promise<never>((_r, reject) => {
          timer = setTimeout(
            () => reject(new Error(`still running after ${ms} ms; stderr:\n${this.stderr.slice(-3000)}`)),
            ms,
          );
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.running) this.child.kill(signal);
  }
}

/** Kill every process and Redis started here, and remove Redis's folders. */
export async function stopAll(): Promise<void> {
  for (const p of processes) p.kill('SIGKILL');
  await Promise.all(processes.map((p) => p.exit));
  processes.length = 0;
  await Promise.all(servers.map((s) => s.dispose()));
  servers.length = 0;
}
