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
  it('is reported by tsc in every back end that lacks a template for it', () => {
    const entry =
      "  prim({ name: 'tanh', category: 'elementwise', arity: 1, args: [X], ref: (a) => Math.tanh(a0(a)), doc: 'tanh(x)' }),\n";
    const edited = (s: string) => {
      const at = s.indexOf('] as const;\n\ntype Entry');
      expect(at).toBeGreaterThan(0);
      return s.slice(0, at) + entry + s.slice(at);
    };
    const diags = typeCheck(edited);
    const files = new Set(
      diags
        .filter((d) => /tanh/.test(ts.flattenDiagnosticMessageText(d.messageText, '\n')))
        .map((d) => d.file?.fileName.split('/').pop()),
    );
    expect([...files].sort()).toEqual(['js.ts', 'pytorch.ts', 'tf.ts', 'ts.ts', 'wasm.ts', 'wgsl.ts']);
  }, 120_000);

  it('type-checks cleanly without the edit (the errors above come from the new entry alone)', () => {
    const diags = typeCheck((s) => s).filter((d) => d.file && backEnds.includes(resolve(d.file.fileName)));
    expect(diags.map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'))).toEqual([]);
  }, 120_000);
});
