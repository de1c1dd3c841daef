/** The rule-checking thread of a ThreadChecker (controller/checker.ts): texts in, checks out. */
import { parentPort } from 'node:worker_threads';
import type { ScreenResult } from '../evaluator/screen.js';
import type { CheckReply } from './checker.js';
import { checkText } from './checker.js';

/** Screens by rule hash: texts written differently but the same rule are screened once. */
const screens = new Map<string, ScreenResult>();
const MAX_SCREENS = 200_000;

parentPort?.on('message', (m: { id: number; texts: readonly string[]; reset?: boolean }) => {
  // A new search: the screens of the last are forgotten (each search pays for its own, as a
  // search in a process of its own would; the thread's compiled code stays warm).
  if (m.reset === true) screens.clear();
  const replies: CheckReply[] = m.texts.map((text) => {
    const c = checkText(text);
    if (!c.ok) return c;
    let screen = screens.get(c.hash);
    if (screen === undefined) {
      screen = c.screen();
      if (screens.size >= MAX_SCREENS) screens.clear();
      screens.set(c.hash, screen);
    }
    return { ok: true, hash: c.hash, canonical: c.canonical, screen };
  });
  parentPort?.postMessage({ id: m.id, replies });
});
