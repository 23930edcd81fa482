// Matrix products (tfjs's BatchMatMul: dense layers and their gradients) on the cpu backend through
// the same blocked gemm as the convolutions (gemm.ts), instead of the stock kernel's plain loops:
// the fastai head's products took 5% of a VGG19 step at batch 32.
//
// registerCpuMatMulKernels() swaps it in. Cases it does not cover (other dtypes, batch dimensions
// that broadcast other than all-or-one) go to the stock kernel. Sums run in gemm's order, not the
// stock kernel's: results agree with it to float32 rounding (the tests hold them to 1e-5).
import * as tf from "@tensorflow/tfjs";
import { gemm } from "./gemm.ts";
import { kernelSet } from "../kernel-set.ts";
import { float32Values, type CpuBackend } from "./tensor-data.ts";

export const CPU_MATMUL_KERNEL_NAMES = ["BatchMatMul"] as const;
export type CpuMatMulKernelName = (typeof CPU_MATMUL_KERNEL_NAMES)[number];

const kernels = kernelSet("cpu", CPU_MATMUL_KERNEL_NAMES, () => OUR_KERNELS);

export const registerCpuMatMulKernels = (): void => kernels.register();
export const unregisterCpuMatMulKernels = (): void => kernels.unregister();
export const cpuMatMulKernelCalls = () => kernels.calls();
export const stockCpuMatMulKernel = (name: CpuMatMulKernelName): tf.KernelFunc => kernels.stock(name);

const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

function batchMatMulKernel(args: Parameters<tf.KernelFunc>[0]): tf.TensorInfo | tf.TensorInfo[] {
  const backend = args.backend as CpuBackend;
  const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
  const transposeA = Boolean(args.attrs?.transposeA);
  const transposeB = Boolean(args.attrs?.transposeB);
  const aValues = float32Values(backend, a);
  const bValues = float32Values(backend, b);
  if (!aValues || !bValues || a.shape.length < 2 || b.shape.length !== a.shape.length) {
    return kernels.fallback("BatchMatMul", args);
  }
  const [aRows, aCols] = a.shape.slice(-2) as [number, number];
  const [bRows, bCols] = b.shape.slice(-2) as [number, number];
  const [m, k] = transposeA ? [aCols, aRows] : [aRows, aCols];
  const [kB, n] = transposeB ? [bCols, bRows] : [bRows, bCols];
  const aLead = a.shape.slice(0, -2);
  const bLead = b.shape.slice(0, -2);
  const [aBatch, bBatch] = [size(aLead), size(bLead)];
  const sameLead = aLead.every((d, i) => d === bLead[i]);
  if (k !== kB || !(sameLead || aBatch === 1 || bBatch === 1) || m * n * k === 0) return kernels.fallback("BatchMatMul", args);
  kernels.fast("BatchMatMul");
  const lead = aBatch >= bBatch ? aLead : bLead;
  const batch = Math.max(aBatch, bBatch);
  const out = new Float32Array(batch * m * n);
  for (let i = 0; i < batch; i++) {
    gemm({
      m, n, k,
      a: { data: aValues, offset: (aBatch === 1 ? 0 : i) * aRows * aCols, rowStride: transposeA ? 1 : aCols, colStride: transposeA ? aCols : 1 },
      b: { data: bValues, offset: (bBatch === 1 ? 0 : i) * bRows * bCols, rowStride: transposeB ? 1 : bCols, colStride: transposeB ? bCols : 1 },
      c: { data: out, offset: i * m * n, rowStride: n },
    });
  }
  return backend.makeTensorInfo([...lead, m, n], "float32", out);
}

const OUR_KERNELS: Record<CpuMatMulKernelName, tf.KernelFunc> = { BatchMatMul: batchMatMulKernel };
