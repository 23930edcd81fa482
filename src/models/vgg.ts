// VGG19 and VGG19-BN bodies (Simonyan & Zisserman 2014, configuration "E"), laid out as
// torchvision's `features` so its pretrained weights load unchanged.
import * as tf from "@tensorflow/tfjs";
import { apply, batchNorm, conv, relu, scaled, type Sym } from "./common.ts";

/**
 * The five stages of VGG19: each number is a 3x3 convolution with that many output channels,
 * and every stage ends with a 2x2 max-pool. torchvision writes the same thing as one list:
 * [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512 x4, "M", 512 x4, "M"].
 */
export const VGG19_STAGES: readonly (readonly number[])[] = [
  [64, 64],
  [128, 128],
  [256, 256, 256, 256],
  [512, 512, 512, 512],
  [512, 512, 512, 512],
];

export interface VggOptions {
  batchNorm: boolean;
  /** Width multiplier: 1 is the real network. */
  width: number;
}

/**
 * One stage: convolutions "body/conv{stage}_{i}" (each followed by "body/bn{stage}_{i}" for
 * VGG19-BN: conv, BN, ReLU as in torchvision's vgg19_bn), then the max-pool "body/pool{stage}".
 */
export function vggBlock(x: Sym, stage: number, channels: readonly number[], opts: VggOptions): Sym {
  channels.forEach((c, i) => {
    const id = `${stage}_${i + 1}`;
    x = conv(x, { name: `body/conv${id}`, filters: scaled(c, opts.width), kernel: 3, padding: 1, bias: true, relu: !opts.batchNorm });
    if (opts.batchNorm) {
      x = apply(batchNorm(`body/bn${id}`), x);
      x = relu(x, `body/relu${id}`);
    }
  });
  return apply(tf.layers.maxPooling2d({ poolSize: 2, strides: 2, padding: "valid", name: `body/pool${stage}` }), x);
}

/** The whole feature extractor: an image of S x S becomes a map of S/32 x S/32 x 512·width. */
export function vggBody(input: Sym, opts: VggOptions): Sym {
  let x = input;
  VGG19_STAGES.forEach((channels, i) => {
    x = vggBlock(x, i + 1, channels, opts);
  });
  return x;
}

/**
 * Where each layer sits in torchvision's `features` Sequential (the index in "features.N.weight"):
 * conv, [BN,] ReLU take one slot each, every max-pool one. Used by the weight loader.
 */
export function torchvisionFeatureIndex(batchNorm: boolean): Map<string, number> {
  const index = new Map<string, number>();
  let n = 0;
  VGG19_STAGES.forEach((channels, s) => {
    channels.forEach((_, i) => {
      const id = `${s + 1}_${i + 1}`;
      index.set(`body/conv${id}`, n);
      if (batchNorm) index.set(`body/bn${id}`, n + 1);
      n += batchNorm ? 3 : 2;
    });
    n += 1; // max-pool
  });
  return index;
}
