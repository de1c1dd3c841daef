/**
 * Lexer and parser for the update-rule language (Chevrotain).
 *
 *   file     := rule*                         (when the text starts with `rule`)
 *             | body                          (a bare, anonymous rule)
 *   rule     := 'rule' NAME ('(' param (',' param)* ')')? ('=' expr | '{' body '}')
 *   param    := IDENT '=' '-'? (NUMBER | IDENT)     -- IDENT: e or pi
 *   body     := (IDENT '=' expr SEP)* expr
 *   expr     := term (('+' | '-') term)*
 *   term     := unary (('*' | '/') unary)*
 *   unary    := '-' unary | power
 *   power    := primary ('^' unary)?            -- right associative, binds tighter than unary minus
 *   primary  := NUMBER | '(' expr ')' | ('@'? NAME) ('(' args? ')')?
 *
 * Statements are separated by newlines or `;`. A newline does not end a statement inside
 * brackets, after an operator or comma, or before `+ * / ^ ) , }`.
 */
import { createToken, EmbeddedActionsParser, type IToken, Lexer, type TokenType } from 'chevrotain';
import type { Arg, Binding, Expr, Param, Range, RuleDef, SourceFile } from './ast.js';

const WhiteSpace = createToken({ name: 'WhiteSpace', pattern: /[ \t\r]+/, group: Lexer.SKIPPED });
const Comment = createToken({ name: 'Comment', pattern: /(?:#|\/\/)[^\n]*/, group: Lexer.SKIPPED });
const Newline = createToken({ name: 'Newline', pattern: /\n/, line_breaks: true, label: 'end of line' });
const NumberLit = createToken({
  name: 'Number',
  pattern: /(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?/,
  label: 'a number',
});
const Identifier = createToken({ name: 'Identifier', pattern: /[A-Za-z_][A-Za-z0-9_]*/, label: 'a name' });
const RuleKw = createToken({ name: 'Rule', pattern: /rule/, longer_alt: Identifier, label: "'rule'" });
const At = createToken({ name: 'At', pattern: /@/, label: "'@'" });

const hyphenated = /[A-Za-z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)+/y;
/** A rule name with hyphens (`powersign-ld`): only right after `rule` or `@`, so `m-v` stays a subtraction. */
const HyphenName = createToken({
  name: 'HyphenName',
  label: 'a rule name',
  pattern: {
    exec: (text: string, offset: number, tokens: IToken[]) => {
      const prev = tokens[tokens.length - 1];
      if (prev === undefined || (prev.tokenType !== RuleKw && prev.tokenType !== At)) return null;
      hyphenated.lastIndex = offset;
      return hyphenated.exec(text);
    },
  },
  line_breaks: false,
  start_chars_hint: [...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'],
});
const Plus = createToken({ name: 'Plus', pattern: /\+/, label: "'+'" });
const Minus = createToken({ name: 'Minus', pattern: /-/, label: "'-'" });
const Star = createToken({ name: 'Star', pattern: /\*/, label: "'*'" });
const Slash = createToken({ name: 'Slash', pattern: /\//, label: "'/'" });
const Caret = createToken({ name: 'Caret', pattern: /\^/, label: "'^'" });
const LParen = createToken({ name: 'LParen', pattern: /\(/, label: "'('" });
const RParen = createToken({ name: 'RParen', pattern: /\)/, label: "')'" });
const LBrace = createToken({ name: 'LBrace', pattern: /\{/, label: "'{'" });
const RBrace = createToken({ name: 'RBrace', pattern: /\}/, label: "'}'" });
const Comma = createToken({ name: 'Comma', pattern: /,/, label: "','" });
const Semicolon = createToken({ name: 'Semicolon', pattern: /;/, label: "';'" });
const Equals = createToken({ name: 'Equals', pattern: /=/, label: "'='" });

const allTokens: TokenType[] = [
  WhiteSpace,
  Comment,
  Newline,
  NumberLit,
  HyphenName,
  RuleKw,
  Identifier,
  At,
  Plus,
  Minus,
  Star,
  Slash,
  Caret,
  LParen,
  RParen,
  LBrace,
  RBrace,
  Comma,
  Semicolon,
  Equals,
];

const lexer = new Lexer(allTokens, { positionTracking: 'full', ensureOptimizations: false });

/** Newlines that cannot end a statement are dropped before parsing. */
const OPENERS = new Set<TokenType>([
  LParen,
  Comma,
  Plus,
  Minus,
  Star,
  Slash,
  Caret,
  Equals,
  LBrace,
  Newline,
  Semicolon,
]);
const CONTINUERS = new Set<TokenType>([RParen, Comma, Plus, Star, Slash, Caret, RBrace]);

function filterNewlines(tokens: IToken[]): IToken[] {
  const out: IToken[] = [];
  let depth = 0;
  for (let i = 0; i < tokens.length; i++) {
    const tok = tokens[i] as IToken;
    if (tok.tokenType === LParen) depth++;
    else if (tok.tokenType === RParen) depth = Math.max(0, depth - 1);
    if (tok.tokenType === Newline) {
      const prev = out[out.length - 1];
      const next = tokens[i + 1];
      if (
        depth > 0 ||
        prev === undefined ||
        OPENERS.has(prev.tokenType) ||
        next === undefined ||
        CONTINUERS.has(next.tokenType)
      )
        continue;
    }
    out.push(tok);
  }
  return out;
}

const range = (a: IToken, b: IToken = a): Range => ({ start: a.startOffset, end: (b.endOffset ?? b.startOffset) + 1 });
const join = (a: Range, b: Range): Range => ({ start: a.start, end: b.end });

function parseNumber(image: string): number {
  return Number(image);
}

/** A number as the language writes it, with an optional sign: decimal digits only (no hex, binary, octal, Infinity, NaN). */
const DECIMAL_LITERAL = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;

export type NumberLiteral =
  | { readonly ok: true; readonly value: number }
  | { readonly ok: false; readonly message: string };

/**
 * Parse a number given outside rule text (`--set k=v`, config values) by the rules of the
 * language's number literals: decimal only, at most LIMITS.maxNumber in magnitude. `Number()`
 * alone would read '0x1' as 1, '' as 0 and 'Infinity' as a number.
 */
export function parseNumberLiteral(text: string): NumberLiteral {
  const s = text.trim();
  if (s === '') return { ok: false, message: 'a number is required, got nothing' };
  const shown = s.length > 40 ? `${s.slice(0, 40)}...` : s;
  if (!DECIMAL_LITERAL.test(s))
    return { ok: false, message: `'${shown}' is not a decimal number (such as 0.9, -2, 1e-8)` };
  const value = Number(s);
  if (!Number.isFinite(value) || Math.abs(value) > LIMITS.maxNumber)
    return { ok: false, message: `${shown} is too large (numbers are limited to ${LIMITS.maxNumber} in magnitude)` };
  return { ok: true, value };
}

class RuleParser extends EmbeddedActionsParser {
  constructor() {
    super(allTokens, { maxLookahead: 3 });
    this.performSelfAnalysis();
  }

  public file = this.RULE('file', (): SourceFile => {
    const rules: RuleDef[] = [];
    this.MANY(() => this.CONSUME(Newline));
    this.OR([
      {
        GATE: () => this.LA(1).tokenType === RuleKw,
        ALT: () => {
          this.AT_LEAST_ONE(() => {
            rules.push(this.SUBRULE(this.ruleDef));
            this.MANY2(() => this.OR2([{ ALT: () => this.CONSUME2(Newline) }, { ALT: () => this.CONSUME(Semicolon) }]));
          });
        },
      },
      {
        ALT: () => {
          const start = this.LA(1);
          const { bindings, body } = this.SUBRULE(this.body);
          this.MANY3(() => this.CONSUME3(Newline));
          rules.push(
            this.ACTION(() => ({
              nameRange: range(start),
              params: [],
              bindings,
              body,
              range: join(range(start), body.range),
            })),
          );
        },
      },
    ]);
    return { rules };
  });

  private ruleDef = this.RULE('ruleDef', (): RuleDef => {
    const kw = this.CONSUME(RuleKw);
    const name = this.OR([{ ALT: () => this.CONSUME(Identifier) }, { ALT: () => this.CONSUME(HyphenName) }]);
    const params: Param[] = [];
    this.OPTION(() => {
      this.CONSUME(LParen);
      this.MANY_SEP({ SEP: Comma, DEF: () => params.push(this.SUBRULE(this.param)) });
      this.CONSUME(RParen);
    });
    let bindings: Binding[] = [];
    let body: Expr | undefined;
    let last: IToken = kw;
    this.OR2([
      {
        ALT: () => {
          this.CONSUME(Equals);
          body = this.SUBRULE(this.expr);
        },
      },
      {
        ALT: () => {
          this.CONSUME(LBrace);
          this.MANY(() => this.CONSUME(Newline));
          const b = this.SUBRULE(this.body);
          bindings = b.bindings;
          body = b.body;
          this.MANY2(() => this.OR3([{ ALT: () => this.CONSUME2(Newline) }, { ALT: () => this.CONSUME(Semicolon) }]));
          last = this.CONSUME(RBrace);
        },
      },
    ]);
    return this.ACTION(() => {
      const b = body as Expr;
      const end = last === kw ? b.range : range(last);
      return { name: name.image, nameRange: range(name), params, bindings, body: b, range: join(range(kw), end) };
    });
  });

  private param = this.RULE('param', (): Param => {
    const name = this.CONSUME(Identifier);
    this.CONSUME(Equals);
    let negative = false;
    this.OPTION(() => {
      this.CONSUME(Minus);
      negative = true;
    });
    const value = this.OR([{ ALT: () => this.CONSUME(NumberLit) }, { ALT: () => this.CONSUME2(Identifier) }]);
    return this.ACTION(() => {
      let v: number;
      if (value.tokenType === NumberLit) v = parseNumber(value.image);
      else if (value.image === 'e') v = Math.E;
      else if (value.image === 'pi') v = Math.PI;
      else v = Number.NaN; // reported by the checker as a bad default
      return { name: name.image, value: negative ? -v : v, range: join(range(name), range(value)) };
    });
  });

  private body = this.RULE('body', (): { bindings: Binding[]; body: Expr } => {
    const bindings: Binding[] = [];
    this.MANY({
      GATE: () => this.LA(1).tokenType === Identifier && this.LA(2).tokenType === Equals,
      DEF: () => {
        const name = this.CONSUME(Identifier);
        this.CONSUME(Equals);
        const value = this.SUBRULE(this.expr);
        this.AT_LEAST_ONE(() =>
          this.OR([{ ALT: () => this.CONSUME(Newline) }, { ALT: () => this.CONSUME(Semicolon) }]),
        );
        bindings.push(this.ACTION(() => ({ name: name.image, value, range: join(range(name), value.range) })));
      },
    });
    const body = this.SUBRULE2(this.expr);
    return { bindings, body };
  });

  private expr = this.RULE('expr', (): Expr => {
    let left = this.SUBRULE(this.term);
    this.MANY(() => {
      const op = this.OR([{ ALT: () => this.CONSUME(Plus) }, { ALT: () => this.CONSUME(Minus) }]);
      const right = this.SUBRULE2(this.term);
      left = this.ACTION(() => ({
        type: 'binary',
        op: op.image === '+' ? '+' : '-',
        left,
        right,
        range: join(left.range, right.range),
      }));
    });
    return left;
  });

  private term = this.RULE('term', (): Expr => {
    let left = this.SUBRULE(this.unary);
    this.MANY(() => {
      const op = this.OR([{ ALT: () => this.CONSUME(Star) }, { ALT: () => this.CONSUME(Slash) }]);
      const right = this.SUBRULE2(this.unary);
      left = this.ACTION(() => ({
        type: 'binary',
        op: op.image === '*' ? '*' : '/',
        left,
        right,
        range: join(left.range, right.range),
      }));
    });
    return left;
  });

  private unary = this.RULE('unary', (): Expr => {
    return this.OR([
      {
        ALT: () => {
          const minus = this.CONSUME(Minus);
          const arg = this.SUBRULE(this.unary);
          return this.ACTION((): Expr => ({ type: 'neg', arg, range: join(range(minus), arg.range) }));
        },
      },
      { ALT: () => this.SUBRULE(this.power) },
    ]);
  });

  private power = this.RULE('power', (): Expr => {
    const base = this.SUBRULE(this.primary);
    let result = base;
    this.OPTION(() => {
      this.CONSUME(Caret);
      const exponent = this.SUBRULE(this.unary);
      result = this.ACTION(
        (): Expr => ({ type: 'binary', op: '^', left: base, right: exponent, range: join(base.range, exponent.range) }),
      );
    });
    return result;
  });

  private primary = this.RULE('primary', (): Expr => {
    return this.OR([
      {
        ALT: () => {
          const tok = this.CONSUME(NumberLit);
          return this.ACTION((): Expr => ({ type: 'num', value: parseNumber(tok.image), range: range(tok) }));
        },
      },
      {
        ALT: () => {
          const open = this.CONSUME(LParen);
          const inner = this.SUBRULE(this.expr);
          const close = this.CONSUME(RParen);
          // Parentheses are not kept in the tree, but widen the range for messages.
          return this.ACTION((): Expr => ({ ...inner, range: join(range(open), range(close)) }));
        },
      },
      {
        ALT: () => {
          let at: IToken | undefined;
          this.OPTION(() => {
            at = this.CONSUME(At);
          });
          const name = this.OR2([{ ALT: () => this.CONSUME(Identifier) }, { ALT: () => this.CONSUME(HyphenName) }]);
          const args: Arg[] = [];
          let close: IToken | undefined;
          this.OPTION2(() => {
            this.CONSUME2(LParen);
            this.MANY_SEP({ SEP: Comma, DEF: () => args.push(this.SUBRULE(this.arg)) });
            close = this.CONSUME2(RParen);
          });
          return this.ACTION((): Expr => {
            const first = range(at ?? name);
            if (close === undefined) return { type: 'name', name: name.image, range: join(first, range(name)) };
            return {
              type: 'call',
              callee: name.image,
              calleeRange: range(name),
              args,
              range: join(first, range(close)),
            };
          });
        },
      },
    ]);
  });

  private arg = this.RULE('arg', (): Arg => {
    return this.OR([
      {
        GATE: () => this.LA(1).tokenType === Identifier && this.LA(2).tokenType === Equals,
        ALT: () => {
          const name = this.CONSUME(Identifier);
          this.CONSUME(Equals);
          const value = this.SUBRULE(this.expr);
          return this.ACTION((): Arg => ({ name: name.image, nameRange: range(name), value }));
        },
      },
      { ALT: () => ({ value: this.SUBRULE2(this.expr) }) },
    ]);
  });
}

/** One parser instance per process (Chevrotain's grammar analysis is the expensive part). */
let parser: RuleParser | undefined;

export interface ParseProblem {
  readonly code: 'lex' | 'syntax' | 'limit';
  readonly message: string;
  readonly offset: number;
  readonly length: number;
}

export interface ParseResult {
  readonly file?: SourceFile;
  readonly problems: readonly ParseProblem[];
}

export const LIMITS = {
  /** Characters in one source text. */
  sourceChars: 200_000,
  /** Tokens in one source text. */
  tokens: 20_000,
  /** Nesting of brackets, unary minus and ^ chains (each is a level of recursion). */
  nesting: 100,
  /** Largest magnitude of a number literal. */
  maxNumber: 1e30,
} as const;

function describe(tok: IToken): string {
  if (tok.tokenType.name === 'EOF') return 'the end of the text';
  if (tok.tokenType === Newline) return 'the end of the line';
  return `'${tok.image}'`;
}

function expectedFrom(message: string): string {
  // Chevrotain lists the expected token sequences; keep the first token of each, by label.
  const labels = new Set<string>();
  for (const m of message.matchAll(/\[([^\]]*)\]/g)) {
    const first = (m[1] ?? '').split(',')[0]?.trim();
    if (first) labels.add(first.replace(/^'(.*)'$/, "'$1'"));
  }
  return [...labels].slice(0, 6).join(', ');
}

/** Lex and parse. Never throws: problems come back located. */
export function parseSource(text: string): ParseResult {
  if (text.length > LIMITS.sourceChars) {
    return {
      problems: [
        {
          code: 'limit',
          message: `source is ${text.length} characters; the limit is ${LIMITS.sourceChars}`,
          offset: 0,
          length: 1,
        },
      ],
    };
  }
  const lexed = lexer.tokenize(text);
  const problems: ParseProblem[] = [];
  for (const e of lexed.errors) {
    const ch = text.slice(e.offset, e.offset + e.length);
    problems.push({ code: 'lex', message: `unexpected character '${ch.slice(0, 1)}'`, offset: e.offset, length: 1 });
  }
  // Estimate the recursion the parser needs: brackets, runs of unary minus, chains of ^.
  const chains: number[] = [];
  let chain = 0;
  let prevType: TokenType | undefined;
  let reported = false;
  for (const tok of lexed.tokens) {
    const type = tok.tokenType;
    if (type === Identifier && tok.image.includes('_')) {
      problems.push({
        code: 'lex',
        message: `'${tok.image}': names cannot contain underscores (saved tfjs configs camel-case them); write '${tok.image.replace(/_+(.)?/g, (_m, c: string | undefined) => (c ?? '').toUpperCase())}'`,
        offset: tok.startOffset,
        length: tok.image.length,
      });
    }
    if (type === NumberLit) {
      const v = Number(tok.image);
      if (!Number.isFinite(v) || Math.abs(v) > LIMITS.maxNumber) {
        const shown = tok.image.length > 40 ? `${tok.image.slice(0, 40)}...` : tok.image;
        problems.push({
          code: 'limit',
          message: `number ${shown} is too large (limit ${LIMITS.maxNumber})`,
          offset: tok.startOffset,
          length: tok.image.length,
        });
      }
    }
    const unaryMinus = type === Minus && (prevType === undefined || OPENERS.has(prevType));
    if (type === LParen || type === LBrace) {
      chains.push(chain + 1);
      chain = 0;
    } else if (type === RParen || type === RBrace) {
      // A bracketed group is a primary: the chain it sat in goes on after it.
      chain = Math.max(0, (chains.pop() ?? 1) - 1);
    } else if (type === Caret || unaryMinus) chain++;
    else if (type !== NumberLit && type !== Identifier && type !== HyphenName && type !== At) chain = 0;
    const level = chains.reduce((a, b) => a + b, 0) + chain;
    if (level > LIMITS.nesting && !reported) {
      reported = true;
      problems.push({
        code: 'limit',
        message: `the expression nests deeper than ${LIMITS.nesting} levels (brackets, unary minus, ^)`,
        offset: tok.startOffset,
        length: 1,
      });
    }
    prevType = type;
  }
  if (lexed.tokens.length > LIMITS.tokens) {
    problems.push({
      code: 'limit',
      message: `source has ${lexed.tokens.length} tokens; the limit is ${LIMITS.tokens}`,
      offset: 0,
      length: 1,
    });
  }
  if (problems.length > 0) return { problems };
  const tokens = filterNewlines(lexed.tokens);
  if (tokens.length === 0)
    return { problems: [{ code: 'syntax', message: 'no rule: the text is empty', offset: 0, length: 1 }] };
  parser ??= new RuleParser();
  parser.input = tokens;
  const file = parser.file();
  if (parser.errors.length > 0) {
    const err = parser.errors[0];
    if (err !== undefined) {
      const tok = err.token;
      const offset =
        Number.isNaN(tok.startOffset) || tok.tokenType.name === 'EOF' ? text.trimEnd().length : tok.startOffset;
      const expected = expectedFrom(err.message);
      let message: string;
      if (err.name === 'NotAllInputParsedException')
        message = `unexpected ${describe(tok)}: expected an operator or the end of the rule`;
      else if (err.name === 'MismatchedTokenException') {
        const want = /-->\s*(.*?)\s*<--/.exec(err.message)?.[1] ?? 'something else';
        message = `expected ${want} but found ${describe(tok)}`;
      } else if (expected.includes('a number')) message = `expected an expression but found ${describe(tok)}`;
      else message = `expected ${expected || 'something else'} but found ${describe(tok)}`;
      return { problems: [{ code: 'syntax', message, offset, length: Math.max(1, tok.image?.length ?? 1) }] };
    }
  }
  return { file, problems: [] };
}
