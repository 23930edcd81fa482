// The model layer: one call builds VGG19, VGG19-BN or ResNet34 with a fastai or torchvision
// ("classic") head, optionally with the paper's final BatchNorm on the logits.
//
//   input -> body/* (features) -> head/* -> head/logits -> [final_bn] -> softmax
import * as tf from "@tensorflow/tfjs";
import { BatchNorm } from "./batchnorm.ts";
import { type Sym } from "./common.ts";
import { classProbabilities, fastaiHead, FINAL_BN_LAYER, LOGITS_LAYER, resnetClassicHead, SOFTMAX_LAYER, vggClassicHead } from "./heads.ts";
import { initWeights } from "./init.ts";
import { resnet34Body } from "./resnet.ts";
import { vggBody } from "./vgg.ts";

export { BatchNorm } from "./batchnorm.ts";
export { dropoutKeep, getDropoutStep, SeededDropout, setDropoutStep } from "./dropout.ts";
export { FINAL_BN_LAYER, LOGITS_LAYER, SOFTMAX_LAYER } from "./heads.ts";
export { RESNET34_STAGES } from "./resnet.ts";
export { loadTorchvisionWeights, torchvisionBodyTensors, type LoadReport, type TorchvisionArch } from "./torchvision.ts";
export { VGG19_STAGES } from "./vgg.ts";

export type Arch = "vgg19" | "vgg19_bn" | "resnet34";
export type Head = "fastai" | "classic";

export interface ModelConfig {
  arch: Arch;
  head: Head;
  /** A BatchNormalization over the logits right before the softmax (the paper's final BN). */
  finalBN: boolean;
  numClasses: number;
  /** Square input side in pixels; at least 32 (the bodies halve it five times). */
  inputSize: number;
  /** Channel multiplier: 1 is the real network, 1/8 a laptop-sized one. Default 1. */
  width?: number;
  /** Seed for initial weights and dropout masks. Default 0. */
  seed?: number;
}

function checkConfig(config: ModelConfig): void {
  const { arch, head, numClasses, inputSize, width = 1, seed = 0 } = config;
  if (!["vgg19", "vgg19_bn", "resnet34"].includes(arch)) throw new Error(`unknown arch "${arch}" (vgg19, vgg19_bn or resnet34)`);
  if (!["fastai", "classic"].includes(head)) throw new Error(`unknown head "${head}" (fastai or classic)`);
  if (!Number.isInteger(numClasses) || numClasses < 1) throw new Error(`numClasses must be a positive integer, got ${numClasses}`);
  if (!Number.isInteger(inputSize) || inputSize < 32) throw new Error(`inputSize must be an integer of at least 32, got ${inputSize}`);
  if (!(width > 0) || !Number.isFinite(width)) throw new Error(`width must be a positive number, got ${width}`);
  if (!Number.isInteger(seed)) throw new Error(`seed must be an integer, got ${seed}`);
}

/**
 * The model's layers with every kernel still at zero: instant, where drawing VGG19's 143M
 * random initial weights takes seconds. Enough to count parameters or look at shapes;
 * buildModel() is this plus seeded initial weights.
 */
export function buildArchitecture(config: ModelConfig): tf.LayersModel {
  checkConfig(config);
  const width = config.width ?? 1;
  const seed = config.seed ?? 0; // dropout masks
  const input = tf.input({ shape: [config.inputSize, config.inputSize, 3], name: "input" });
  const features =
    config.arch === "resnet34" ? resnet34Body(input, { width }) : vggBody(input, { width, batchNorm: config.arch === "vgg19_bn" });
  const headOptions = { numClasses: config.numClasses, width, seed };
  const logits =
    config.head === "fastai"
      ? fastaiHead(features, headOptions)
      : config.arch === "resnet34"
        ? resnetClassicHead(features, headOptions)
        : vggClassicHead(features, headOptions);
  const probabilities = classProbabilities(logits, { finalBN: config.finalBN });
  const name = `${config.arch}_${config.head}${config.finalBN ? "_finalbn" : ""}`;
  return tf.model({ inputs: input, outputs: probabilities, name });
}

/** Build a model that maps float32 NHWC images [batch, S, S, 3] to class probabilities. */
export function buildModel(config: ModelConfig): tf.LayersModel {
  const model = buildArchitecture(config);
  initWeights(model, { seed: config.seed ?? 0, arch: config.arch, head: config.head });
  return model;
}

/**
 * A second model over the same layers (and so the same weights) with other outputs.
 * It owns no weights, so its dispose() does nothing: dispose the original model only
 * (tfjs would otherwise free the shared weights under the original).
 */
function view(model: tf.LayersModel, outputs: Sym, name: string): tf.LayersModel {
  const derived = tf.model({ inputs: model.inputs, outputs, name: `${model.name}_${name}` });
  derived.dispose = () => ({ refCountAfterDispose: 0, numDisposedVariables: 0 });
  return derived;
}

/**
 * The same model with final_bn skipped: logits straight into a softmax. Shares the weights
 * (train one, both change). On a model without final_bn it is simply an equivalent view.
 */
export function removeFinalBN(model: tf.LayersModel): tf.LayersModel {
  const logits = model.getLayer(LOGITS_LAYER).output as Sym;
  const softmax = tf.layers.activation({ activation: "softmax", name: SOFTMAX_LAYER });
  return view(model, softmax.apply(logits) as Sym, "without_final_bn");
}

/**
 * The same model without its softmax: outputs what goes into the softmax (the logits, after
 * final_bn when there is one), e.g. for calibration plots. Shares the weights.
 */
export function logitsModel(model: tf.LayersModel): tf.LayersModel {
  return view(model, model.getLayer(SOFTMAX_LAYER).input as Sym, "logits");
}

/** Whether the model has the paper's final BatchNorm. */
export function hasFinalBN(model: tf.LayersModel): boolean {
  return model.layers.some((l) => l.name === FINAL_BN_LAYER);
}

export interface SummaryRow {
  name: string;
  type: string;
  /** e.g. "N×56×56×64" (N: batch). */
  outputShape: string;
  /** All weights, including BatchNorm's running statistics. */
  params: number;
  trainable: boolean;
}

/** One row per layer, for a table in a notebook. */
export function summarize(model: tf.LayersModel): SummaryRow[] {
  return model.layers.map((layer) => ({
    name: layer.name,
    type: layer.getClassName(),
    outputShape: (layer.outputShape as (number | null)[]).map((d) => d ?? "N").join("×"),
    params: layer.countParams(),
    trainable: layer.trainable,
  }));
}

/**
 * Trainable parameters, counted as torchvision counts parameters: BatchNorm's gamma and beta
 * are parameters, its running mean and variance are buffers (tfjs's countParams() counts them too).
 */
export function countTrainableParams(model: tf.LayersModel): number {
  return model.trainableWeights.reduce((sum, w) => sum + (w.shape as number[]).reduce((a, b) => a * b, 1), 0);
}

/**
 * Freeze (false) or unfreeze (true) the body, to train the head first and then everything,
 * as fastai does. Like fastai (train_bn=True), BatchNorm layers of a frozen body stay
 * trainable: their gamma and beta keep learning and, as tfjs always does in training mode,
 * they normalise with batch statistics and update their running statistics.
 * tfjs fixes the list of trained weights at compile(): recompile (or re-read
 * model.trainableWeights in a custom loop) after calling this.
 */
export function setBodyTrainable(model: tf.LayersModel, trainable: boolean): void {
  for (const layer of model.layers) {
    if (!layer.name.startsWith("body/")) continue;
    layer.trainable = layer instanceof BatchNorm ? true : trainable;
  }
}
