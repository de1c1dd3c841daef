/**
 * A throwaway `redis-server` for the queue's benchmark and tests: a free loopback port, its own
 * temporary folder, append-only persistence (so a restart keeps every job), an optional
 * password, optionally TLS only (a self-signed certificate made with openssl). Nothing is
 * fetched: it runs Debian's /usr/bin/redis-server (or $REDIS_SERVER).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface RedisServer {
  readonly port: number;
  readonly dir: string;
  /** redis://[:password@]127.0.0.1:PORT */
  readonly url: string;
  readonly pid: number | undefined;
  /** Stop it (SIGTERM: Redis writes its append-only file and exits) and wait for the exit. */
  stop(): Promise<void>;
  /** Start it again on the same port and folder (what it had written is loaded back). */
  start(): Promise<void>;
  /** Stop it and remove its folder. */
  dispose(): Promise<void>;
}

export function redisServerPath(): string {
  return process.env.REDIS_SERVER ?? '/usr/bin/redis-server';
}

/** A TCP port that was free a moment ago (bound to port 0, then released). */
export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

async function accepting(port: number, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = createConnection({ port, host: '127.0.0.1' });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > until)
      throw new Error(`redis-server did not accept connections on port ${port} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A self-signed certificate for 127.0.0.1 and localhost (openssl), for a TLS-only Redis. */
function selfSigned(dir: string): { cert: string; key: string } {
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  const r = spawnSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '1',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
    ],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`openssl could not make a certificate: ${r.error?.message ?? r.stderr}`);
  return { cert, key };
}

export interface RedisServerOptions {
  readonly password?: string;
  /** TLS only (no plain port), with a self-signed certificate: `cert` names it, for NODE_EXTRA_CA_CERTS. */
  readonly tls?: boolean;
  /** Append-only persistence, fsynced on every write (default true); false: none (benchmarks of the loop). */
  readonly persistence?: boolean;
}

export async function startRedisServer(
  options: RedisServerOptions = {},
): Promise<RedisServer & { readonly cert?: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'nos-redis-'));
  const port = await freePort();
  const tls = options.tls ? selfSigned(dir) : undefined;
  let child: ChildProcess | undefined;
  let log = '';
  const start = async () => {
    const ports =
      tls === undefined
        ? ['--port', String(port)]
        : [
            '--port',
            '0',
            '--tls-port',
            String(port),
            '--tls-cert-file',
            tls.cert,
            '--tls-key-file',
            tls.key,
            '--tls-ca-cert-file',
            tls.cert,
            '--tls-auth-clients',
            'no',
          ];
    const args = [
      ...ports,
      '--bind',
      '127.0.0.1',
      '--dir',
      dir,
      '--appendonly',
      options.persistence === false ? 'no' : 'yes',
      '--appendfsync',
      'always',
      '--save',
      '',
      '--daemonize',
      'no',
    ];
    if (options.password !== undefined) args.push('--requirepass', options.password);
    const c = spawn(redisServerPath(), args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child = c;
    c.stdout?.on('data', (d: Buffer) => {
      log = (log + d.toString()).slice(-4000);
    });
    c.stderr?.on('data', (d: Buffer) => {
      log = (log + d.toString()).slice(-4000);
    });
    const exited = new Promise<never>((_r, reject) =>
      c.once('exit', (code) => reject(new Error(`redis-server exited (${code}): ${log}`))),
    );
    exited.catch(() => {});
    await Promise.race([accepting(port, 10_000), exited]);
  };
  const stop = async () => {
    const c = child;
    child = undefined;
    if (c === undefined || c.exitCode !== null || c.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      c.once('exit', () => resolve());
      c.kill('SIGTERM');
    });
  };
  await start();
  const auth = options.password === undefined ? '' : `:${encodeURIComponent(options.password)}@`;
  return {
    port,
    dir,
    url: `${tls === undefined ? 'redis' : 'rediss'}://${auth}127.0.0.1:${port}`,
    ...(tls === undefined ? {} : { cert: tls.cert }),
    get pid() {
      return child?.pid;
    },
    stop,
    start,
    dispose: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
