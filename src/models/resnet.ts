// ResNet34 body (He et al. 2015), laid out as torchvision's resnet34 so its pretrained
// weights load unchanged. Convolutions have no bias (a BatchNorm follows each one).
import * as tf from "@tensorflow/tfjs";
import { apply, batchNorm, conv, relu, scaled, type Sym } from "./common.ts";

/** Four stages of basic blocks: 3, 4, 6 and 3 blocks of 64, 128, 256 and 512 channels. */
export const RESNET34_STAGES: readonly { blocks: number; channels: number; stride: number }[] = [
  { blocks: 3, channels: 64, stride: 1 },
  { blocks: 4, channels: 128, stride: 2 },
  { blocks: 6, channels: 256, stride: 2 },
  { blocks: 3, channels: 512, stride: 2 },
];

/**
 * A basic block "body/layer{L}_{b}": 3x3 conv (stride s), BN, ReLU, 3x3 conv, BN, plus the
 * shortcut, then ReLU. When the shape changes the shortcut is a 1x1 conv (stride s) + BN,
 * torchvision's `downsample`.
 */
export function basicBlock(x: Sym, opts: { name: string; channels: number; stride: number }): Sym {
  const { name, channels, stride } = opts;
  let y = conv(x, { name: `${name}/conv1`, filters: channels, kernel: 3, stride, padding: 1, bias: false });
  y = apply(batchNorm(`${name}/bn1`), y);
  y = relu(y, `${name}/relu1`);
  y = conv(y, { name: `${name}/conv2`, filters: channels, kernel: 3, padding: 1, bias: false });
  y = apply(batchNorm(`${name}/bn2`), y);
  let shortcut = x;
  const inChannels = x.shape[x.shape.length - 1];
  if (stride !== 1 || inChannels !== channels) {
    shortcut = conv(x, { name: `${name}/downsample_conv`, filters: channels, kernel: 1, stride, padding: 0, bias: false });
    shortcut = apply(batchNorm(`${name}/downsample_bn`), shortcut);
  }
  const sum = apply(tf.layers.add({ name: `${name}/add` }), [y, shortcut]);
  return relu(sum, `${name}/relu2`);
}

/** One stage "layer{L}": the first block may halve the map, the others keep it. */
export function resnetBlock(x: Sym, stage: number, spec: { blocks: number; channels: number; stride: number }, width: number): Sym {
  for (let b = 0; b < spec.blocks; b++) {
    x = basicBlock(x, { name: `body/layer${stage}_${b}`, channels: scaled(spec.channels, width), stride: b === 0 ? spec.stride : 1 });
  }
  return x;
}

/** The stem (7x7/2 conv, BN, ReLU, 3x3/2 max-pool) and the four stages: S x S -> S/32 x S/32 x 512·width. */
export function resnet34Body(input: Sym, opts: { width: number }): Sym {
  let x = conv(input, { name: "body/conv1", filters: scaled(64, opts.width), kernel: 7, stride: 2, padding: 3, bias: false });
  x = apply(batchNorm("body/bn1"), x);
  x = relu(x, "body/relu1");
  // torchvision pads this max-pool with -inf; zeros do the same here because after the
  // ReLU every value is >= 0, so a padded zero never wins a window.
  x = apply(tf.layers.zeroPadding2d({ padding: 1, name: "body/pool1_pad" }), x);
  x = apply(tf.layers.maxPooling2d({ poolSize: 3, strides: 2, padding: "valid", name: "body/pool1" }), x);
  RESNET34_STAGES.forEach((spec, i) => {
    x = resnetBlock(x, i + 1, spec, opts.width);
  });
  return x;
}

/** Our layer name -> torchvision's module name ("body/layer2_0/downsample_bn" -> "layer2.0.downsample.1"). */
export function torchvisionResnetName(layerName: string): string | undefined {
  if (layerName === "body/conv1") return "conv1";
  if (layerName === "body/bn1") return "bn1";
  const m = /^body\/layer(\d)_(\d+)\/(conv1|bn1|conv2|bn2|downsample_conv|downsample_bn)$/.exec(layerName);
  if (!m) return undefined;
  const part = m[3] === "downsample_conv" ? "downsample.0" : m[3] === "downsample_bn" ? "downsample.1" : m[3];
  return `layer${m[1]}.${m[2]}.${part}`;
}
