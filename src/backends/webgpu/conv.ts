// Faster convolution kernels for tfjs's "webgpu" backend.
//
// tfjs 4.22's webgpu Conv2DBackpropFilter gives each filter weight one GPU thread that walks the
// whole batch alone: 0.01 to 1.4 TFLOP/s on an H200, three quarters of a VGG19 training step.
// Ours are tiled implicit GEMMs (webgpu/conv-gemm.ts; split-K for the filter gradient,
// webgpu/split-k.ts) for Conv2D, FusedConv2D (bias and relu/linear fused into the write-out),
// Conv2DBackpropInput and Conv2DBackpropFilter, run through the backend's own program machinery
// (runWebGPUProgram), so buffers, uniforms and the shader cache are tfjs's.
//
// registerWebGpuConvKernels() swaps ours in on the "webgpu" backend (call it after the backend is
// imported: src/backends/webgpu/backend.ts does, in startWebGpu): by default only those that beat the
// stock kernels on lavapipe (DEFAULT_WEBGPU_CONV_KERNELS), or the set given in `kernels`.
// unregisterWebGpuConvKernels() puts the stock kernels back. Cases ours do not cover (NCHW,
// dilation > 1, non-float32 data, activations other than relu and linear, PReLU, biases not of
// shape [outChannels]) go to the stock kernel.

import * as tf from "@tensorflow/tfjs";
import {
  ConvGemmProgram,
  planGemm,
  TILE_M,
  type ChannelsBy4,
  type ConvGemmKind,
  type Epilogue,
  type GemmPlan,
  type SplitOptions,
  type ThreadBlock,
  type Uniform,
  type WebGpuProgram,
} from "./conv-gemm.ts";
import { DEFAULT_SPLIT, planFilterGrad, SumPartialsProgram } from "./split-k.ts";
import { kernelSet } from "../kernel-set.ts";
import { convInfoIfSupported, geometryOf, type ConvGeometry } from "../conv-geometry.ts";

export const WEBGPU_CONV_KERNEL_NAMES = ["Conv2D", "FusedConv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter"] as const;
export type WebGpuConvKernelName = (typeof WEBGPU_CONV_KERNEL_NAMES)[number];

// Which of ours registerWebGpuConvKernels() swaps in without a `kernels` option: all four, as each
// was at least as fast as stock on lavapipe at VGG19 shapes (32x32 input, batch 2, 3x3 "same";
// median of 7 alternating rounds of 3 calls, wall clock on a shared 2-core machine), ms stock -> ours:
//   layer (size, in -> out)  Conv2D       FusedConv2D (bias, relu)  Conv2DBackpropInput
//   32, 3 -> 64              5.7 -> 2.1   6.3 -> 2.3                10.1 -> 10.9 (stock: 3 columns, see stockIsFaster)
//   32, 64 -> 64             40 -> 27     40 -> 28                  40 -> 28
//   16, 128 -> 128           41 -> 27     41 -> 27                  43 -> 30
//   8, 256 -> 256            39 -> 27     39 -> 27                  40 -> 30
//   4, 512 -> 512            81 -> 46     77 -> 45                  48 -> 40
// A whole VGG19 training step there (filter gradient ours in both): 2.8 s -> 2.5 s (vgg19), 3.0 s ->
// 2.7 s (vgg19_bn). The filter gradient is ours regardless: 0.01-1.4 TFLOP/s stock on an H200.
export const DEFAULT_WEBGPU_CONV_KERNELS: readonly WebGpuConvKernelName[] = WEBGPU_CONV_KERNEL_NAMES;

// When the stock kernel is faster (measured on lavapipe at 32x32, batch 2; ms, stock vs ours), and
// the call goes there unless the options ask for `everyShape`:
//  - a product at most 32 columns wide fills at most half of a 64-wide tile, and ours then costs
//    about what it costs for 64 while stock gets cheaper: forward 64->16 20 vs 26, 64->32 19 vs 25,
//    64->48 38 vs 25; input gradient to 3 channels 9 vs 26, to 16 11 vs 27, to 32 20 vs 27. In VGG and
//    ResNet only the gradient of the 3-channel image is that narrow (which training with linear,
//    fused convolutions computes although nothing uses it);
//  - a strided input gradient: only one filter tap in stride² lands on a given input pixel, so our
//    reduction over every tap mostly multiplies zeros (stock 1.7-5x faster on all of ResNet34's);
//  - an input gradient with fewer input pixels than a tile has rows (the last stages at 32 px):
//    ours 2.5-9x slower, with or without split-K.
const MIN_COLUMNS = 33;

/** Whether the stock kernel should take this case (see above). */
function stockIsFaster(kind: "forward" | "inputGrad", info: tf.backend_util.Conv2DInfo): boolean {
  if (everyShape) return false;
  const narrow = (kind === "forward" ? info.outChannels : info.inChannels) < MIN_COLUMNS;
  if (kind === "forward") return narrow;
  const strided = info.strideHeight > 1 || info.strideWidth > 1;
  const fewRows = info.batchSize * info.inHeight * info.inWidth < TILE_M;
  return narrow || strided || fewRows;
}

type Shape4 = [number, number, number, number];
type KernelArgs = Parameters<tf.KernelFunc>[0];

/** The part of tfjs-backend-webgpu's WebGPUBackend these kernels use. */
interface WebGpuBackend {
  runWebGPUProgram(program: WebGpuProgram, inputs: tf.TensorInfo[], outputDtype: tf.DataType, uniforms?: Uniform[]): tf.TensorInfo;
  disposeData(dataId: object): boolean;
}

const kernels = kernelSet("webgpu", WEBGPU_CONV_KERNEL_NAMES, () => OUR_KERNELS);
let splitOptions: SplitOptions = DEFAULT_SPLIT;
let threadBlock: ThreadBlock | undefined; // undefined: each kind's default (DEFAULT_BLOCKS)
let everyShape = false;

/** Counts of calls that took our path or fell back to the stock kernel since the process started. */
export const webGpuConvKernelCalls = () => kernels.calls();
/** Put the stock tfjs webgpu kernels back. */
export const unregisterWebGpuConvKernels = (): void => kernels.unregister();
/** Whether any of ours is registered. */
export const webGpuConvKernelsRegistered = (): boolean => kernels.registered();
/** The kernels whose registered implementation is ours right now. */
export const activeWebGpuConvKernels = (): WebGpuConvKernelName[] => kernels.active();
/** The stock tfjs webgpu kernel function, whether or not ours are registered. */
export const stockWebGpuConvKernel = (name: WebGpuConvKernelName): tf.KernelFunc => kernels.stock(name);

export interface WebGpuConvOptions {
  /** Split-K tuning (tests force several slices on small shapes with it). */
  split?: Partial<SplitOptions>;
  /** Register block per thread for all our kernels, e.g. { rowsPerThread: 8, colsPerThread: 8 }; DEFAULT_BLOCKS if absent. */
  block?: ThreadBlock;
  /** Run ours on every shape it can compute, even where stock is faster (stockIsFaster): tests do. */
  everyShape?: boolean;
  /** Which of ours to register (the others get the stock kernel); DEFAULT_WEBGPU_CONV_KERNELS if absent. */
  kernels?: readonly WebGpuConvKernelName[];
}

/** Replace the webgpu backend's convolution kernels with ours. Safe to call twice; options apply from then on. */
export function registerWebGpuConvKernels(options: WebGpuConvOptions = {}): void {
  const block = options.block;
  const sizes = [4, 8]; // 4x4, 4x8, 8x4 and 8x8 pass the tests
  if (block && (!sizes.includes(block.rowsPerThread) || !sizes.includes(block.colsPerThread))) {
    throw new Error(`rowsPerThread and colsPerThread must be 4 or 8, got ${block.rowsPerThread}x${block.colsPerThread}`);
  }
  splitOptions = { ...DEFAULT_SPLIT, ...options.split };
  threadBlock = block;
  everyShape = options.everyShape ?? false;
  kernels.register(options.kernels ?? DEFAULT_WEBGPU_CONV_KERNELS);
}

// ---------------------------------------------------------------- kernels

function conv2DKernel(args: KernelArgs): tf.TensorInfo | tf.TensorInfo[] {
  return forward("Conv2D", args);
}

function fusedConv2DKernel(args: KernelArgs): tf.TensorInfo | tf.TensorInfo[] {
  return forward("FusedConv2D", args);
}

function forward(name: "Conv2D" | "FusedConv2D", args: KernelArgs): tf.TensorInfo | tf.TensorInfo[] {
  const { x, filter, bias, preluActivationWeights } = args.inputs as Record<string, tf.TensorInfo | undefined>;
  const attrs = args.attrs ?? {};
  const info = convInfoIfSupported(x!.shape as Shape4, filter!.shape as Shape4, attrs);
  const epilogue = name === "FusedConv2D" ? fusedEpilogue(attrs, bias, preluActivationWeights, info?.outChannels) : undefined;
  if (!info || stockIsFaster("forward", info) || (name === "FusedConv2D" && !epilogue) || !allFloat32(x, filter, bias)) {
    return kernels.fallback(name, args);
  }
  kernels.fast(name);
  const inputs = bias ? [x!, filter!, bias] : [x!, filter!];
  const shape = geometryOf(info);
  return runGemm("forward", args.backend, shape, inputs, info.outShape, { plan: planGemm("forward", shape), epilogue });
}

function conv2DBackpropInputKernel(args: KernelArgs): tf.TensorInfo | tf.TensorInfo[] {
  const { dy, filter } = args.inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
  const attrs = args.attrs ?? {};
  const info = convInfoIfSupported(attrs.inputShape as Shape4, filter.shape as Shape4, attrs);
  if (!info || stockIsFaster("inputGrad", info) || !allFloat32(dy, filter)) return kernels.fallback("Conv2DBackpropInput", args);
  kernels.fast("Conv2DBackpropInput");
  const shape = geometryOf(info);
  return runGemm("inputGrad", args.backend, shape, [dy, filter], info.inShape, { plan: planGemm("inputGrad", shape, splitOptions) });
}

function conv2DBackpropFilterKernel(args: KernelArgs): tf.TensorInfo | tf.TensorInfo[] {
  const { x, dy } = args.inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const attrs = args.attrs ?? {};
  const filterShape = attrs.filterShape as Shape4;
  const info = convInfoIfSupported(x.shape as Shape4, filterShape, attrs);
  if (!info || !allFloat32(x, dy)) return kernels.fallback("Conv2DBackpropFilter", args);
  kernels.fast("Conv2DBackpropFilter");
  const shape = geometryOf(info);
  return runGemm("filterGrad", args.backend, shape, [x, dy], filterShape, { plan: planFilterGrad(shape, splitOptions) });
}

const OUR_KERNELS: Record<WebGpuConvKernelName, tf.KernelFunc> = {
  Conv2D: conv2DKernel,
  FusedConv2D: fusedConv2DKernel,
  Conv2DBackpropInput: conv2DBackpropInputKernel,
  Conv2DBackpropFilter: conv2DBackpropFilterKernel,
};

// ---------------------------------------------------------------- helpers

/**
 * One GEMM of the given kind, its [M, N] result relabelled as `outShape` (M*N values in that layout).
 * With split-K (a long K over few tiles: the filter gradient of early layers, the input gradient of
 * late ones) each slice writes a partial C, and SumPartialsProgram adds them up into `outShape`.
 */
function runGemm(
  kind: ConvGemmKind,
  backendArg: KernelArgs["backend"],
  shape: ConvGeometry,
  inputs: tf.TensorInfo[],
  outShape: number[],
  { plan, epilogue }: { plan: GemmPlan; epilogue?: Epilogue },
): tf.TensorInfo {
  const backend = backendArg as unknown as WebGpuBackend;
  const program = new ConvGemmProgram(kind, plan, { by4: channelsBy4(shape), block: threadBlock, epilogue });
  const out = backend.runWebGPUProgram(program, inputs.map(flat), "float32", ConvGemmProgram.uniformData(shape, plan));
  // One slice: C itself, given its shape (the same relabelling tfjs's own Reshape kernel does).
  if (plan.splits === 1) return { dataId: out.dataId, shape: outShape, dtype: out.dtype };
  const sum = backend.runWebGPUProgram(new SumPartialsProgram(outShape), [out], "float32", SumPartialsProgram.uniformData(plan));
  backend.disposeData(out.dataId); // freed once the queued work is done
  return sum;
}

/**
 * The tensor seen as a flat array: the shader indexes it itself, and tfjs's shader key (which
 * includes input ranks and broadcast patterns) then stays the same for every convolution shape.
 */
function flat(t: tf.TensorInfo): tf.TensorInfo {
  return { dataId: t.dataId, shape: [t.shape.reduce((a, b) => a * b, 1)], dtype: t.dtype };
}

function channelsBy4(shape: ConvGeometry): ChannelsBy4 {
  return { in: shape.inChannels % 4 === 0, out: shape.outChannels % 4 === 0 };
}

function allFloat32(...tensors: (tf.TensorInfo | undefined)[]): boolean {
  return tensors.every((t) => t === undefined || t.dtype === "float32");
}

/** The bias and activation we fuse, or undefined for what goes to the stock kernel. */
function fusedEpilogue(
  attrs: tf.NamedAttrMap,
  bias: tf.TensorInfo | undefined,
  preluWeights: tf.TensorInfo | undefined,
  outChannels: number | undefined,
): Epilogue | undefined {
  const activation = (attrs.activation as string | null | undefined) ?? "linear";
  if (preluWeights || (activation !== "linear" && activation !== "relu")) return undefined;
  if (bias && !(bias.shape.length === 1 && bias.shape[0] === outChannels)) return undefined;
  return { bias: bias !== undefined, activation };
}
