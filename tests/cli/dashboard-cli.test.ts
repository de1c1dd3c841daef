import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { nos } from '../helpers/cli.js';

describe('nos dashboard: user errors', () => {
  it('--help lists its flags', async () => {
    const r = await nos('dashboard', '--help');
    expect(r.code).toBe(0);
    for (const f of ['--dir D', '--port P', '--host H']) expect(r.stdout).toContain(f);
  });

  it('refuses a --dir that is not a folder, a bad --port, and a port in use, with exit 1', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'nos-dash-cli-')), 'f');
    writeFileSync(file, 'x');
    const cases: [string[], RegExp][] = [
      [['--dir', join(file, 'nope')], /--dir .*: no such folder/],
      [['--dir', file], /--dir .*: not a folder/],
      [['--port', '70000'], /--port must be at most 65535/],
      [['--port', '-1'], /--port must be an integer >= 0/],
      [['--host', ''], /--host must not be empty/],
    ];
    for (const [args, message] of cases) {
      const r = await nos('dashboard', ...args);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).not.toMatch(/at .*\.ts:\d+/);
    }
    const busy = createServer();
    await new Promise<void>((ok) => busy.listen(0, '127.0.0.1', ok));
    const port = (busy.address() as { port: number }).port;
    try {
      const r = await nos('dashboard', '--dir', tmpdir(), '--port', String(port));
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`port ${port} on 127.0.0.1 is in use`);
    } finally {
      busy.close();
    }
  });
});
