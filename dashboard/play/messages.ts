/**
 * What crosses between the page, the search worker and the evaluation workers: plain data only
 * (rule text in, results out), as between the CLI's loop and its worker threads.
 */
import type {
  Candidate,
  DatasetBuffers,
  EvalRequest,
  EvalResult,
  SearchProgress,
  SearchSummary,
  UpdateStats,
} from '../../browser.js';

/** The tfjs back ends children may train on, in the order `auto` tries them. */
export type ChildBackend = 'webgpu' | 'wasm' | 'cpu';

export interface PlaySettings {
  readonly task: string;
  readonly strategy: 'rl' | 'random' | 'evolution';
  /** Rules to train (cache hits and rejected rules are free, as in `nos search`). */
  readonly budget: number;
  readonly seed: number;
  /** Evaluation workers. */
  readonly workers: number;
  readonly batchSize: number;
  readonly groups: number;
  /** Training steps per evaluation, or null for the task's own. */
  readonly steps: number | null;
  /** `auto`: WebGPU where the browser has it, else wasm, else cpu. */
  readonly backend: 'auto' | ChildBackend;
}

export type ToSearch =
  | {
      readonly type: 'start';
      readonly settings: PlaySettings;
      readonly dataset: DatasetBuffers | null;
      /** Where tfjs-backend-wasm's .wasm files are (a folder URL). */
      readonly wasmBase: string;
    }
  | { readonly type: 'stop' };

export type FromSearch =
  | { readonly type: 'ready'; readonly backend: string; readonly notes: readonly string[]; readonly workers: number }
  | { readonly type: 'candidate'; readonly candidate: Candidate; readonly progress: SearchProgress }
  | { readonly type: 'update'; readonly batch: number; readonly stats: UpdateStats }
  | { readonly type: 'done'; readonly summary: SearchSummary }
  | { readonly type: 'error'; readonly message: string };

export type ToEval =
  | {
      readonly type: 'init';
      readonly dataset: DatasetBuffers | null;
      readonly wasmBase: string;
      readonly backend: 'auto' | ChildBackend;
    }
  | { readonly type: 'evaluate'; readonly id: number; readonly request: EvalRequest };

export type FromEval =
  | { readonly type: 'ready'; readonly backend: string; readonly notes: readonly string[] }
  | { readonly type: 'result'; readonly id: number; readonly result: EvalResult }
  | { readonly type: 'error'; readonly id: number | null; readonly message: string };

export const errorText = (e: unknown): string => (e instanceof Error ? `${e.name}: ${e.message}` : String(e));
