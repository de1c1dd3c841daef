#!/usr/bin/env node
import { hideSecrets } from '../dist/util/redact.js';

// A password in --queue: out of `ps` before anything else loads (see cli/queue-url.ts).
hideSecrets(process.argv.slice(2));
const { main } = await import('../dist/cli/main.js');

// `nos rules | head` closes the pipe early: that is not an error.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (e) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
}
process.exitCode = await main(process.argv.slice(2));
