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
    const rng = makeRng(subSeed(this.seed, `step ${this.step}`));
    this.step += 1;
    // Keep a unit with probability 1 - rate and scale the kept ones by 1/(1 - rate), so the
    // expected activation is unchanged (inverted dropout, as in PyTorch and Keras).
    const scale = new Float32Array(x.size);
    for (let i = 0; i < scale.length; i++) scale[i] = rng() >= this.rate ? 1 / (1 - this.rate) : 0;
    return tf.tidy(() => x.mul(tf.tensor(scale, x.shape)));
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
