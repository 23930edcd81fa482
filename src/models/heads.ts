// Classifier heads on top of a body's feature map, and the model's last two layers:
// the optional final BatchNorm on the logits (the paper's idea) and the softmax.
import * as tf from "@tensorflow/tfjs";
import { subSeed } from "../data/rng.ts";
import { apply, batchNorm, scaled, type Sym } from "./common.ts";
import { SeededDropout } from "./dropout.ts";

/** Names the loader, removeFinalBN and the trainer rely on. */
export const LOGITS_LAYER = "head/logits";
export const FINAL_BN_LAYER = "final_bn";
export const SOFTMAX_LAYER = "softmax";

export interface HeadOptions {
  numClasses: number;
  width: number;
  seed: number;
}

function dense(x: Sym, units: number, name: string, opts: { activation?: "relu" | "linear"; bias?: boolean } = {}): Sym {
  const layer = tf.layers.dense({ units, activation: opts.activation ?? "linear", useBias: opts.bias ?? true, name, kernelInitializer: "zeros" });
  return apply(layer, x);
}

function dropout(x: Sym, rate: number, name: string, seed: number): Sym {
  return apply(new SeededDropout({ rate, seed: subSeed(seed, name), name }), x);
}

/**
 * fastai's head (create_head): AdaptiveConcatPool2d (global max pool, then global average
 * pool, concatenated; already flat in NHWC), BN, dropout 0.25, dense 512 + ReLU, BN,
 * dropout 0.5, dense to the classes. The 512 hidden units scale with the width multiplier.
 * Each dense layer follows a BN and so has no bias, as in fastai's LinBnDrop
 * (Linear(bias=not bn)); the BNs start with shift 1e-3 (init.ts).
 */
export function fastaiHead(features: Sym, opts: HeadOptions): Sym {
  const max = apply(tf.layers.globalMaxPooling2d({ name: "head/max_pool" }), features);
  const avg = apply(tf.layers.globalAveragePooling2d({ name: "head/avg_pool" }), features);
  let x = apply(tf.layers.concatenate({ axis: -1, name: "head/concat_pool" }), [max, avg]);
  x = apply(batchNorm("head/bn1"), x);
  x = dropout(x, 0.25, "head/dropout1", opts.seed);
  x = dense(x, scaled(512, opts.width), "head/fc1", { activation: "relu", bias: false });
  x = apply(batchNorm("head/bn2"), x);
  x = dropout(x, 0.5, "head/dropout2", opts.seed);
  return dense(x, opts.numClasses, LOGITS_LAYER, { bias: false });
}

/**
 * torchvision's VGG classifier: flatten, dense 4096 + ReLU, dropout 0.5, dense 4096 + ReLU,
 * dropout 0.5, dense to the classes (4096 scales with the width multiplier).
 * torchvision first average-pools the map to 7x7; at 224 px it already is 7x7, so we skip
 * that and flatten whatever map there is (1x1 at 32 px). Pretrained weights for the first
 * dense layer therefore only fit at 224 px.
 */
export function vggClassicHead(features: Sym, opts: HeadOptions): Sym {
  let x = apply(tf.layers.flatten({ name: "head/flatten" }), features);
  x = dense(x, scaled(4096, opts.width), "head/fc1", { activation: "relu" });
  x = dropout(x, 0.5, "head/dropout1", opts.seed);
  x = dense(x, scaled(4096, opts.width), "head/fc2", { activation: "relu" });
  x = dropout(x, 0.5, "head/dropout2", opts.seed);
  return dense(x, opts.numClasses, LOGITS_LAYER);
}

/** torchvision's ResNet head: global average pool, then one dense layer (`fc`). */
export function resnetClassicHead(features: Sym, opts: HeadOptions): Sym {
  const x = apply(tf.layers.globalAveragePooling2d({ name: "head/avg_pool" }), features);
  return dense(x, opts.numClasses, LOGITS_LAYER);
}

/**
 * Logits to probabilities. With `finalBN` the logits first pass a BatchNormalization over the
 * classes ("final_bn": Keras momentum 0.99 = PyTorch 0.01, eps 1e-5). The softmax is a layer
 * of its own so removeFinalBN() can wire the logits straight into a softmax.
 */
export function classProbabilities(logits: Sym, opts: { finalBN: boolean }): Sym {
  let x = logits;
  if (opts.finalBN) x = apply(batchNorm(FINAL_BN_LAYER, { momentum: 0.99 }), x);
  return apply(tf.layers.activation({ activation: "softmax", name: SOFTMAX_LAYER }), x);
}
