// A dropout layer whose masks can be replayed exactly.
//
// Why not tf.layers.dropout? Unseeded, it draws from Math.random, so a seeded run is not
// reproducible. Seeded, it uses the same seed on every call, so every training step drops
// the very same units. Here the mask of call number `step` comes from a generator seeded
// by (layer seed, step): different at every step, identical when a run is replayed. The
// layer counts its own calls; a trainer that resumes from a checkpoint (or wants to be
// robust to extra calls) sets the counter with setDropoutStep(model, globalStep).
import * as tf from "@tensorflow/tfjs";
import { makeRng, subSeed } from "../data/rng.ts";

export interface SeededDropoutArgs {
  rate: number;
  seed: number;
  name?: string;
}

/**
 * Which units a SeededDropout layer (seed, rate) keeps at training call `step`, for an input of
 * `size` values in row-major order: 1 for kept (probability 1 - rate), 0 for dropped. The layer
 * scales the kept units by 1/(1 - rate) (inverted dropout, as PyTorch and Keras do), so the
 * expected activation is unchanged. Exported so a replay elsewhere (bench/torch_twin.py
 * --steps-from) can drop the same units and apply its own scaling.
 */
export function dropoutKeep(o: { seed: number; rate: number; step: number; size: number }): Uint8Array {
  const rng = makeRng(subSeed(o.seed, `step ${o.step}`));
  const keep = new Uint8Array(o.size);
  for (let i = 0; i < keep.length; i++) keep[i] = rng() >= o.rate ? 1 : 0;
  return keep;
}

export class SeededDropout extends tf.layers.Layer {
  static className = "SeededDropout";
  readonly rate: number;
  readonly seed: number;
  /** Number of training calls so far; the next mask is drawn for this step. */
  step = 0;

  constructor(args: SeededDropoutArgs) {
    super({ name: args.name });
    this.rate = args.rate;
    this.seed = args.seed;
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: { [key: string]: any }): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    if (!kwargs["training"] || this.rate === 0) return x; // inference: identity
    const keep = this.keepAt(this.step, x.size);
    this.step += 1;
    const scale = new Float32Array(keep.length);
    for (let i = 0; i < keep.length; i++) scale[i] = keep[i] / (1 - this.rate);
    return tf.tidy(() => x.mul(tf.tensor(scale, x.shape)));
  }

  /** Which of an input's `size` values this layer keeps (1) or drops (0) at training call `step`. */
  keepAt(step: number, size: number): Uint8Array {
    return dropoutKeep({ seed: this.seed, rate: this.rate, step, size });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), rate: this.rate, seed: this.seed };
  }
}
tf.serialization.registerClass(SeededDropout);

/** Set the step counter of every SeededDropout layer in `model` (e.g. after resuming). */
export function setDropoutStep(model: tf.LayersModel, step: number): void {
  for (const layer of model.layers) if (layer instanceof SeededDropout) layer.step = step;
}

/** The step counter of the model's dropout layers (they advance together), or undefined if none. */
export function getDropoutStep(model: tf.LayersModel): number | undefined {
  const layer = model.layers.find((l): l is SeededDropout => l instanceof SeededDropout);
  return layer?.step;
}
