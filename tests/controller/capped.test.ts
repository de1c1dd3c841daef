import { describe, expect, it } from 'vitest';
import { cappedNote } from '../../controller/search.js';

describe('a search that ends at its sample cap says why', () => {
  const summary = { capped: true, sampled: 40_000, evaluated: 411, budget: 2000 };

  it('names the cap, the rules trained, and what the strategy proposed at the end', () => {
    const cs = [
      ...Array.from({ length: 300 }, () => ({ rule: 'sign(g)', status: 'ok' as const })),
      ...Array.from({ length: 40 }, () => ({ rule: 'sign(g)', status: 'cached' as const })),
      ...Array.from({ length: 960 }, () => ({ rule: '(exp(1)) * (exp(1))', status: 'rejected' as const })),
    ];
    const note = cappedNote(summary, cs);
    expect(note).toContain('sample cap (40000 samples) with 411 of 2000 rules trained');
    // The last 1,000 samples only: 40 cached, 960 rejected, 2 distinct texts.
    expect(note).toContain(
      'of the last 1000 samples, 40 re-proposed known rules and 960 were rejected, 2 distinct text(s)',
    );
    expect(note).toContain('the most frequent 960 time(s): (exp(1)) * (exp(1))');
  });

  it('says nothing for a run that was not capped', () => {
    expect(cappedNote({ ...summary, capped: false }, [{ rule: 'g', status: 'cached' }])).toBeUndefined();
  });

  it('shows rule text read from a run as untrusted: control characters escaped, cut', () => {
    const bad = `g\u001b[31m${'x'.repeat(500)}`;
    const note = cappedNote(summary, [{ rule: bad, status: 'rejected' }]) as string;
    expect(note).not.toContain('\u001b');
    expect(note.length).toBeLessThan(600);
  });
});
