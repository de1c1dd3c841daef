/**
 * docs/CLI.md, the command reference, is generated from the commands' own flag specs (the same
 * ones `nos <command> --help` prints from): this test fails when a flag changes and the file was
 * not regenerated. `npm run docs:cli` rewrites the file (NOS_WRITE_DOCS=1).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatHelp } from '../../cli/args.js';
import { COMMANDS, commandSpecs } from '../../cli/main.js';
import { anchors, readDoc } from '../helpers/markdown.js';
import { repoRoot } from '../helpers/reference.js';

const FILE = 'docs/CLI.md';

async function reference(): Promise<string> {
  const parts = [
    '# nos command reference',
    '',
    "<!-- Generated from the commands' flag specs by tests/docs/cli.test.ts: `npm run docs:cli` rewrites it. -->",
    '',
    "Every command's `--help`, as `nos <command> --help` prints it. What the commands do, with examples:",
    'the [manual](MANUAL.md); the output formats scripts may rely on: the [contract](CONTRACT.md).',
    '',
    ...Object.entries(COMMANDS).map(([name, c]) => `- [\`nos ${name}\`](#nos-${name}): ${c.summary}`),
    '',
  ];
  for (const [name, c] of Object.entries(COMMANDS)) {
    const help = formatHelp(name, c.usage, c.summary, await commandSpecs(name));
    parts.push(`## nos ${name}`, '', '```text', help.trimEnd(), '```', '');
  }
  return parts.join('\n');
}

describe('docs/CLI.md', () => {
  it("is every command's help, generated from its flag specs", async () => {
    const expected = await reference();
    if (process.env.NOS_WRITE_DOCS === '1') writeFileSync(join(repoRoot, FILE), expected);
    expect(readDoc(FILE)).toBe(expected);
  }, 60_000);

  it('has a section per command, each linked from the list at the top', () => {
    const doc = readDoc(FILE);
    const have = anchors(doc);
    for (const name of Object.keys(COMMANDS)) {
      expect(have.has(`nos-${name}`), name).toBe(true);
      expect(doc).toContain(`](#nos-${name})`);
    }
  });
});
