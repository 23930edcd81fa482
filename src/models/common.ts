// Small building blocks shared by the VGG and ResNet bodies and the heads.
import * as tf from "@tensorflow/tfjs";
import { BatchNorm } from "./batchnorm.ts";

export type Sym = tf.SymbolicTensor;

/**
 * Scale a channel (or hidden unit) count by the width multiplier: width 1 is the real
 * network, width 1/8 turns 64 channels into 8. Rounded to the nearest integer, never below 1.
 */
export function scaled(count: number, width: number): number {
  return Math.max(1, Math.round(count * width));
}

/** Apply a layer to one symbolic tensor (tfjs's apply() is typed for every case at once). */
export function apply(layer: tf.layers.Layer, x: Sym | Sym[]): Sym {
  return layer.apply(x) as Sym;
}

/**
 * BatchNormalization with PyTorch's defaults: eps 1e-5 and momentum 0.1, which is
 * Keras momentum 0.9 (Keras keeps `momentum` of the old running value, PyTorch mixes in
 * `momentum` of the new batch value), and PyTorch's unbiased running variance (batchnorm.ts).
 */
export function batchNorm(name: string, opts: { momentum?: number } = {}): BatchNorm {
  return new BatchNorm({ momentum: opts.momentum ?? 0.9, epsilon: 1e-5, name });
}

/**
 * A convolution as torchvision builds it. Kernels start at zero here and are filled by
 * init.ts from the model's seed (tfjs's own random initialisers are too slow for VGG19).
 * `padding` is torchvision's symmetric padding; "same" is only used where it is
 * symmetric too (stride 1, odd kernel), otherwise we pad explicitly and convolve "valid".
 */
export function conv(
  x: Sym,
  opts: { name: string; filters: number; kernel: number; stride?: number; padding: number; bias: boolean; relu?: boolean },
): Sym {
  const stride = opts.stride ?? 1;
  const sameIsSymmetric = stride === 1 && opts.padding === (opts.kernel - 1) / 2;
  let padded = x;
  if (opts.padding > 0 && !sameIsSymmetric) {
    padded = apply(tf.layers.zeroPadding2d({ padding: opts.padding, name: `${opts.name}_pad` }), x);
  }
  const layer = tf.layers.conv2d({
    name: opts.name,
    filters: opts.filters,
    kernelSize: opts.kernel,
    strides: stride,
    padding: sameIsSymmetric && opts.padding > 0 ? "same" : "valid",
    useBias: opts.bias,
    // ReLU fused into the convolution where nothing sits between them (plain VGG): one pass less.
    activation: opts.relu ? "relu" : "linear",
    kernelInitializer: "zeros",
  });
  return apply(layer, padded);
}

export function relu(x: Sym, name: string): Sym {
  return apply(tf.layers.reLU({ name }), x);
}
