/**
 * Where a child trains: the tfjs backend that computes its gradients (cpu = tfjs-wasm, gpu =
 * tfjs-webgpu on Dawn) and the back end that applies the rule's update.
 */

/** The back ends that can apply a rule's update to a child's weights on the CPU. */
export type RuleKernelBackend = 'wasm' | 'js' | 'interp';
