// Every convolution of VGG19 and ResNet34 at a given image size, as the shapes the kernels see,
// with how many times each shape occurs in the network. Derived from the same stage tables the
// models are built from (src/models/vgg.ts, resnet.ts), so the bench times what training runs.
import { RESNET34_STAGES, VGG19_STAGES } from "../src/models/index.ts";
import { scaled } from "../src/models/common.ts";

export type BenchModel = "vgg19" | "resnet34";
export const BENCH_MODELS: readonly BenchModel[] = ["vgg19", "resnet34"];

export interface ConvShape {
  model: BenchModel;
  /** The first layer with this shape, e.g. "conv3_2" or "layer2_0/downsample". */
  name: string;
  /** Every layer with this shape. */
  names: string[];
  /** Input height and width. */
  side: number;
  inC: number;
  outC: number;
  k: number;
  stride: number;
  /** How many convolutions of the model have exactly this shape. */
  count: number;
}

/** VGG19 at `size` px (channels times `width`): 16 convolutions, 9 distinct shapes. Each stage ends with a 2x2 max-pool. */
export function vgg19Convs(size: number, width = 1): ConvShape[] {
  const all: Layer[] = [];
  let inC = 3;
  let side = size;
  VGG19_STAGES.forEach((channels, s) => {
    channels.forEach((full, i) => {
      const outC = scaled(full, width);
      all.push({ model: "vgg19", name: `conv${s + 1}_${i + 1}`, side, inC, outC, k: 3, stride: 1 });
      inC = outC;
    });
    side = Math.max(1, Math.floor(side / 2));
  });
  return countDistinct(all);
}

/** ResNet34 at `size` px (channels times `width`): 36 convolutions (the 7x7 stem, 32 3x3 and 3 1x1 shortcuts), 10 distinct shapes. */
export function resnet34Convs(size: number, width = 1): ConvShape[] {
  const all: Layer[] = [{ model: "resnet34", name: "stem", side: size, inC: 3, outC: scaled(64, width), k: 7, stride: 2 }];
  let side = Math.ceil(Math.ceil(size / 2) / 2); // the stem's stride 2, then the 3x3/2 max-pool (padded)
  let inC = scaled(64, width);
  RESNET34_STAGES.forEach((stage, s) => {
    const channels = scaled(stage.channels, width);
    for (let b = 0; b < stage.blocks; b++) {
      const stride = b === 0 ? stage.stride : 1;
      const name = `layer${s + 1}_${b}`;
      const outSide = Math.ceil(side / stride);
      all.push({ model: "resnet34", name: `${name}/conv1`, side, inC, outC: channels, k: 3, stride });
      all.push({ model: "resnet34", name: `${name}/conv2`, side: outSide, inC: channels, outC: channels, k: 3, stride: 1 });
      if (stride !== 1 || inC !== channels) {
        all.push({ model: "resnet34", name: `${name}/downsample`, side, inC, outC: channels, k: 1, stride });
      }
      side = outSide;
      inC = channels;
    }
  });
  return countDistinct(all);
}

export function modelConvs(model: BenchModel, size: number, width = 1): ConvShape[] {
  return model === "vgg19" ? vgg19Convs(size, width) : resnet34Convs(size, width);
}

type Layer = Omit<ConvShape, "count" | "names">;

function countDistinct(all: Layer[]): ConvShape[] {
  const byKey = new Map<string, ConvShape>();
  for (const c of all) {
    const key = `${c.side}/${c.inC}/${c.outC}/${c.k}/${c.stride}`;
    const seen = byKey.get(key);
    if (seen) (seen.count++, seen.names.push(c.name));
    else byKey.set(key, { ...c, count: 1, names: [c.name] });
  }
  return [...byKey.values()];
}

/** Output height and width ('same' padding). */
export function outSide(c: Pick<ConvShape, "side" | "stride">): number {
  return Math.ceil(c.side / c.stride);
}

/** GFLOP (multiply-adds times two) of one convolution; the forward pass and both gradients cost the same. */
export function convGflop(c: ConvShape, batch: number): number {
  return (2 * batch * outSide(c) ** 2 * c.k * c.k * c.inC * c.outC) / 1e9;
}

/** "32x56x56x64 -> 128, 3x3/2" */
export function describeShape(c: ConvShape, batch: number): string {
  return `${batch}x${c.side}x${c.side}x${c.inC} -> ${c.outC}, ${c.k}x${c.k}/${c.stride}`;
}
