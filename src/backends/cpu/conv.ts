// Faster 2-D convolution kernels for tfjs's "cpu" backend.
//
// tfjs 4.22's stock cpu kernels loop over every output element one multiply at a time
// (the filter gradient even through TensorBuffer.get), which makes CNN training on a CPU
// hopeless: about 0.01 GFLOP/s for Conv2DBackpropFilter. These replacements turn each
// convolution into a cache-blocked matrix product over im2col bands (conv-gemm.ts, gemm.ts)
// whose inner loop is a small WebAssembly SIMD kernel (microkernel.ts): about 10-18 GFLOP/s
// on one core, 20x the stock forward pass and 1000x the stock filter gradient.
//
// registerCpuConvKernels() swaps them in for Conv2D, FusedConv2D (what tf.layers.conv2d
// dispatches outside of gradient recording), Conv2DBackpropInput and Conv2DBackpropFilter;
// unregisterCpuConvKernels() puts the stock kernels back. Cases they do not cover
// (NCHW, dilation > 1, non-float32 data, PReLU or odd bias shapes) go to the stock kernel.

import * as tf from "@tensorflow/tfjs";
import { conv2dFilterGrad, conv2dForward, conv2dInputGrad } from "./conv-gemm.ts";
import { convInfoIfSupported, geometryOf } from "../conv-geometry.ts";
import { kernelSet } from "../kernel-set.ts";
import { reluInPlace } from "./unary.ts";
import { float32Values, type CpuBackend } from "./tensor-data.ts";

export const CPU_CONV_KERNEL_NAMES = ["Conv2D", "FusedConv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter"] as const;
export type CpuConvKernelName = (typeof CPU_CONV_KERNEL_NAMES)[number];

type Shape4 = [number, number, number, number];
type KernelArgs = Parameters<tf.KernelFunc>[0];

const kernels = kernelSet("cpu", CPU_CONV_KERNEL_NAMES, () => OUR_KERNELS);

/** Replace the cpu backend's convolution kernels with the GEMM-based ones. Safe to call twice. */
export const registerCpuConvKernels = (): void => kernels.register();
/** Put the stock tfjs cpu kernels back. */
export const unregisterCpuConvKernels = (): void => kernels.unregister();
export const cpuConvKernelsRegistered = (): boolean => kernels.registered();
/** Counts of fast-path and fallback calls per kernel: tells you whether training really ran fast. */
export const cpuConvKernelCalls = () => kernels.calls();
/** The stock tfjs kernel function, whether or not ours are registered (for fallbacks, tests, benches). */
export const stockCpuConvKernel = (name: CpuConvKernelName): tf.KernelFunc => kernels.stock(name);
const fallback = kernels.fallback;

// ---------------------------------------------------------------- kernels

function conv2DKernel(args: KernelArgs): tf.TensorInfo | tf.TensorInfo[] {
  const backend = args.backend as CpuBackend;
  const { x, filter } = args.inputs as { x: tf.TensorInfo; filter: tf.TensorInfo };
  const attrs = args.attrs ?? {};
  const xValues = float32Values(backend, x);
  const wValues = float32Values(backend, filter);
  const info = convInfoIfSupported(x.shape as Shape4, filter.shape as Shape4, attrs);
  if (!xValues || !wValues || !info) return fallback("Conv2D", args);
  kernels.fast("Conv2D");
  const y = conv2dForward(xValues, wValues, geometryOf(info));
  return backend.makeTensorInfo(info.outShape, "float32", y);
}

function fusedConv2DKernel(args: KernelArgs): tf.TensorInfo | tf.TensorInfo[] {
  const backend = args.backend as CpuBackend;
  const { x, filter, bias } = args.inputs as { x: tf.TensorInfo; filter: tf.TensorInfo; bias?: tf.TensorInfo };
  const attrs = args.attrs ?? {};
  const activation = (attrs.activation as string | undefined) ?? "linear";
  const alpha = attrs.leakyreluAlpha as number | undefined;
  const xValues = float32Values(backend, x);
  const wValues = float32Values(backend, filter);
  const biasValues = bias ? float32Values(backend, bias) : undefined;
  const info = convInfoIfSupported(x.shape as Shape4, filter.shape as Shape4, attrs);
  const biasOk = !bias || (biasValues !== undefined && isChannelBias(bias.shape, info?.outChannels ?? -1));
  const activate = activationFunction(activation, alpha);
  if (!xValues || !wValues || !info || !biasOk || !activate) return fallback("FusedConv2D", args);
  kernels.fast("FusedConv2D");
  const y = conv2dForward(xValues, wValues, geometryOf(info));
  addBiasAndActivate(y, info.outChannels, biasValues, activate, activation);
  return backend.makeTensorInfo(info.outShape, "float32", y);
}

function conv2DBackpropInputKernel(args: KernelArgs): tf.TensorInfo | tf.TensorInfo[] {
  const backend = args.backend as CpuBackend;
  const { dy, filter } = args.inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
  const attrs = args.attrs ?? {};
  const dyValues = float32Values(backend, dy);
  const wValues = float32Values(backend, filter);
  const info = convInfoIfSupported(attrs.inputShape as Shape4, filter.shape as Shape4, attrs);
  if (!dyValues || !wValues || !info) return fallback("Conv2DBackpropInput", args);
  kernels.fast("Conv2DBackpropInput");
  const dx = conv2dInputGrad(dyValues, wValues, geometryOf(info));
  return backend.makeTensorInfo(info.inShape, "float32", dx);
}

function conv2DBackpropFilterKernel(args: KernelArgs): tf.TensorInfo | tf.TensorInfo[] {
  const backend = args.backend as CpuBackend;
  const { x, dy } = args.inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const attrs = args.attrs ?? {};
  const xValues = float32Values(backend, x);
  const dyValues = float32Values(backend, dy);
  const info = convInfoIfSupported(x.shape as Shape4, attrs.filterShape as Shape4, attrs);
  if (!xValues || !dyValues || !info) return fallback("Conv2DBackpropFilter", args);
  kernels.fast("Conv2DBackpropFilter");
  const dw = conv2dFilterGrad(xValues, dyValues, geometryOf(info));
  return backend.makeTensorInfo(info.filterShape, "float32", dw);
}

let kernelMs = 0;

/** Wall-clock milliseconds spent in our convolution kernels since the process started (the bench's share). */
export const cpuConvKernelMs = (): number => kernelMs;

function timed(kernel: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const start = performance.now();
    try {
      return kernel(args);
    } finally {
      kernelMs += performance.now() - start;
    }
  };
}

const OUR_KERNELS: Record<CpuConvKernelName, tf.KernelFunc> = {
  Conv2D: timed(conv2DKernel),
  FusedConv2D: timed(fusedConv2DKernel),
  Conv2DBackpropInput: timed(conv2DBackpropInputKernel),
  Conv2DBackpropFilter: timed(conv2DBackpropFilterKernel),
};

// ---------------------------------------------------------------- helpers

/** A bias we add per output channel: a scalar, [1] or [outChannels]. */
function isChannelBias(shape: number[], outChannels: number): boolean {
  const size = shape.reduce((a, b) => a * b, 1);
  return size === 1 ? shape.length <= 1 : shape.length === 1 && shape[0] === outChannels;
}

/** The same formulas as the stock cpu activation kernels; undefined for ones we do not fuse. */
function activationFunction(name: string, alpha: number | undefined): ((v: number) => number) | undefined {
  switch (name) {
    case "linear":
      return (v) => v;
    case "relu":
      return (v) => Math.max(0, v);
    case "relu6":
      return (v) => Math.min(Math.max(0, v), 6);
    case "elu":
      return (v) => (v >= 0 ? v : Math.exp(v) - 1);
    case "sigmoid":
      return (v) => 1 / (1 + Math.exp(-v));
    case "leakyrelu":
      return alpha === undefined ? undefined : (v) => (v < 0 ? alpha * v : v);
    default:
      return undefined; // prelu needs its weights tensor: stock kernel
  }
}

function addBiasAndActivate(
  y: Float32Array,
  channels: number,
  bias: Float32Array | undefined,
  activate: (v: number) => number,
  activation: string,
): void {
  if (activation === "relu") {
    // The common case (conv, bias, ReLU) in two flat passes, the ReLU without branches (unary.ts).
    if (bias?.length === 1) for (let i = 0; i < y.length; i++) y[i]! += bias[0]!;
    else if (bias) for (let i = 0; i < y.length; i += channels) for (let c = 0; c < channels; c++) y[i + c]! += bias[c]!;
    reluInPlace(y);
    return;
  }
  for (let i = 0; i < y.length; i += channels) {
    for (let c = 0; c < channels; c++) {
      // Round the sum to float32 first, as the stock Add kernel stores it before activating.
      const sum = bias ? Math.fround(y[i + c] + bias[bias.length === 1 ? 0 : c]) : y[i + c];
      y[i + c] = activate(sum);
    }
  }
}
