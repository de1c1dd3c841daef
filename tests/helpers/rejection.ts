/** The rejection of a promise (fails when it resolves, or rejects with something not an Error). */
export async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    if (e instanceof Error) return e;
    throw e;
  }
  throw new Error('resolved; expected a rejection');
}
