// Load torchvision's pretrained ImageNet weights (a .safetensors copy of a state_dict) into a
// model from buildModel(). PyTorch and tfjs store the same numbers in different layouts:
//   conv kernel   PyTorch [out, in, kh, kw]  ->  tfjs [kh, kw, in, out]
//   dense kernel  PyTorch [out, in]          ->  tfjs [in, out]
//   BatchNorm     weight, bias, running_mean, running_var -> gamma, beta, moving_mean, moving_variance
// and VGG's first classifier layer reads a flattened map: PyTorch flattens C,H,W, tfjs H,W,C,
// so the rows of that kernel are reordered too.
import * as tf from "@tensorflow/tfjs";
import { LOGITS_LAYER } from "./heads.ts";
import { torchvisionResnetName } from "./resnet.ts";
import { parseSafetensors, readSafetensors, toFloat32, type SafeTensor, type SafeTensors, type TensorToWrite } from "./safetensors.ts";
import { torchvisionFeatureIndex } from "./vgg.ts";

export type TorchvisionArch = "vgg19" | "vgg19_bn" | "resnet34";

export interface LoadReport {
  /** File tensors copied into the model. */
  loaded: string[];
  /** File tensors not used, and why. */
  skipped: { name: string; reason: string }[];
  /** Model weights the file did not provide: they keep their initial values. */
  missing: string[];
}

/** The PyTorch name of each tfjs weight slot. */
const TORCH_PARAM: Record<string, string> = {
  kernel: "weight",
  bias: "bias",
  gamma: "weight",
  beta: "bias",
  moving_mean: "running_mean",
  moving_variance: "running_var",
};

/** torchvision's module name for one of our layers ("body/conv1_2" -> "features.2" in vgg19), if it has one. */
export function torchvisionModuleName(layerName: string, arch: TorchvisionArch): string | undefined {
  if (arch === "resnet34") return layerName === LOGITS_LAYER ? "fc" : torchvisionResnetName(layerName);
  const classifier: Record<string, string> = { "head/fc1": "classifier.0", "head/fc2": "classifier.3", [LOGITS_LAYER]: "classifier.6" };
  if (classifier[layerName]) return classifier[layerName];
  const index = torchvisionFeatureIndex(arch === "vgg19_bn").get(layerName);
  return index === undefined ? undefined : `features.${index}`;
}

/**
 * timm's copies of the torchvision VGG weights (huggingface.co/timm/vgg19.tv_in1k) name the
 * classifier differently and store its dense layers as convolutions:
 *   pre_logits.fc1 [4096, 512, 7, 7] = classifier.0 [4096, 25088] (same bytes, C,H,W order)
 *   pre_logits.fc2 [4096, 4096, 1, 1] = classifier.3,   head.fc = classifier.6.
 * Here both spellings become torchvision's. ResNet names are the same in timm and torchvision.
 */
function withTorchvisionNames(file: SafeTensors): Map<string, { fileName: string; tensor: SafeTensor }> {
  const timm: [string, string][] = [
    ["pre_logits.fc1.", "classifier.0."],
    ["pre_logits.fc2.", "classifier.3."],
    ["head.fc.", "classifier.6."],
  ];
  const out = new Map<string, { fileName: string; tensor: SafeTensor }>();
  for (const [fileName, tensor] of file.tensors) {
    const rule = timm.find(([prefix]) => fileName.startsWith(prefix));
    if (!rule) {
      out.set(fileName, { fileName, tensor });
      continue;
    }
    const [out0, ...rest] = tensor.shape;
    const shape = rest.length > 1 ? [out0, rest.reduce((a, b) => a * b, 1)] : tensor.shape;
    out.set(rule[1] + fileName.slice(rule[0].length), { fileName, tensor: { ...tensor, shape } });
  }
  return out;
}

/** Which architecture a built model is, from its layer names. */
function archOf(model: tf.LayersModel): TorchvisionArch {
  const names = new Set(model.layers.map((l) => l.name));
  if (names.has("body/layer1_0/conv1")) return "resnet34";
  return names.has("body/bn1_1") ? "vgg19_bn" : "vgg19";
}

/** The shape PyTorch would store for a tfjs weight of this shape. */
function torchShape(layerType: string, shape: number[]): number[] {
  if (layerType === "Conv2D" && shape.length === 4) return [shape[3], shape[2], shape[0], shape[1]];
  if (layerType === "Dense" && shape.length === 2) return [shape[1], shape[0]];
  return shape;
}

// The reorderings, as plain loops over arrays. (tf.transpose on the cpu backend takes about a
// minute for VGG's 102M-weight dense layer; these take a couple of seconds.)

/** Write the [rows, cols] matrix at src[from...] transposed to out[to...], tile by tile so reads and writes stay in cache. */
function transposeInto(src: Float32Array, from: number, out: Float32Array, to: number, rows: number, cols: number): void {
  const tile = 64;
  for (let r0 = 0; r0 < rows; r0 += tile) {
    const r1 = Math.min(r0 + tile, rows);
    for (let c0 = 0; c0 < cols; c0 += tile) {
      const c1 = Math.min(c0 + tile, cols);
      for (let r = r0; r < r1; r++) for (let c = c0; c < c1; c++) out[to + c * rows + r] = src[from + r * cols + c];
    }
  }
}

/** [rows, cols] -> [cols, rows]. */
export function transpose2d(src: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(src.length);
  transposeInto(src, 0, out, 0, rows, cols);
  return out;
}

/** Each of `rows` consecutive [a, b] blocks becomes [b, a]. */
function transposeEachRow(src: Float32Array, rows: number, a: number, b: number): Float32Array {
  const out = new Float32Array(src.length);
  for (let r = 0; r < rows; r++) transposeInto(src, r * a * b, out, r * a * b, a, b);
  return out;
}

/** Conv kernel [O, I, KH, KW] -> [KH, KW, I, O]: per output [I, KH*KW] -> [KH*KW, I], then [O, rest] -> [rest, O]. */
export function oihwToHwio(src: Float32Array, [o, i, kh, kw]: number[]): Float32Array {
  return transpose2d(transposeEachRow(src, o, i, kh * kw), o, kh * kw * i);
}

/** Conv kernel [KH, KW, I, O] -> [O, I, KH, KW], the inverse of oihwToHwio. */
export function hwioToOihw(src: Float32Array, [kh, kw, i, o]: number[]): Float32Array {
  return transposeEachRow(transpose2d(src, kh * kw * i, o), o, kh * kw, i);
}

/**
 * The body's weights (every "body/" layer: convolutions and batch norms with their running
 * statistics) under torchvision's names and in PyTorch's layout, for writeSafetensors: a body
 * trained here loads back through loadTorchvisionWeights (TrainConfig.pretrained), and into PyTorch.
 */
export function torchvisionBodyTensors(model: tf.LayersModel): Record<string, TensorToWrite> {
  const arch = archOf(model);
  const out: Record<string, TensorToWrite> = {};
  for (const layer of model.layers) {
    const module = layer.name.startsWith("body/") ? torchvisionModuleName(layer.name, arch) : undefined;
    if (!module) continue;
    for (const weight of layer.weights) {
      const slot = weight.originalName.slice(layer.name.length + 1);
      const shape = weight.shape as number[];
      const values = weight.read().dataSync() as Float32Array;
      const isConv = layer.getClassName() === "Conv2D" && shape.length === 4;
      out[`${module}.${TORCH_PARAM[slot]}`] = { shape: torchShape(layer.getClassName(), shape), data: isConv ? hwioToOihw(values, shape) : values };
    }
  }
  return out;
}

/**
 * Dense kernel reading a flattened [H, W, C] map: PyTorch [out, C*H*W] (C,H,W order) ->
 * tfjs [H*W*C, out] (H,W,C order): per output [C, H*W] -> [H*W, C], then transpose.
 */
export function chwRowsToHwc(src: Float32Array, o: number, [h, w, c]: number[]): Float32Array {
  return transpose2d(transposeEachRow(src, o, c, h * w), o, h * w * c);
}

/** A PyTorch-layout array converted to the tfjs layout of the weight it goes into. */
function toTfjsLayout(values: Float32Array, layerType: string, torch: number[], tfjsShape: number[], flattenedMap?: number[]): tf.Tensor {
  let data: Float32Array;
  if (layerType === "Conv2D" && torch.length === 4) data = oihwToHwio(values, torch);
  else if (layerType === "Dense" && torch.length === 2) data = flattenedMap ? chwRowsToHwc(values, torch[0], flattenedMap) : transpose2d(values, torch[0], torch[1]);
  // Vectors go in unchanged. Copy them: tfjs would otherwise keep a view into the file's
  // buffer, and with it the whole file, alive for as long as the weight lives.
  else data = values.slice();
  return tf.tensor(data, tfjsShape);
}

function skipReason(name: string, fastaiHead: boolean): string {
  if (name.endsWith("num_batches_tracked")) return "PyTorch's BatchNorm step counter: tfjs has no use for it";
  if (fastaiHead && /^(classifier|fc)\./.test(name)) return "the model has the fastai head: torchvision's classifier is not used";
  return "no layer of this model corresponds to it";
}

/**
 * Copy torchvision weights into `model` (the body, and a classic head's layers when their
 * shapes fit; the last classifier layer is skipped when the class count differs).
 * `source` is a .safetensors path, its bytes, or a parsed file. A shape mismatch anywhere
 * else throws an error naming the tensor.
 */
export async function loadTorchvisionWeights(
  model: tf.LayersModel,
  source: string | Uint8Array | SafeTensors,
  opts: { arch: TorchvisionArch },
): Promise<LoadReport> {
  const built = archOf(model);
  if (built !== opts.arch) throw new Error(`the model is a ${built}, but weights for ${opts.arch} were given`);
  const file = typeof source === "string" ? await readSafetensors(source) : source instanceof Uint8Array ? parseSafetensors(source) : source;
  const tensors = withTorchvisionNames(file);
  const fastaiHead = model.layers.some((l) => l.name === "head/concat_pool");
  const flatten = model.layers.find((l) => l.name === "head/flatten");
  const flattenedMap = flatten ? ((flatten.input as tf.SymbolicTensor).shape.slice(1) as number[]) : undefined; // [H, W, C]

  const report: LoadReport = { loaded: [], skipped: [], missing: [] };
  const used = new Set<string>();
  for (const layer of model.layers) {
    const inHead = !layer.name.startsWith("body/");
    const module = fastaiHead && inHead ? undefined : torchvisionModuleName(layer.name, opts.arch);
    const type = layer.getClassName();
    for (const weight of layer.weights) {
      const slot = weight.originalName.slice(layer.name.length + 1);
      const torchName = module ? `${module}.${TORCH_PARAM[slot]}` : undefined;
      const entry = torchName ? tensors.get(torchName) : undefined;
      if (!torchName || !entry) {
        report.missing.push(weight.originalName);
        continue;
      }
      used.add(torchName);
      const expected = torchShape(type, weight.shape as number[]);
      const isFlattenedInput = layer.name === "head/fc1" && slot === "kernel" && flattenedMap !== undefined;
      const fileShape = entry.tensor.shape;
      if (fileShape.join() !== expected.join()) {
        if (layer.name === LOGITS_LAYER && fileShape[0] !== expected[0] && fileShape.slice(1).join() === expected.slice(1).join()) {
          const reason = `class count differs: the file has ${fileShape[0]} classes, the model ${expected[0]}`;
          report.skipped.push({ name: entry.fileName, reason });
          report.missing.push(weight.originalName);
          continue;
        }
        const hint = isFlattenedInput ? " (the classic head takes pretrained weights only at 224 px input, width 1)" : "";
        throw new Error(
          `${entry.fileName}: shape [${fileShape}] does not fit ${weight.originalName} (needs [${expected}] in PyTorch layout)${hint}`,
        );
      }
      const values = toFloat32(entry.tensor, entry.fileName);
      const converted = toTfjsLayout(values, type, expected, weight.shape as number[], isFlattenedInput ? flattenedMap : undefined);
      weight.write(converted);
      converted.dispose();
      report.loaded.push(entry.fileName);
    }
  }
  for (const [name, { fileName }] of tensors) {
    if (!used.has(name)) report.skipped.push({ name: fileName, reason: skipReason(name, fastaiHead) });
  }
  if (report.loaded.length === 0) throw new Error(`no tensor of this file fits a ${opts.arch} (is it a torchvision state_dict?)`);
  return report;
}
