/** `--device cpu|webgpu` of `nos eval` and `nos search`: where children train. */
import { DEVICES, type Device } from '../evaluator/gpu-train.js';
import { resolveOptional } from '../util/optional-deps.js';
import { type FlagSpecs, flag, type parseArgs, UsageError } from './args.js';

export const DEVICE_FLAG: FlagSpecs = {
  device: {
    type: 'string',
    value: 'D',
    description:
      'where children train: cpu (default: wasm, --workers threads) or webgpu (tfjs-webgpu, the rule as a WGSL kernel, one GPU thread; classifier tasks)',
  },
};

export function deviceFlag(args: ReturnType<typeof parseArgs>): Device {
  const d = flag(args, 'device') ?? 'cpu';
  if (!(DEVICES as readonly string[]).includes(d))
    throw new UsageError(`--device must be one of ${DEVICES.join(', ')}, got '${d}'`);
  if (d === 'webgpu') {
    // Missing packages are the user's to install: said now (MissingDependencyError), not per evaluation.
    resolveOptional('webgpu');
    resolveOptional('@tensorflow/tfjs-backend-webgpu');
  }
  return d as Device;
}
