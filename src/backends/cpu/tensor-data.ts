// What the cpu kernels need of tfjs's MathBackendCPU, in one place: a tensor's values and a
// new tensor from values.
import type * as tf from "@tensorflow/tfjs";

/** The part of tfjs's MathBackendCPU the kernels use. */
export interface CpuBackend {
  data: { get(dataId: object): { values?: unknown; refCount?: number } };
  makeTensorInfo(shape: number[], dtype: tf.DataType, values: Float32Array): tf.TensorInfo;
}

/** The tensor's values if they are a plain Float32Array (not complex, int or string). */
export function float32Values(backend: CpuBackend, t: tf.TensorInfo): Float32Array | undefined {
  if (t.dtype !== "float32") return undefined;
  const values = backend.data.get(t.dataId).values;
  return values instanceof Float32Array ? values : undefined;
}

/** float32Values for kernels of our own that are only called on float32 tensors: anything else is a bug. */
export function requireFloat32Values(backend: CpuBackend, t: tf.TensorInfo, kernel: string): Float32Array {
  const values = float32Values(backend, t);
  if (!values) throw new Error(`${kernel}: expected a float32 tensor, got ${t.dtype} [${t.shape}]`);
  return values;
}

/** The tensor's Float32Array if nothing but this tensor holds it (refCount 1: no clone, no other view). */
export function ownedValues(backend: CpuBackend, t: tf.TensorInfo): Float32Array | undefined {
  const data = backend.data.get(t.dataId);
  return data.refCount === 1 && data.values instanceof Float32Array ? data.values : undefined;
}
