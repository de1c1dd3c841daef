/**
 * Random rules from a search space, as the paper's controller writes them: groups of
 * (operand 1, operand 2, unary 1, unary 2, binary); a later group may take an earlier group's
 * result as an operand; the last group is the rule.
 */
import { fill, NOS_SPACE, type SearchSpace } from '../primitives/nos-space.js';

export type Rng = () => number;

export interface Choices {
  /** Per group: [operand1, operand2, unary1, unary2, binary], operands indexing operands then earlier groups. */
  readonly groups: readonly (readonly [number, number, number, number, number])[];
}

/** Rule text for a list of choices. */
export function ruleText(choices: Choices, space: SearchSpace = NOS_SPACE): string {
  const results: string[] = [];
  for (const [o1, o2, u1, u2, b] of choices.groups) {
    const operand = (i: number): string => {
      const op = space.operands[i];
      if (op) return op.text;
      const earlier = results[i - space.operands.length];
      if (earlier === undefined) throw new Error(`operand ${i} is out of range`);
      return earlier;
    };
    const unary = (i: number, arg: string): string =>
      fill((space.unary[i] ?? (space.unary[0] as { text: string })).text, [arg]);
    const binary = space.binary[b];
    if (binary === undefined) throw new Error(`binary ${b} is out of range`);
    results.push(fill(binary.text, [unary(u1, operand(o1)), unary(u2, operand(o2))]));
  }
  const last = results[results.length - 1];
  if (last === undefined) throw new Error('a rule needs at least one group');
  return last;
}

/** Uniformly random choices for `groups` groups. */
export function randomChoices(rng: Rng, groups: number, space: SearchSpace = NOS_SPACE): Choices {
  const pick = (n: number) => Math.floor(rng() * n);
  return {
    groups: Array.from({ length: groups }, (_, g) => {
      const operands = space.operands.length + g;
      return [
        pick(operands),
        pick(operands),
        pick(space.unary.length),
        pick(space.unary.length),
        pick(space.binary.length),
      ] as const;
    }),
  };
}
