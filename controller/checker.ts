/**
 * Where the search loop parses, canonicalises and screens proposed rule text: in this thread
 * (`inlineChecker`, the default), or in a worker thread of its own (`ThreadChecker`,
 * controller/thread-checker.ts, Node only), so that the loop's thread only runs the strategy and
 * hands out work. Both give the same results (the check is a pure function of the text); only
 * where the time is spent differs. No Node built-ins here: the loop runs in browsers too.
 */
import { lookupRule } from '../dsl/index.js';
import { type ScreenResult, screenRule } from '../evaluator/screen.js';

/** A proposed rule's text, checked. */
export type CheckedText =
  | { readonly ok: false; readonly message: string }
  | {
      readonly ok: true;
      readonly hash: string;
      readonly canonical: string;
      /** The pre-screen and fingerprint (computed when first asked for, or ahead by a thread). */
      screen(): ScreenResult;
    };

export interface RuleChecker {
  /** The texts' checks, in order. */
  check(texts: readonly string[]): Promise<CheckedText[]>;
  close?(): Promise<void>;
}

/** One text, checked in this thread; the screen runs when first asked for. */
export function checkText(text: string): CheckedText {
  const found = lookupRule(text);
  if (!found.ok) return { ok: false, message: found.message };
  const rule = found.rule;
  let screened: ScreenResult | undefined;
  return {
    ok: true,
    hash: rule.hash,
    canonical: rule.canonical,
    screen: () => {
      screened ??= screenRule(rule);
      return screened;
    },
  };
}

/** Checks in the loop's own thread. */
export const inlineChecker: RuleChecker = {
  check: async (texts) => texts.map(checkText),
};

/** What a checker thread sends back for one text. */
export type CheckReply =
  | { readonly ok: false; readonly message: string }
  | { readonly ok: true; readonly hash: string; readonly canonical: string; readonly screen: ScreenResult };
