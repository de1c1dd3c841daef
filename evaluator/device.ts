/**
 * Where a child's rule update runs. On the CPU today: the wasm SIMD kernel by default (fused JS,
 * then the interpreter, where a rule has no wasm form). Children on the GPU are not wired yet
 * (README, "GPU kernels (WGSL) and tfjs backends").
 */

/** The back ends that can apply a rule's update to a child's weights on the CPU. */
export type RuleKernelBackend = 'wasm' | 'js' | 'interp';
