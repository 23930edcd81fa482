// AdamW's update of one parameter as a single cpu kernel: one pass over the weights instead of a
// dozen element-wise ops, each allocating and filling a whole new array. For VGG19 at full width
// (20M weights with the fastai head) those ops took about 1.4 s of a 2.1 s training step on one core.
//
// A kernel of our own name, not a replacement for a stock one (adamw-kernel.ts): src/train/adamw.ts
// calls it where the current backend has it, and otherwise runs the same formula as tfjs ops.
import * as tf from "@tensorflow/tfjs";
import { adamWKernel, type AdamWAttrs } from "./adamw-kernel.ts";

interface CpuBackend {
  readSync(dataId: object): unknown;
  data: { get(dataId: object): { values?: unknown; refCount?: number } };
  makeTensorInfo(shape: number[], dtype: tf.DataType, values: Float32Array): tf.TensorInfo;
}

/** new param, m, v from param, grad, m, v: the same formula as the op chain in adamw.ts. */
function adamWCpu({ inputs, backend, attrs }: Parameters<tf.KernelFunc>[0]): tf.TensorInfo[] {
  const cpu = backend as unknown as CpuBackend;
  const { param, grad, m, v } = inputs as Record<"param" | "grad" | "m" | "v", tf.TensorInfo>;
  const { lr, beta1, beta2, eps, c1, c2, decay } = attrs as unknown as AdamWAttrs;
  const read = (t: tf.TensorInfo) => cpu.readSync(t.dataId) as Float32Array;
  const [p0, g0, m0, v0] = [read(param), read(grad), read(m), read(v)];
  const n = p0.length;
  // m and v are the optimizer's own state and the gradient is used up (adamw-kernel.ts): where no
  // other tensor shares their memory, the new m and v go where the old ones were and the new param
  // where the gradient was. Fresh arrays cost more than the update itself: the system maps and
  // zeroes every page on first touch (80 MB an array at full width).
  const p1 = ownedValues(cpu, grad) ?? new Float32Array(n);
  const m1 = ownedValues(cpu, m) ?? new Float32Array(n);
  const v1 = ownedValues(cpu, v) ?? new Float32Array(n);
  const keep = 1 - lr * decay;
  // lr * (m / c1) / (sqrt(v / c2) + eps) with the constant factors taken out of the loop.
  const stepSize = lr / c1;
  const invSqrtC2 = 1 / Math.sqrt(c2);
  for (let i = 0; i < n; i++) {
    const g = g0[i]!;
    const mi = beta1 * m0[i]! + (1 - beta1) * g;
    const vi = beta2 * v0[i]! + (1 - beta2) * g * g;
    m1[i] = mi;
    v1[i] = vi;
    p1[i] = p0[i]! * keep - (stepSize * mi) / (Math.sqrt(vi) * invSqrtC2 + eps);
  }
  return [p1, m1, v1].map((values) => cpu.makeTensorInfo(param.shape, "float32", values));
}

/** The tensor's Float32Array if nothing but this tensor holds it (refCount 1: no clone, no other view). */
function ownedValues(cpu: CpuBackend, t: tf.TensorInfo): Float32Array | undefined {
  const data = cpu.data.get(t.dataId);
  return data.refCount === 1 && data.values instanceof Float32Array ? data.values : undefined;
}

const kernel = adamWKernel("cpu", adamWCpu as tf.KernelFunc);
/** Make the fused update available on the cpu backend. Safe to call twice. */
export const registerCpuAdamW = (): void => kernel.register();
export const unregisterCpuAdamW = (): void => kernel.unregister();
