// Records every file Node loads (ES modules, CommonJS modules, native addons) into the file
// named by NOS_PACK_TRACE, one path a line: bench/gpu-pack.sh runs the GPU machine's workloads
// under `node --import ./bench/gpu-pack-trace.mjs` to learn which files of node_modules to pack.
// Worker threads inherit the flag, so the GPU and pool workers are traced too.
import { appendFileSync } from 'node:fs';
import Module, { register } from 'node:module';

const out = process.env.NOS_PACK_TRACE;
if (out) {
  // CommonJS (and native addons, which load through require).
  const resolve = Module._resolveFilename;
  Module._resolveFilename = function (...args) {
    const file = resolve.apply(this, args);
    if (typeof file === 'string' && file.startsWith('/')) appendFileSync(out, `${file}\n`);
    return file;
  };
  // ES modules: a resolve hook, which runs on the loader's own thread.
  const hook = `
    import { appendFileSync } from 'node:fs';
    import { fileURLToPath } from 'node:url';
    export async function resolve(specifier, context, next) {
      const r = await next(specifier, context);
      if (r.url.startsWith('file:')) appendFileSync(${JSON.stringify(out)}, fileURLToPath(r.url) + '\\n');
      return r;
    }`;
  register(`data:text/javascript,${encodeURIComponent(hook)}`);
}
