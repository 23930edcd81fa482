// Batch normalisation in training on the cpu backend (see batchnorm-kernel.ts): the forward pass in
// three passes over the activations (sum, squared deviations, write), each gradient in one or two,
// with per-channel sums in float64.
import * as tf from "@tensorflow/tfjs";
import { batchNormKernels, type BatchNormGradAttrs, type BatchNormTrainAttrs } from "../batchnorm-kernel.ts";
import { requireFloat32Values, type CpuBackend } from "./tensor-data.ts";

type KernelArgs = Parameters<tf.KernelFunc>[0];

const valuesOf = (cpu: CpuBackend, t: tf.TensorInfo) => requireFloat32Values(cpu, t, "batch norm");
const channelsOf = (t: tf.TensorInfo) => t.shape[t.shape.length - 1]!;

/** Per-channel sums of x (values laid out channels last, `channels` wide). */
function channelSums(x: Float32Array, channels: number): Float64Array {
  const sums = new Float64Array(channels);
  for (let i = 0; i < x.length; i += channels) {
    for (let c = 0; c < channels; c++) sums[c]! += x[i + c]!;
  }
  return sums;
}

/** y = (x - mean) / sqrt(variance + epsilon) * gamma + beta, with the batch's own mean and variance. */
function batchNormTrainCpu({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo[] {
  const cpu = backend as unknown as CpuBackend;
  const { x, gamma, beta } = inputs as Record<"x" | "gamma" | "beta", tf.TensorInfo>;
  const { epsilon } = attrs as unknown as BatchNormTrainAttrs;
  const [xs, g, b] = [valuesOf(cpu, x), valuesOf(cpu, gamma), valuesOf(cpu, beta)];
  const channels = channelsOf(x);
  const n = xs.length / channels;
  const mean = channelSums(xs, channels).map((s) => s / n);
  // The variance from deviations, not from E[x²] - E[x]²: no cancellation when the mean is large.
  const squares = new Float64Array(channels);
  for (let i = 0; i < xs.length; i += channels) {
    for (let c = 0; c < channels; c++) {
      const d = xs[i + c]! - mean[c]!;
      squares[c]! += d * d;
    }
  }
  const variance = squares.map((s) => s / n);
  const scale = new Float64Array(channels);
  const shift = new Float64Array(channels);
  for (let c = 0; c < channels; c++) {
    scale[c] = g[c]! / Math.sqrt(variance[c]! + epsilon);
    shift[c] = b[c]! - mean[c]! * scale[c]!;
  }
  const y = new Float32Array(xs.length);
  for (let i = 0; i < xs.length; i += channels) {
    for (let c = 0; c < channels; c++) y[i + c] = xs[i + c]! * scale[c]! + shift[c]!;
  }
  return [
    cpu.makeTensorInfo(x.shape, "float32", y),
    cpu.makeTensorInfo([channels], "float32", Float32Array.from(mean)),
    cpu.makeTensorInfo([channels], "float32", Float32Array.from(variance)),
  ];
}

/**
 * With x̂ = (x - mean) / sqrt(variance + epsilon) and n values per channel:
 *   dbeta = Σ dy,  dgamma = Σ dy·x̂,  dx = gamma / sqrt(variance + epsilon) · (dy - (dbeta + x̂·dgamma) / n)
 * (the last through the batch's mean and variance too, as the ops' gradient is).
 */
function batchNormGradCpu({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo {
  const cpu = backend as unknown as CpuBackend;
  const { dy, x, gamma, mean, variance } = inputs as Record<"dy" | "x" | "gamma" | "mean" | "variance", tf.TensorInfo>;
  const { epsilon, output } = attrs as unknown as BatchNormGradAttrs;
  const [dys, xs, g, mu, v] = [valuesOf(cpu, dy), valuesOf(cpu, x), valuesOf(cpu, gamma), valuesOf(cpu, mean), valuesOf(cpu, variance)];
  const channels = channelsOf(x);
  const n = xs.length / channels;
  const invStd = Float64Array.from(v, (vc) => 1 / Math.sqrt(vc + epsilon));
  const { sumDy, sumDyXhat } = gradientSums(dys, xs, mu, invStd, channels);
  if (output === 2) return cpu.makeTensorInfo([channels], "float32", Float32Array.from(sumDy));
  if (output === 1) return cpu.makeTensorInfo([channels], "float32", Float32Array.from(sumDyXhat));
  const dx = new Float32Array(xs.length);
  const meanDy = sumDy.map((s) => s / n);
  const meanDyXhat = sumDyXhat.map((s) => s / n);
  const gain = Float64Array.from(g, (gc, c) => gc * invStd[c]!);
  for (let i = 0; i < xs.length; i += channels) {
    for (let c = 0; c < channels; c++) {
      const xhat = (xs[i + c]! - mu[c]!) * invStd[c]!;
      dx[i + c] = gain[c]! * (dys[i + c]! - meanDy[c]! - xhat * meanDyXhat[c]!);
    }
  }
  return cpu.makeTensorInfo(x.shape, "float32", dx);
}

// The three gradients of one layer are three kernel calls on the same dy and x, one after another
// (batchnorm-kernel.ts says why): the sums all three need are kept from the first for the others.
let lastSums: { dy: Float32Array; x: Float32Array; mean: Float32Array; sumDy: Float64Array; sumDyXhat: Float64Array } | undefined;

/** Per channel, Σ dy and Σ dy·x̂. */
function gradientSums(dy: Float32Array, x: Float32Array, mean: Float32Array, invStd: Float64Array, channels: number) {
  // The same arrays: tfjs does not write into a tensor's values once it is made, so the sums hold.
  if (lastSums && lastSums.dy === dy && lastSums.x === x && lastSums.mean === mean) return lastSums;
  const sumDy = new Float64Array(channels);
  const sumDyXhat = new Float64Array(channels);
  for (let i = 0; i < x.length; i += channels) {
    for (let c = 0; c < channels; c++) {
      const d = dy[i + c]!;
      sumDy[c]! += d;
      sumDyXhat[c]! += d * (x[i + c]! - mean[c]!) * invStd[c]!;
    }
  }
  lastSums = { dy, x, mean, sumDy, sumDyXhat };
  return lastSums;
}

const kernels = batchNormKernels("cpu", batchNormTrainCpu as tf.KernelFunc, batchNormGradCpu as tf.KernelFunc);
/** Make batch norm's fused training kernels available on the cpu backend. Safe to call twice. */
export const registerCpuBatchNorm = (): void => kernels.register();
export const unregisterCpuBatchNorm = (): void => kernels.unregister();
