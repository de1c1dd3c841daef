/** The rule-checking thread of a ThreadChecker (controller/checker.ts): texts in, checks out. */
import { parentPort } from 'node:worker_threads';
import type { CheckReply } from './checker.js';
import { checkText } from './checker.js';

parentPort?.on('message', (m: { id: number; texts: readonly string[] }) => {
  const replies: CheckReply[] = m.texts.map((text) => {
    const c = checkText(text);
    return c.ok ? { ok: true, hash: c.hash, canonical: c.canonical, screen: c.screen() } : c;
  });
  parentPort?.postMessage({ id: m.id, replies });
});
