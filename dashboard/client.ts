/**
 * The dashboard's only script (served as /static/live.js): keeps a page live. It subscribes to
 * the page's server-sent events and puts each re-rendered section in place. The markup comes
 * from the server, which escapes every value from a run (pages.ts); the script parses nothing
 * else. Written as one self-contained function: the server sends its source text, so it must not
 * refer to anything outside itself.
 */

interface LiveElement {
  innerHTML: string;
  textContent: string | null;
  className: string;
  readonly dataset: Record<string, string | undefined>;
}

interface LiveGlobals {
  readonly document: { readonly body: LiveElement; getElementById(id: string): LiveElement | null };
  readonly EventSource: new (
    url: string,
  ) => {
    onopen: (() => void) | null;
    onerror: (() => void) | null;
    onmessage: ((e: { readonly data: string }) => void) | null;
  };
}

/** What the server sends: the page's version and the sections that changed since its last message. */
export interface LiveMessage {
  readonly version: string;
  readonly sections: readonly { readonly id: string; readonly html: string }[];
}

export function liveClient(): void {
  const g = globalThis as unknown as LiveGlobals;
  const body = g.document.body;
  const path = body.dataset.livePath;
  if (path === undefined) return;
  let version = body.dataset.version ?? '';
  const mark = (live: boolean) => {
    const el = g.document.getElementById('live');
    if (el === null) return;
    el.textContent = live ? 'live' : 'reconnecting…';
    el.className = live ? 'live' : 'offline';
  };
  const source = new g.EventSource(`/events?path=${encodeURIComponent(path)}&since=${encodeURIComponent(version)}`);
  source.onopen = () => mark(true);
  source.onerror = () => mark(false);
  source.onmessage = (e) => {
    const m = JSON.parse(e.data) as LiveMessage;
    version = m.version;
    body.dataset.version = version;
    for (const s of m.sections) {
      const el = g.document.getElementById(s.id);
      if (el !== null) el.innerHTML = s.html;
    }
  };
}

/** The script as served. */
export const LIVE_JS = `'use strict';\n(${liveClient.toString()})();\n`;
