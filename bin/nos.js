#!/usr/bin/env node
import { existsSync } from 'node:fs';

// A git checkout is built by `npm run build` (the published package ships dist/).
const entry = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write('nos: error: dist/ is not built in this checkout: run `npm run build` first\n');
  process.exit(1);
}
// A password in --queue: out of `ps` before anything else loads (see cli/queue-url.ts).
const { hideSecrets } = await import('../dist/util/redact.js');
hideSecrets(process.argv.slice(2));
const { main } = await import(entry.href);

// `nos rules | head` closes the pipe early: that is not an error.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (e) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
}
process.exitCode = await main(process.argv.slice(2));
