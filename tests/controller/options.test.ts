import { describe, expect, it } from 'vitest';
import { EVALUATE_OPTIONS, FUNNEL_OPTIONS, SEARCH_OPTIONS, SUITE_OPTIONS } from '../../controller/api.js';
import {
  checkOptionNames,
  EVAL_FLAG_OPTIONS,
  inLibraryTerms,
  libraryWording,
  optionOf,
  SEARCH_FLAG_OPTIONS,
  UnknownOptionError,
} from '../../controller/options.js';
import { RunConfigError } from '../../controller/run.js';
import { RunExistsError } from '../../search-results/store.js';
import { EVAL_FLAGS } from '../../cli/eval.js';
import { SEARCH_FLAGS } from '../../cli/search.js';

/** Whether `option` (`funnel.longTop`) names an option of the function. */
function known(option: string, top: readonly string[], nested: Readonly<Record<string, readonly string[]>>): boolean {
  const [head, inner] = option.split('.') as [string, string | undefined];
  if (!top.includes(head)) return false;
  return inner === undefined || (nested[head]?.includes(inner) ?? false);
}

describe('library options and the CLI flags they mirror', () => {
  it('every flag of nos search and nos eval maps to an option search() or evaluate() takes (CLI-only flags aside)', () => {
    const cliOnly = ['json', 'queue', 'queue-file', 'out'];
    for (const flag of Object.keys(SEARCH_FLAGS).filter((f) => !cliOnly.includes(f))) {
      const option = optionOf(flag, SEARCH_FLAG_OPTIONS);
      expect(
        known(option, SEARCH_OPTIONS, { funnel: FUNNEL_OPTIONS, suite: SUITE_OPTIONS }),
        `--${flag} -> ${option}`,
      ).toBe(true);
    }
    for (const flag of Object.keys(EVAL_FLAGS).filter((f) => !cliOnly.includes(f))) {
      const option = optionOf(flag, EVAL_FLAG_OPTIONS);
      // --rules is evaluate()'s first argument.
      expect(option === 'rule' || known(option, EVALUATE_OPTIONS, {}), `--${flag} -> ${option}`).toBe(true);
    }
  });

  it("rewords the controller's flag wording with option names", () => {
    const cases: [string, string][] = [
      ['--budget must be an integer from 1 to 10, got 0', 'budget must be an integer from 1 to 10, got 0'],
      ['--budget-unit must be one of trained, sampled', 'budgetUnit must be one of trained, sampled'],
      [
        '--finalists 6 exceeds --long-top 5: the finalists are drawn from the rules at rung 2',
        'funnel.finalists 6 exceeds funnel.longTop 5: the finalists are drawn from the rules at rung 2',
      ],
      [
        "--task: unknown task 'x'; did you mean 'y'? (nos tasks lists them)",
        "task: unknown task 'x'; did you mean 'y'? (TASKS lists them)",
      ],
      [
        "--seed 6 conflicts with run 'r', which was made with --seed 5: a resumed run keeps its stored config (drop --seed, or start a new run with another --run)",
        "seed 6 conflicts with run 'r', which was made with seed 5: a resumed run keeps its stored config (leave out seed, or start a new run with another run name)",
      ],
      ['--resume needs --run NAME', 'resume: true needs run (the name of the run to continue)'],
      // Flags this table does not know read as their camelCase option; numbers and ranges are left alone.
      ['--stand-in must be from 0 to 10, got -5', 'standIn must be from 0 to 10, got -5'],
    ];
    for (const [cli, library] of cases) expect(libraryWording(cli, SEARCH_FLAG_OPTIONS)).toBe(library);
    expect(libraryWording('--lrs expects positive numbers', EVAL_FLAG_OPTIONS)).toBe('lrGrid expects positive numbers');
  });

  it('inLibraryTerms: a RunConfigError anew with `option`, a store error reworded in place, anything else as it is', () => {
    const e = inLibraryTerms(new RunConfigError('long-top', '--long-top must be an integer'), SEARCH_FLAG_OPTIONS);
    expect(e).toBeInstanceOf(RunConfigError);
    expect(e).toMatchObject({
      field: 'long-top',
      option: 'funnel.longTop',
      message: 'funnel.longTop must be an integer',
    });
    expect((e as Error).stack?.split('\n')[0]).toBe('RunConfigError: funnel.longTop must be an integer');
    const exists = new RunExistsError("run 'a' exists: pass --resume to continue it, or pick another --run");
    expect(inLibraryTerms(exists, SEARCH_FLAG_OPTIONS)).toBe(exists);
    expect(exists.message).toBe("run 'a' exists: pass resume: true to continue it, or choose another run name");
    const other = new Error('--x');
    expect(inLibraryTerms(other, SEARCH_FLAG_OPTIONS)).toBe(other);
    expect(other.message).toBe('--x');
  });

  it('checkOptionNames: the nearest name, the option a flag name sets, nested names; nothing for known ones', () => {
    const names = ['task', 'lrGrid', 'seeds', ['funnel', ['longTop', 'promote']] as const] as const;
    const refusal = (given: object): UnknownOptionError => {
      try {
        checkOptionNames('f', given, names, { lrs: 'lrGrid', 'long-top': 'funnel.longTop' });
      } catch (e) {
        if (e instanceof UnknownOptionError) return e;
        throw e;
      }
      throw new Error('accepted');
    };
    expect(refusal({ taks: 1 })).toMatchObject({ fn: 'f', option: 'taks', suggestion: 'task' });
    expect(refusal({ lrs: [1] })).toMatchObject({ option: 'lrs', suggestion: 'lrGrid' });
    expect(refusal({ longTop: 1 })).toMatchObject({ option: 'longTop', suggestion: 'funnel.longTop' });
    expect(refusal({ funnel: { promot: 1 } })).toMatchObject({ option: 'funnel.promot', suggestion: 'funnel.promote' });
    const far = refusal({ zzzzzz: 1 });
    expect(far.suggestion).toBeUndefined();
    expect(far.message).toBe("f(): unknown option 'zzzzzz' (options: task, lrGrid, seeds, funnel)");
    expect(() => checkOptionNames('f', { task: 'x', seeds: 2, funnel: { longTop: 2 } }, names, {})).not.toThrow();
    // A function-valued or array option is not looked into.
    expect(() => checkOptionNames('f', { lrGrid: [1, 2] }, names, {})).not.toThrow();
  });
});
