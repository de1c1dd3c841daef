/**
 * Text on its way to a terminal. Rule text, run databases, job data and command-line values are
 * untrusted: an ESC in them could move the cursor, recolour or retitle the terminal, hide text
 * (CR, backspace, bidi overrides), ring its bell or end a line early. Everything nos prints goes
 * through `terminalSafe` (the CLI wraps its output in it: cli/io.ts), and values echoed back in
 * messages are cut with `shown` so a 100 KB argument never floods the screen.
 *
 * Escapes use JSON's `\uXXXX` spelling: inside a JSON string the text means the same characters
 * (JSON.stringify already escapes C0 controls; this adds DEL, C1 controls and bidi controls), and
 * outside JSON it is visible and unambiguous.
 */

/**
 * Characters that a terminal acts on rather than shows: C0 controls except newline and tab,
 * DEL, C1 controls (U+0080-U+009F, including the 8-bit CSI U+009B), and the Unicode bidi
 * embedding, override and isolate controls (U+202A-U+202E, U+2066-U+2069) and line/paragraph
 * separators (U+2028, U+2029).
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const UNSAFE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

const hex4 = (c: string) => `\\u${(c.codePointAt(0) as number).toString(16).padStart(4, '0')}`;

/** The text with every control character a terminal would act on written as `\uXXXX`. */
export function terminalSafe(text: string): string {
  return text.replace(UNSAFE, hex4);
}

/** Whether the text holds a character `terminalSafe` would escape. */
export function hasControlCharacters(text: string): boolean {
  UNSAFE.lastIndex = 0;
  const found = UNSAFE.test(text);
  UNSAFE.lastIndex = 0;
  return found;
}

/** Longest value echoed back in a message by default (characters). */
export const ECHO_CHARS = 80;

/**
 * A user-given value as a message shows it: at most `max` characters (then `…` and how long it
 * was), control characters escaped.
 */
export function shown(value: string, max = ECHO_CHARS): string {
  const cut = value.length > max ? `${value.slice(0, max)}… (${value.length} characters)` : value;
  return terminalSafe(cut);
}

/** Longest line of a message (stderr) printed whole; longer lines are cut in the middle. */
export const MESSAGE_LINE_CHARS = 2000;

/**
 * A message with every line longer than `max` characters cut to its start and end, saying how
 * much was left out: the last guard against an echoed value nobody cut.
 */
export function cutLongLines(text: string, max = MESSAGE_LINE_CHARS): string {
  if (text.length <= max) return text;
  return text
    .split('\n')
    .map((line) =>
      line.length > max
        ? `${line.slice(0, max - 200)} …(${line.length - max + 100} characters cut)… ${line.slice(-100)}`
        : line,
    )
    .join('\n');
}
