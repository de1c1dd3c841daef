/** Type-check and load emitted TypeScript as a user's strict build would (Vite's templates: noUnused*). */
import { readFileSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import ts from 'typescript';

/** Diagnostics of the files under strict settings with noUnusedLocals/Parameters ([] when clean). */
export function typeCheckStrict(files: readonly string[]): string[] {
  const program = ts.createProgram([...files], {
    strict: true,
    noUnusedLocals: true,
    noUnusedParameters: true,
    noUncheckedIndexedAccess: true,
    noImplicitOverride: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    skipLibCheck: true,
    noEmit: true,
  });
  return ts
    .getPreEmitDiagnostics(program)
    .map((d) => `${d.file?.fileName.split('/').pop()}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`);
}

/** Transpile an emitted .ts file to .mjs beside it and import it. */
export async function importEmitted(file: string): Promise<Record<string, unknown>> {
  const js = ts.transpileModule(readFileSync(file, 'utf8'), {
    compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022 },
  }).outputText;
  const mjs = file.replace(/\.ts$/, '.mjs');
  writeFileSync(mjs, js);
  return (await import(pathToFileURL(mjs).href)) as Record<string, unknown>;
}
