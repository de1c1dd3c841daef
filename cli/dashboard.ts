/** `nos dashboard [--dir D] [--port P] [--host H]`: a read-only, live web app over a runs folder. */
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { isLoopback, startDashboard } from '../dashboard/server.js';
import { runsDir } from '../search-results/store.js';
import { type FlagSpecs, flag, intFlag, parseArgs, UsageError } from './args.js';
import type { Io } from './io.js';

export const DASHBOARD_FLAGS: FlagSpecs = {
  dir: {
    type: 'string',
    value: 'D',
    description: 'the runs folder (default: the one nos search writes, search-results/runs or $NOS_RUNS)',
  },
  port: { type: 'string', value: 'P', description: 'the port (default 8080; 0 picks a free one)' },
  host: {
    type: 'string',
    value: 'H',
    description: 'the address to listen on (default 127.0.0.1; another address shows the runs to the network)',
  },
};

function listenError(e: unknown, host: string, port: number): Error {
  const code = (e as { code?: unknown } | null)?.code;
  switch (code) {
    case 'EADDRINUSE':
      return new UsageError(`port ${port} on ${host} is in use: pick another --port (--port 0 picks a free one)`);
    case 'EACCES':
      return new UsageError(`cannot listen on port ${port}: permission denied (ports below 1024 need privileges)`);
    case 'EADDRNOTAVAIL':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new UsageError(`--host ${host}: not an address of this machine`);
    default:
      return e instanceof Error ? e : new Error(String(e));
  }
}

export async function dashboardCommand(argv: readonly string[], io: Io): Promise<number> {
  const args = parseArgs(argv, DASHBOARD_FLAGS);
  const given = flag(args, 'dir');
  const dir = resolve(given ?? runsDir());
  if (given !== undefined) {
    let isDir = false;
    try {
      isDir = statSync(dir).isDirectory();
    } catch {
      throw new UsageError(`--dir ${given}: no such folder`);
    }
    if (!isDir) throw new UsageError(`--dir ${given}: not a folder`);
  }
  const port = intFlag(args, 'port', 0) ?? 8080;
  if (port > 65_535) throw new UsageError(`--port must be at most 65535, got ${port}`);
  const host = flag(args, 'host') ?? '127.0.0.1';
  if (host.trim() === '') throw new UsageError('--host must not be empty');
  let dashboard: Awaited<ReturnType<typeof startDashboard>>;
  try {
    dashboard = await startDashboard({ dir, port, host, log: (line) => io.err(line) });
  } catch (e) {
    throw listenError(e, host, port);
  }
  io.out(dashboard.url);
  io.err(`nos dashboard: the runs in ${dir}, read-only, at ${dashboard.url} (Ctrl-C stops it)`);
  if (!isLoopback(host))
    io.err(`nos dashboard: warning: listening on ${host}: anyone who can reach this machine there can read these runs`);
  await new Promise<void>((done) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      done();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  await dashboard.close();
  return 0;
}
