/**
 * Save and load tfjs models as files in Node, without tfjs-node: `model.save('file://...')`
 * needs `@tensorflow/tfjs-node`'s handler, which plain `@tensorflow/tfjs` does not have. This
 * handler writes the same layout (`model.json` with a weights manifest, and `weights.bin`), so
 * tfjs-node's `file://` and `tf.loadLayersModel` of the served files read it too.
 *
 *   await model.save(nos.fileSystem('out/model'), { includeOptimizer: true });
 *   const again = await tf.loadLayersModel(nos.fileSystem('out/model'));
 *
 * Node only (the browser entry does not export it).
 */
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve, sep } from 'node:path';
import type * as tf from '@tensorflow/tfjs';

/** A model's files cannot be written or read: says which file and why. */
export class ModelFileError extends Error {
  override readonly name = 'ModelFileError';
}

/** The weights file this handler writes beside model.json. */
const WEIGHTS_FILE = 'weights.bin';

/** model.json and its folder, for a path that names the folder or the .json file itself. */
function locate(path: string): { json: string; dir: string } {
  if (typeof path !== 'string' || path === '')
    throw new ModelFileError('fileSystem(path): give a folder or a .json file');
  const p = path.startsWith('file://') ? path.slice('file://'.length) : path;
  const json = p.endsWith('.json') ? resolve(p) : resolve(p, 'model.json');
  return { json, dir: dirname(json) };
}

function describe(e: unknown): string {
  const code = (e as { code?: unknown }).code;
  return typeof code === 'string' ? `${code}: ${(e as Error).message}` : e instanceof Error ? e.message : String(e);
}

/** The weight data as one buffer (tfjs gives one ArrayBuffer, or several for large models). */
function joinWeights(data: tf.io.WeightData | undefined): Uint8Array<ArrayBuffer> {
  if (data === undefined) return new Uint8Array(0);
  return concat((Array.isArray(data) ? data : [data]).map((b) => new Uint8Array(b)));
}

function concat(parts: readonly Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, b) => n + b.byteLength, 0));
  let at = 0;
  for (const b of parts) {
    out.set(b, at);
    at += b.byteLength;
  }
  return out;
}

/** Bytes a weight takes (float32, int32, bool; quantized weights by their storage type). */
function weightBytes(w: tf.io.WeightsManifestEntry): number {
  const n = w.shape.reduce((a, b) => a * b, 1);
  const q = w.quantization?.dtype;
  const per = q === 'uint8' ? 1 : q === 'uint16' || q === 'float16' ? 2 : w.dtype === 'bool' ? 1 : 4;
  return w.dtype === 'string' ? Number.NaN : n * per;
}

/**
 * A tfjs IO handler that saves a model (with its optimizer, given `includeOptimizer: true`) to
 * `path` and loads it back: `path` names a folder (model.json and weights.bin go in it, the
 * folder is created) or a `.json` file (weights.bin beside it). A `file://` prefix is allowed.
 * What it reads is checked: weight files must sit in the model's folder, their sizes must
 * match the manifest, and a problem is a ModelFileError naming the file.
 */
export function fileSystem(path: string): tf.io.IOHandler {
  const { json, dir } = locate(path);
  return {
    async save(artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> {
      if (artifacts.modelTopology instanceof ArrayBuffer)
        throw new ModelFileError('fileSystem: binary model topologies are not supported (layers models save JSON)');
      const weights = joinWeights(artifacts.weightData);
      const modelJson: tf.io.ModelJSON = {
        modelTopology: artifacts.modelTopology ?? {},
        weightsManifest: [{ paths: [WEIGHTS_FILE], weights: artifacts.weightSpecs ?? [] }],
        ...(artifacts.format === undefined ? {} : { format: artifacts.format }),
        ...(artifacts.generatedBy === undefined ? {} : { generatedBy: artifacts.generatedBy }),
        ...(artifacts.convertedBy === undefined ? {} : { convertedBy: artifacts.convertedBy }),
        ...(artifacts.trainingConfig === undefined ? {} : { trainingConfig: artifacts.trainingConfig }),
        ...(artifacts.signature === undefined ? {} : { signature: artifacts.signature }),
        ...(artifacts.userDefinedMetadata === undefined ? {} : { userDefinedMetadata: artifacts.userDefinedMetadata }),
        ...(artifacts.modelInitializer === undefined ? {} : { modelInitializer: artifacts.modelInitializer }),
        ...(artifacts.initializerSignature === undefined
          ? {}
          : { initializerSignature: artifacts.initializerSignature }),
      };
      try {
        mkdirSync(dir, { recursive: true });
        writeFileSync(join(dir, WEIGHTS_FILE), weights);
        writeFileSync(json, JSON.stringify(modelJson));
      } catch (e) {
        throw new ModelFileError(`fileSystem: cannot save the model to ${json}: ${describe(e)}`);
      }
      const topologyBytes = Buffer.byteLength(JSON.stringify(modelJson.modelTopology));
      return {
        modelArtifactsInfo: {
          dateSaved: new Date(),
          modelTopologyType: 'JSON',
          modelTopologyBytes: topologyBytes,
          weightSpecsBytes: Buffer.byteLength(JSON.stringify(artifacts.weightSpecs ?? [])),
          weightDataBytes: weights.byteLength,
        },
      };
    },

    async load(): Promise<tf.io.ModelArtifacts> {
      let text: string;
      try {
        text = readFileSync(json, 'utf8');
      } catch (e) {
        throw new ModelFileError(`fileSystem: cannot read ${json}: ${describe(e)}`);
      }
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch (e) {
        throw new ModelFileError(`fileSystem: ${json} is not JSON: ${describe(e)}`);
      }
      const m = parsed as Partial<tf.io.ModelJSON> | null;
      if (typeof m !== 'object' || m === null || typeof m.modelTopology !== 'object' || m.modelTopology === null)
        throw new ModelFileError(`fileSystem: ${json} has no modelTopology: it is not a tfjs model.json`);
      const manifest = m.weightsManifest ?? [];
      if (!Array.isArray(manifest) || manifest.some((g) => !Array.isArray(g?.paths) || !Array.isArray(g?.weights)))
        throw new ModelFileError(`fileSystem: ${json}: weightsManifest must be a list of {paths, weights}`);
      const specs: tf.io.WeightsManifestEntry[] = [];
      const parts: Uint8Array[] = [];
      for (const group of manifest) {
        const bytes: Uint8Array[] = [];
        for (const p of group.paths) {
          const file = resolve(dir, String(p));
          if (typeof p !== 'string' || !file.startsWith(dir + sep) || basename(file) === '')
            throw new ModelFileError(`fileSystem: ${json}: weight file '${String(p)}' is outside the model's folder`);
          try {
            if (!statSync(file).isFile()) throw new Error('not a file');
            bytes.push(readFileSync(file));
          } catch (e) {
            throw new ModelFileError(`fileSystem: cannot read the weights ${file}: ${describe(e)}`);
          }
        }
        const size = bytes.reduce((n, b) => n + b.byteLength, 0);
        const expected = group.weights.reduce((n, w) => n + weightBytes(w), 0);
        if (Number.isFinite(expected) && size !== expected)
          throw new ModelFileError(
            `fileSystem: the weights of ${json} are ${size} bytes, but its manifest describes ${expected}`,
          );
        specs.push(...group.weights);
        parts.push(...bytes);
      }
      const weightData = concat(parts);
      return {
        modelTopology: m.modelTopology,
        weightSpecs: specs,
        weightData: weightData.buffer,
        ...(m.format === undefined ? {} : { format: m.format }),
        ...(m.generatedBy === undefined ? {} : { generatedBy: m.generatedBy }),
        ...(m.convertedBy === undefined ? {} : { convertedBy: m.convertedBy }),
        ...(m.trainingConfig === undefined ? {} : { trainingConfig: m.trainingConfig }),
        ...(m.signature === undefined ? {} : { signature: m.signature }),
        ...(m.userDefinedMetadata === undefined ? {} : { userDefinedMetadata: m.userDefinedMetadata }),
        ...(m.modelInitializer === undefined ? {} : { modelInitializer: m.modelInitializer }),
        ...(m.initializerSignature === undefined ? {} : { initializerSignature: m.initializerSignature }),
      };
    },
  };
}
