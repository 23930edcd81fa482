// Seeded initial weights, drawn the way torchvision (and fastai, for its head) draws them.
//
// Why not tfjs's initialisers with a seed? They draw every number through seedrandom and
// take about 12 s for VGG19's first dense layer alone. So layers are built with zero
// kernels and this module fills every kernel in one pass from our own seeded generator
// (src/data/rng.ts). Each weight gets its own seed, derived from the model seed and the
// weight's name, so the values do not depend on the order in which layers are built.
import * as tf from "@tensorflow/tfjs";
import { makeRng, subSeed } from "../data/rng.ts";
import { BatchNorm } from "./batchnorm.ts";

export type InitRule = { dist: "normal"; std: number } | { dist: "uniform"; limit: number };

/**
 * `n` normal numbers with mean 0: Marsaglia's polar method on a seeded uniform generator
 * (twice as fast as Box-Muller here: no sine or cosine).
 */
export function randomNormalArray(n: number, std: number, seed: number): Float32Array {
  const rng = makeRng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    // A uniform point in the unit disc (rejecting the corners of the square) gives two normals.
    let u: number, v: number, s: number;
    do {
      u = 2 * rng() - 1;
      v = 2 * rng() - 1;
      s = u * u + v * v;
    } while (s >= 1 || s === 0);
    const f = std * Math.sqrt((-2 * Math.log(s)) / s);
    out[i] = u * f;
    if (i + 1 < n) out[i + 1] = v * f;
  }
  return out;
}

/** `n` numbers uniform in [-limit, limit). */
export function randomUniformArray(n: number, limit: number, seed: number): Float32Array {
  const rng = makeRng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (2 * rng() - 1) * limit;
  return out;
}

/** Fan-in and fan-out of a tfjs kernel: conv HWIO [kh, kw, in, out] or dense [in, out]. */
export function fans(shape: number[]): { fanIn: number; fanOut: number } {
  const receptive = shape.slice(0, -2).reduce((a, b) => a * b, 1);
  return { fanIn: shape[shape.length - 2] * receptive, fanOut: shape[shape.length - 1] * receptive };
}

/**
 * The rule for one layer's kernel (biases stay 0; BatchNorm starts at gamma 1, beta 0, except as
 * in shiftInit below):
 * - every conv: kaiming_normal_(mode="fan_out", relu), std sqrt(2 / fan_out) (torchvision VGG and ResNet);
 * - dense layers of the fastai head: kaiming_normal_ (fan_in), std sqrt(2 / fan_in) (fastai's create_head);
 * - dense layers of VGG's classic head: normal(0, 0.01) (torchvision VGG);
 * - ResNet's classic fc: PyTorch's nn.Linear default, uniform(±1/sqrt(fan_in)).
 */
export function kernelRule(layer: tf.layers.Layer, shape: number[], model: { arch: string; head: string }): InitRule | undefined {
  const { fanIn, fanOut } = fans(shape);
  const type = layer.getClassName();
  if (type === "Conv2D") return { dist: "normal", std: Math.sqrt(2 / fanOut) };
  if (type !== "Dense") return undefined;
  if (model.head === "fastai") return { dist: "normal", std: Math.sqrt(2 / fanIn) };
  if (model.arch === "resnet34") return { dist: "uniform", limit: 1 / Math.sqrt(fanIn) };
  return { dist: "normal", std: 0.01 };
}

/**
 * The starting shift (beta) of a BatchNorm layer where it is not 0: fastai's BatchNorm() fills
 * bn.bias with 1e-3, and its head's BNs (head/bn1, head/bn2) are made by it. The body's BNs
 * (torchvision's) and final_bn (the paper's, a Keras BatchNormalization) start at 0.
 */
export function shiftInit(layer: tf.layers.Layer, model: { head: string }): number | undefined {
  if (model.head === "fastai" && layer instanceof BatchNorm && layer.name.startsWith("head/")) return 1e-3;
  return undefined;
}

/** Fill every kernel of `model` from `seed`, and the head's BN shifts, by the rules above. */
export function initWeights(model: tf.LayersModel, opts: { seed: number; arch: string; head: string }): void {
  for (const layer of model.layers) {
    for (const weight of layer.weights) {
      const shift = weight.originalName.endsWith("/beta") ? shiftInit(layer, opts) : undefined;
      if (shift !== undefined) {
        const t = tf.fill(weight.shape as number[], shift);
        weight.write(t);
        t.dispose();
        continue;
      }
      if (!weight.originalName.endsWith("/kernel")) continue;
      const shape = weight.shape as number[];
      const rule = kernelRule(layer, shape, opts);
      if (!rule) continue;
      const n = shape.reduce((a, b) => a * b, 1);
      const seed = subSeed(opts.seed, weight.originalName);
      const values = rule.dist === "normal" ? randomNormalArray(n, rule.std, seed) : randomUniformArray(n, rule.limit, seed);
      const t = tf.tensor(values, shape);
      weight.write(t); // the variable keeps the data; our handle can go
      t.dispose();
    }
  }
}
