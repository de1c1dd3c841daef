import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bufferIo } from '../../cli/io.js';
import { main } from '../../cli/main.js';
import { repoRoot } from './reference.js';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run the CLI in this process. */
export async function nos(...argv: string[]): Promise<RunResult> {
  const io = bufferIo();
  const code = await main(argv, io);
  return { code, stdout: io.stdout.join('\n'), stderr: io.stderr.join('\n') };
}

/** Run the built binary in a child process, as a user would. */
export function nosBin(argv: string[], options: { cwd?: string; timeoutMs?: number } = {}): RunResult {
  const r = spawnSync(process.execPath, [join(repoRoot, 'bin', 'nos.js'), ...argv], {
    cwd: options.cwd ?? repoRoot,
    encoding: 'utf8',
    timeout: options.timeoutMs ?? 60_000,
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

export function tempFile(name: string, content: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'nos-test-'));
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}
