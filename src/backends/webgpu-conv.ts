// A faster convolution filter gradient for tfjs's "webgpu" backend.
//
// tfjs 4.22's webgpu Conv2DBackpropFilter gives each filter weight one GPU thread that walks the
// whole batch alone: 0.01 to 1.4 TFLOP/s on an H200, three quarters of a VGG19 training step.
// Ours is a tiled implicit GEMM with split-K (webgpu-filter-grad.ts), run through the backend's
// own program machinery (runWebGPUProgram), so buffers, uniforms and the shader cache are tfjs's.
//
// registerWebGpuConvKernels() swaps it in for Conv2DBackpropFilter on the "webgpu" backend (call it
// after the backend is imported: src/backends/webgpu.ts does, in startWebGpu);
// unregisterWebGpuConvKernels() puts the stock kernel back. Cases it does not cover (NCHW,
// dilation > 1, non-float32 data) go to the stock kernel.

import * as tf from "@tensorflow/tfjs";
import {
  DEFAULT_BLOCK,
  DEFAULT_SPLIT,
  FilterGradGemmProgram,
  planFilterGrad,
  SumPartialsProgram,
  type FilterGradShape,
  type SplitOptions,
  type ThreadBlock,
  type Uniform,
  type WebGpuProgram,
} from "./webgpu-filter-grad.ts";
import { kernelSet } from "./kernel-set.ts";
import { convInfoIfSupported, geometryOf } from "./conv-geometry.ts";

export const WEBGPU_CONV_KERNEL_NAMES = ["Conv2DBackpropFilter"] as const;
export type WebGpuConvKernelName = (typeof WEBGPU_CONV_KERNEL_NAMES)[number];

type Shape4 = [number, number, number, number];
type KernelArgs = Parameters<tf.KernelFunc>[0];

/** The part of tfjs-backend-webgpu's WebGPUBackend these kernels use. */
interface WebGpuBackend {
  runWebGPUProgram(program: WebGpuProgram, inputs: tf.TensorInfo[], outputDtype: tf.DataType, uniforms?: Uniform[]): tf.TensorInfo;
  disposeData(dataId: object): boolean;
}

const kernels = kernelSet("webgpu", WEBGPU_CONV_KERNEL_NAMES, () => OUR_KERNELS);
let splitOptions: SplitOptions = DEFAULT_SPLIT;
let threadBlock: ThreadBlock = DEFAULT_BLOCK;

/** Counts of calls that took our path or fell back to the stock kernel since the process started. */
export const webGpuConvKernelCalls = () => kernels.calls();
/** Put the stock tfjs webgpu kernels back. */
export const unregisterWebGpuConvKernels = (): void => kernels.unregister();
export const webGpuConvKernelsRegistered = (): boolean => kernels.registered();
/** The stock tfjs webgpu kernel function, whether or not ours are registered. */
export const stockWebGpuConvKernel = (name: WebGpuConvKernelName): tf.KernelFunc => kernels.stock(name);

export interface WebGpuConvOptions {
  /** Split-K tuning (tests force several slices on small shapes with it). */
  split?: Partial<SplitOptions>;
  /** Register block per thread, e.g. { rowsPerThread: 8, colsPerThread: 8 } to try on a big GPU. */
  block?: ThreadBlock;
}

/** Replace the webgpu backend's Conv2DBackpropFilter with ours. Safe to call twice; options apply from then on. */
export function registerWebGpuConvKernels(options: WebGpuConvOptions = {}): void {
  const block = options.block ?? DEFAULT_BLOCK;
  const sizes = [4, 8]; // 4x4, 4x8, 8x4 and 8x8 pass the tests
  if (!sizes.includes(block.rowsPerThread) || !sizes.includes(block.colsPerThread)) {
    throw new Error(`rowsPerThread and colsPerThread must be 4 or 8, got ${block.rowsPerThread}x${block.colsPerThread}`);
  }
  splitOptions = { ...DEFAULT_SPLIT, ...options.split };
  threadBlock = block;
  kernels.register();
}

// ---------------------------------------------------------------- kernels

function conv2DBackpropFilterKernel(args: KernelArgs): tf.TensorInfo | tf.TensorInfo[] {
  const backend = args.backend as unknown as WebGpuBackend;
  const { x, dy } = args.inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const attrs = args.attrs ?? {};
  const filterShape = attrs.filterShape as Shape4;
  const info = convInfoIfSupported(x.shape as Shape4, filterShape, attrs);
  const shape = info && geometryOf(info);
  if (!shape || x.dtype !== "float32" || dy.dtype !== "float32") return kernels.fallback("Conv2DBackpropFilter", args);
  kernels.fast("Conv2DBackpropFilter");
  const plan = planFilterGrad(shape, splitOptions);
  const gemm = new FilterGradGemmProgram(plan, filterShape, threadBlock);
  const product = backend.runWebGPUProgram(gemm, [x, dy], "float32", FilterGradGemmProgram.uniformData(shape, plan));
  // One slice: the product is dW already, laid out as [kh, kw, ci, co]; give it that shape (the
  // same relabelling tfjs's own Reshape kernel does).
  if (plan.splits === 1) return { dataId: product.dataId, shape: filterShape, dtype: product.dtype };
  const sum = new SumPartialsProgram(filterShape);
  const dw = backend.runWebGPUProgram(sum, [product], "float32", SumPartialsProgram.uniformData(plan));
  backend.disposeData(product.dataId); // freed once the queued work is done
  return dw;
}

const OUR_KERNELS: Record<WebGpuConvKernelName, tf.KernelFunc> = {
  Conv2DBackpropFilter: conv2DBackpropFilterKernel,
};

// ---------------------------------------------------------------- helpers

