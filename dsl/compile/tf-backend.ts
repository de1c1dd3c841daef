/**
 * Picks the tfjs backend once per process: `tensorflow` (libtensorflow, CPU or CUDA) when the
 * user has @tensorflow/tfjs-node-gpu or @tensorflow/tfjs-node installed, else `wasm`, else
 * `cpu`. tfjs-node cannot install on machines that cannot download libtensorflow, so here
 * it is the wasm backend; the choice is reported, never silent.
 */
import * as tf from '@tensorflow/tfjs';
import { importOptional, MissingDependencyError } from '../../util/optional-deps.js';

export interface BackendChoice {
  readonly name: string;
  /** Why this one: what was tried before it. */
  readonly notes: readonly string[];
}

let choice: Promise<BackendChoice> | undefined;

async function tryImport(name: string): Promise<boolean> {
  try {
    await import(name);
    return true;
  } catch {
    return false;
  }
}

export function initTf(preferred: 'auto' | 'tensorflow' | 'wasm' | 'cpu' = 'auto'): Promise<BackendChoice> {
  choice ??= (async () => {
    const notes: string[] = [];
    const order = preferred === 'auto' ? ['tensorflow', 'wasm', 'cpu'] : [preferred];
    for (const name of order) {
      if (name === 'tensorflow') {
        const gpu = await tryImport('@tensorflow/tfjs-node-gpu');
        if (!gpu && !(await tryImport('@tensorflow/tfjs-node'))) {
          notes.push('tensorflow: @tensorflow/tfjs-node(-gpu) is not installed');
          continue;
        }
      }
      if (name === 'wasm') {
        try {
          await importOptional('@tensorflow/tfjs-backend-wasm');
        } catch (e) {
          if (!(e instanceof MissingDependencyError)) throw e;
          notes.push(`wasm: ${e.message}`);
          continue;
        }
      }
      try {
        if (await tf.setBackend(name)) {
          await tf.ready();
          return { name, notes };
        }
        notes.push(`${name}: setBackend refused`);
      } catch (e) {
        notes.push(`${name}: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    throw new Error(`no tfjs backend could start: ${notes.join('; ')}`);
  })();
  return choice;
}
