import '../../dsl/compile/tf-kernel.js';
import { initTf } from '../../dsl/compile/tf-backend.js';

/** The tfjs backend the tests run on (wasm on these machines). */
export const tfReady = initTf();
