/**
 * Adding a primitive is one registry entry plus one template per back end, and the compiler
 * says which templates are missing: type-check the back ends against a registry with one
 * more entry (an in-memory edit, as a test branch would make it) and read the errors.
 */
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { allowedWords, checkSource, JS_TEMPLATES } from '../../dsl/compile/js.js';
import { allowedWgslWords, checkWgsl, WGSL_TEMPLATES } from '../../dsl/compile/wgsl.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const registry = join(root, 'primitives', 'registry.ts');
const backEnds = ['js', 'tf', 'wgsl', 'wasm', 'ts', 'pytorch'].map((b) => join(root, 'dsl', 'compile', `${b}.ts`));

function typeCheck(edit: (source: string) => string): readonly ts.Diagnostic[] {
  const config = ts.getParsedCommandLineOfConfigFile(
    join(root, 'tsconfig.json'),
    {},
    { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => {} },
  );
  if (config === undefined) throw new Error('tsconfig.json does not parse');
  const options = { ...config.options, noEmit: true };
  const host = ts.createCompilerHost(options);
  const original = host.getSourceFile;
  host.getSourceFile = (file, lang, onError, fresh) =>
    resolve(file) === registry
      ? ts.createSourceFile(file, edit(readFileSync(registry, 'utf8')), lang)
      : original.call(host, file, lang, onError, fresh);
  return ts.getPreEmitDiagnostics(ts.createProgram(backEnds, options, host));
}

describe('a new primitive', () => {
  it('needs no word list: the generated-source checks allow what the templates emit, derived from them', () => {
    const tanh = (a: readonly string[]) => `Math.tanh(${a[0]})`;
    const js = 'const v1 = Math.tanh(gi);\nw[i] = wi - lr * v1;';
    expect(() => checkSource(js)).toThrow(/unexpected name 'tanh'/);
    expect(() =>
      checkSource(js, allowedWords({ ...JS_TEMPLATES, expr: { ...JS_TEMPLATES.expr, tanh } })),
    ).not.toThrow();
    const wgsl = 'let v1 = tanh(gi);';
    expect(() => checkWgsl(wgsl)).toThrow(/unexpected name 'tanh'/);
    const wgslTanh = (a: readonly string[]) => `tanh(${a[0]})`;
    expect(() =>
      checkWgsl(wgsl, allowedWgslWords({ ...WGSL_TEMPLATES, expr: { ...WGSL_TEMPLATES.expr, tanh: wgslTanh } })),
    ).not.toThrow();
    // And the stock lists are exactly the skeleton's words and the templates' (nothing kept by hand).
    expect(allowedWords(JS_TEMPLATES).has('floor')).toBe(true);
    expect(allowedWgslWords(WGSL_TEMPLATES).has('nmax')).toBe(true);
  });

  it('is reported by tsc in every back end that lacks a template for it', () => {
    const entry =
      "  prim({ name: 'tanh', category: 'elementwise', arity: 1, args: [X], ref: (a) => Math.tanh(a0(a)), doc: 'tanh(x)' }),\n";
    const edited = (s: string) => {
      const at = s.indexOf('] as const;\n\ntype Entry');
      expect(at).toBeGreaterThan(0);
      return s.slice(0, at) + entry + s.slice(at);
    };
    const diags = typeCheck(edited).filter((d) => /tanh/.test(ts.flattenDiagnosticMessageText(d.messageText, '\n')));
    const places = diags.map((d) => {
      const at = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start).line + 1 : 0;
      return `${d.file?.fileName.split('/').pop()}:${at}:${d.code}`;
    });
    const files = new Set(places.map((p) => p.split(':')[0]));
    expect([...files].sort()).toEqual(['js.ts', 'pytorch.ts', 'tf.ts', 'ts.ts', 'wasm.ts', 'wgsl.ts']);
    // The tables themselves ("does not satisfy", TS1360), one each: js, tf, wgsl, wasm, the ts
    // export's scalar and tensor tables, the PyTorch export's scalar and list tables; the other
    // errors are where a table is read. No word list needs editing (see the test above).
    expect(places.filter((p) => p.endsWith(':1360'))).toHaveLength(8);
  }, 120_000);

  it('type-checks cleanly without the edit (the errors above come from the new entry alone)', () => {
    const diags = typeCheck((s) => s).filter((d) => d.file && backEnds.includes(resolve(d.file.fileName)));
    expect(diags.map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'))).toEqual([]);
  }, 120_000);
});
