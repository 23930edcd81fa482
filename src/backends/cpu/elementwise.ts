// Faster element-wise, reduction, Tile, MaxPoolGrad, Relu and Step kernels for tfjs's "cpu" backend.
//
// Once the convolutions are fast (cpu/conv.ts), a training step of a small VGG19-BN spends
// most of its time in batch norm's forward and backward pass: Multiply, Sub, Add, RealDiv with
// a per-channel operand ([1,1,1,C] against [N,H,W,C]), Sum and Mean over [0,1,2], Tile, plus
// the max pools' gradient. The stock kernels compute a multi-dimensional index per element,
// transpose before reducing and walk a TensorBuffer; these replacements are flat loops
// (broadcast.ts, reduce.ts, max-pool-grad.ts) that give bit-identical results.
//
// registerCpuElementwiseKernels() swaps them in; unregisterCpuElementwiseKernels() puts the
// stock kernels back. What they do not cover (other dtypes, other broadcast patterns, reductions
// over non-adjacent axes, Tile that is not whole copies) goes to the stock kernel.

import * as tf from "@tensorflow/tfjs";
import { type BinaryOpName, binaryOp, repeatWhole, rowBroadcast, wholeTileCount } from "./broadcast.ts";
import { maxPoolGrad } from "./max-pool-grad.ts";
import { maxBlock, meanBlock, type ReductionBlock, reductionBlock, sumBlock } from "./reduce.ts";
import { kernelSet } from "../kernel-set.ts";
import { relu, step } from "./unary.ts";
import { float32Values, type CpuBackend } from "./tensor-data.ts";

export const CPU_ELEMENTWISE_KERNEL_NAMES = [
  "Add",
  "Sub",
  "Multiply",
  "RealDiv",
  "Sum",
  "Mean",
  "Max",
  "Tile",
  "MaxPoolGrad",
  "Relu",
  "Step",
] as const;
export type CpuElementwiseKernelName = (typeof CPU_ELEMENTWISE_KERNEL_NAMES)[number];

type KernelArgs = Parameters<tf.KernelFunc>[0];
type KernelResult = tf.TensorInfo | tf.TensorInfo[];

const kernels = kernelSet("cpu", CPU_ELEMENTWISE_KERNEL_NAMES, () => OUR_KERNELS);

/** Replace the cpu backend's kernels listed in CPU_ELEMENTWISE_KERNEL_NAMES. Safe to call twice. */
export const registerCpuElementwiseKernels = (): void => kernels.register();
/** Put the stock tfjs cpu kernels back. */
export const unregisterCpuElementwiseKernels = (): void => kernels.unregister();
export const cpuElementwiseKernelsRegistered = (): boolean => kernels.registered();
/** Counts of fast-path and fallback calls per kernel: tells you whether training really ran fast. */
export const cpuElementwiseKernelCalls = () => kernels.calls();
/** The stock tfjs kernel function, whether or not ours are registered (for fallbacks, tests, benches). */
export const stockCpuElementwiseKernel = (name: CpuElementwiseKernelName): tf.KernelFunc => kernels.stock(name);
const fallback = kernels.fallback;

// ---------------------------------------------------------------- kernels

function binaryKernel(name: BinaryOpName): tf.KernelFunc {
  return (args) => {
    const backend = args.backend as CpuBackend;
    const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    const aValues = float32Values(backend, a);
    const bValues = float32Values(backend, b);
    const plan = aValues && bValues ? rowBroadcast(a.shape, b.shape) : undefined;
    if (!aValues || !bValues || !plan) return fallback(name, args);
    kernels.fast(name);
    return backend.makeTensorInfo(plan.outShape, "float32", binaryOp(name, aValues, bValues, plan));
  };
}

type Reducer = typeof sumBlock;

/** Sum, Mean and Max share everything but the loop and the name of their axis attribute. */
function reductionKernel(name: "Sum" | "Mean" | "Max", axisAttr: "axis" | "reductionIndices", reduce: Reducer): tf.KernelFunc {
  return (args) => {
    const backend = args.backend as CpuBackend;
    const { x } = args.inputs as { x: tf.TensorInfo };
    const attrs = args.attrs ?? {};
    const values = float32Values(backend, x);
    const block = values ? reductionBlockOf(x.shape, attrs[axisAttr], Boolean(attrs.keepDims)) : undefined;
    if (!values || !block) return fallback(name, args);
    kernels.fast(name);
    return backend.makeTensorInfo(block.outShape, "float32", reduce(values, block));
  };
}

function tileKernel(args: KernelArgs): KernelResult {
  const backend = args.backend as CpuBackend;
  const { x } = args.inputs as { x: tf.TensorInfo };
  const reps = (args.attrs?.reps ?? []) as number[];
  const values = float32Values(backend, x);
  const count = values ? wholeTileCount(x.shape, reps) : undefined;
  if (!values || count === undefined) return fallback("Tile", args);
  kernels.fast("Tile");
  const outShape = x.shape.map((d, i) => d * reps[i]);
  return backend.makeTensorInfo(outShape, "float32", repeatWhole(values, count));
}

function maxPoolGradKernel(args: KernelArgs): KernelResult {
  const backend = args.backend as CpuBackend;
  const { dy, input } = args.inputs as { dy: tf.TensorInfo; input: tf.TensorInfo };
  const attrs = args.attrs ?? {};
  const xValues = float32Values(backend, input);
  const dyValues = float32Values(backend, dy);
  if (!xValues || !dyValues || input.shape.length !== 4) return fallback("MaxPoolGrad", args);
  // The stock kernel's geometry, from the same attributes (dilation is always 1 for MaxPoolGrad).
  const info = tf.backend_util.computePool2DInfo(
    input.shape as [number, number, number, number],
    attrs.filterSize as number | [number, number],
    attrs.strides as number | [number, number],
    1,
    attrs.pad as "same" | "valid" | number | tf.backend_util.ExplicitPadding,
    attrs.dimRoundingMode as "floor" | "round" | "ceil" | undefined,
  );
  if (tf.util.sizeFromShape(info.outShape) !== dyValues.length) return fallback("MaxPoolGrad", args);
  kernels.fast("MaxPoolGrad");
  const dx = maxPoolGrad(xValues, dyValues, {
    batch: info.batchSize,
    inHeight: info.inHeight,
    inWidth: info.inWidth,
    channels: info.inChannels,
    outHeight: info.outHeight,
    outWidth: info.outWidth,
    filterHeight: info.filterHeight,
    filterWidth: info.filterWidth,
    strideHeight: info.strideHeight,
    strideWidth: info.strideWidth,
    padTop: info.padInfo.top,
    padLeft: info.padInfo.left,
  });
  return backend.makeTensorInfo(input.shape, "float32", dx);
}

/** Relu and Step on float32 (other dtypes: the stock kernel). */
function unaryKernel(name: "Relu" | "Step", loop: (x: Float32Array, attrs: tf.NamedAttrMap) => Float32Array): tf.KernelFunc {
  return (args) => {
    const backend = args.backend as CpuBackend;
    const { x } = args.inputs as { x: tf.TensorInfo };
    const values = float32Values(backend, x);
    if (!values) return fallback(name, args);
    kernels.fast(name);
    return backend.makeTensorInfo(x.shape, "float32", loop(values, args.attrs ?? {}));
  };
}

const OUR_KERNELS: Record<CpuElementwiseKernelName, tf.KernelFunc> = {
  Add: binaryKernel("Add"),
  Sub: binaryKernel("Sub"),
  Multiply: binaryKernel("Multiply"),
  RealDiv: binaryKernel("RealDiv"),
  Sum: reductionKernel("Sum", "axis", sumBlock),
  Mean: reductionKernel("Mean", "axis", meanBlock),
  Max: reductionKernel("Max", "reductionIndices", maxBlock),
  Tile: tileKernel,
  MaxPoolGrad: maxPoolGradKernel,
  Relu: unaryKernel("Relu", (x) => relu(x)),
  Step: unaryKernel("Step", (x, attrs) => step(x, attrs.alpha as number)),
};

// ---------------------------------------------------------------- helpers

/**
 * The reduction's [outer, reduce, inner] view, with tfjs's reading of the axis attribute (a
 * number, an array, negative counts from the end, absent means all axes). Axes out of order are
 * left to the stock kernel: it would add the terms in that order.
 */
function reductionBlockOf(shape: number[], axis: unknown, keepDims: boolean): ReductionBlock | undefined {
  let axes: number[];
  try {
    axes = tf.util.parseAxisParam(axis as number | number[], shape);
  } catch {
    return undefined; // let the stock kernel raise its own error
  }
  return reductionBlock(shape, axes, keepDims);
}
