/**
 * Every relative link and image in README.md and docs/*.md points at a file of the repository
 * (and, for a markdown file, at one of its headings when it names one): what moving text
 * between files breaks first.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { anchors, links, readDoc, slug } from '../helpers/markdown.js';
import { repoRoot } from '../helpers/reference.js';

const DOCS = [
  'README.md',
  ...readdirSync(join(repoRoot, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];

/** Problems with one document's links: `file:line: target (why)`. */
function brokenLinks(doc: string, md = readDoc(doc)): string[] {
  const problems: string[] = [];
  for (const link of links(md)) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(link.target)) continue; // https:, mailto:
    const [path = '', anchor] = link.target.split('#');
    if (path === '') {
      if (anchor !== undefined && !anchors(md).has(anchor))
        problems.push(`${doc}:${link.line}: ${link.target} (no heading with that anchor)`);
      continue;
    }
    const file = normalize(join(repoRoot, dirname(doc), decodeURI(path)));
    const where = `${doc}:${link.line}: ${link.target}`;
    if (!file.startsWith(repoRoot)) problems.push(`${where} (outside the repository)`);
    else if (!existsSync(file)) problems.push(`${where} (no such file: ${relative(repoRoot, file)})`);
    else if (link.image && !statSync(file).isFile()) problems.push(`${where} (an image that is not a file)`);
    else if (anchor !== undefined && file.endsWith('.md') && !anchors(readDoc(relative(repoRoot, file))).has(anchor))
      problems.push(`${where} (no heading with that anchor)`);
  }
  return problems;
}

describe('the docs link to what exists', () => {
  it('finds the docs, and links in each', () => {
    expect(DOCS).toContain('README.md');
    expect(DOCS).toContain('docs/MANUAL.md');
    expect(DOCS).toContain('docs/ARCHITECTURE.md');
    for (const doc of ['README.md', 'docs/MANUAL.md']) expect(links(readDoc(doc)).length, doc).toBeGreaterThan(5);
  });

  it.each(DOCS)('%s: every relative link and image points at a file (and heading) that exists', (doc) => {
    expect(brokenLinks(doc)).toEqual([]);
  });
});

describe('the link checker', () => {
  it('reports a moved file, a wrong relative path and a missing heading, and passes good links', () => {
    const md = [
      '[ok](../bench/results/queue.txt) [ok](MANUAL.md#searching) [ok](#the-docs) [web](https://example.org/x)',
      '[moved](bench/results/queue.txt)',
      '![gone](no-such-image.png)',
      '[anchor](MANUAL.md#no-such-heading)',
      '## The docs',
    ].join('\n');
    expect(brokenLinks('docs/EXAMPLE.md', md)).toEqual([
      'docs/EXAMPLE.md:2: bench/results/queue.txt (no such file: docs/bench/results/queue.txt)',
      'docs/EXAMPLE.md:3: no-such-image.png (no such file: docs/no-such-image.png)',
      'docs/EXAMPLE.md:4: MANUAL.md#no-such-heading (no heading with that anchor)',
    ]);
  });

  it('reads links and images outside code, and anchors as GitHub makes them', () => {
    const md = [
      '# Use nos as a library',
      '## GPU: WGSL kernels, children on WebGPU',
      '## Status',
      '## Status',
      'See [a](docs/MANUAL.md#x) and ![img](docs/play.png "title"), not `[b](nowhere.md)`.',
      '```',
      '[c](inside-code.md)',
      '```',
    ].join('\n');
    expect(links(md)).toEqual([
      { target: 'docs/MANUAL.md#x', line: 5, image: false },
      { target: 'docs/play.png', line: 5, image: true },
    ]);
    expect([...anchors(md)]).toEqual([
      'use-nos-as-a-library',
      'gpu-wgsl-kernels-children-on-webgpu',
      'status',
      'status-1',
    ]);
    expect(slug('`nos eval`: rules, side by side (2017)')).toBe('nos-eval-rules-side-by-side-2017');
  });
});
