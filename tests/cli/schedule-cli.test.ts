import { describe, expect, it } from 'vitest';
import { nos } from '../helpers/cli.js';

describe('nos schedule refuses multipliers that are not finite numbers', () => {
  it('Infinity or NaN anywhere is a user error that says where; a negative multiplier is a warning', async () => {
    const cases: [string, RegExp][] = [
      [
        't/0',
        /^nos schedule: error: schedule 't\/0' is Infinity at t=1 \(of 4 steps\): a learning-rate multiplier must be a finite number/,
      ],
      ['0/0', /schedule '0\/0' is NaN at t=1/],
      ['1/(t-2)', /schedule '1\/\(t-2\)' is Infinity at t=2/],
    ];
    for (const [spec, msg] of cases) {
      for (const extra of [[], ['--json']]) {
        const r = await nos('schedule', spec, '--steps', '4', ...extra);
        expect(r.code, spec).toBe(1);
        expect(r.stderr, spec).toMatch(msg);
        expect(r.stdout, spec).toBe('');
      }
    }
    const neg = await nos('schedule', '1 - t/2', '--steps', '4', '--json');
    expect(neg.code).toBe(0);
    expect(neg.stderr).toMatch(/warning: the multiplier is negative at t=3 \(-0\.5\)/);
    expect(JSON.parse(neg.stdout).values).toEqual([0.5, 0, -0.5, -1]);
    const fine = await nos('schedule', 'cosine', '--steps', '4', '--json');
    expect(fine).toMatchObject({ code: 0, stderr: '' });
  });
});
