// The plain tfjs "cpu" backend, plus this project's faster convolution kernels when they are there
// (src/backends/cpu/conv.ts turns each convolution into a matrix product; the stock filter gradient
// runs at about 0.01 GFLOP/s, hopeless for training).
import os from "node:os";
import * as tf from "@tensorflow/tfjs";
import { registerCpuAdamW } from "./adamw.ts";
import { registerCpuBatchNorm } from "./batchnorm.ts";
import { registerCpuElementwiseKernels } from "./elementwise.ts";
import { registerCpuMatMulKernels } from "./matmul.ts";
import { microKernelKind } from "./gemm.ts";
import { startThreadPool, threadPoolFailure } from "./thread-pool.ts";

interface CpuConvModule {
  registerCpuConvKernels(): void;
}

/** The conv kernels module, or a one-line reason why it cannot be used. */
export async function loadCpuConv(): Promise<{ module?: CpuConvModule; reason?: string }> {
  try {
    // Dynamic, so a missing or broken cpu/conv.ts costs speed, never start-up; a literal path, so
    // bundlers (../shared/gpu/pack) carry the kernels along.
    const module: Partial<CpuConvModule> = await import("./conv.ts");
    if (typeof module.registerCpuConvKernels !== "function") return { reason: "cpu/conv.ts has no registerCpuConvKernels()" };
    return { module: module as CpuConvModule };
  } catch (error) {
    return { reason: `cpu/conv.ts failed to load: ${(error as Error).message.split("\n")[0]}` };
  }
}

/** "2 × AMD EPYC 7B13": what the cpu backend runs on. */
export function cpuName(): string {
  const cpus = os.cpus();
  return `${cpus.length} × ${cpus[0]?.model.trim() || os.arch()}`;
}

export interface CpuStarted {
  device: string;
  /** "finalbn conv, elementwise and AdamW kernels, 2 threads, wasm-fma" or "stock tfjs kernels (<why>)". */
  kernels: string;
  /** Threads our convolutions run on (FINALBN_THREADS, else one per core). */
  threads: number;
}

/**
 * Switch tfjs to "cpu" and register the project's conv kernels if it can (fail soft), and start
 * the pool of threads they split their work over (thread-pool.ts; FINALBN_THREADS=1: none).
 */
export async function startCpu(): Promise<CpuStarted> {
  await tf.setBackend("cpu");
  await tf.ready();
  // tfjs prints a banner recommending tfjs-node on the cpu backend's first use; we chose cpu knowingly
  // (tfjs-node cannot be installed everywhere), and the backend line above already says so.
  (tf.backend() as unknown as { firstUse?: boolean }).firstUse = false;
  const { module, reason } = await loadCpuConv();
  let kernels = `stock tfjs kernels (${reason})`;
  let threads = 1;
  if (module) {
    try {
      module.registerCpuConvKernels();
      // Batch norm's forward and backward are broadcasts and reductions, which the stock kernels
      // index element by element; ours take a training step about 4x faster.
      registerCpuElementwiseKernels();
      // Batch norm in training as one kernel forward and one per gradient, instead of those
      // broadcasts and reductions: a third of a classroom-scale step.
      registerCpuBatchNorm();
      // AdamW as one pass per weight tensor instead of a dozen element-wise ops (a full-width VGG19
      // step at 32 px, batch 4: 2.1 s -> 0.87 s).
      registerCpuAdamW();
      // Dense layers' products through the convolutions' gemm.
      registerCpuMatMulKernels();
      threads = await startThreadPool();
      const failure = threadPoolFailure();
      kernels = `finalbn conv, elementwise and AdamW kernels, ${threads} thread${threads > 1 ? "s" : ""}${failure ? ` (${failure})` : ""}, ${microKernelKind()}`;
    } catch (error) {
      kernels = `stock tfjs kernels (registerCpuConvKernels failed: ${(error as Error).message.split("\n")[0]})`;
    }
  }
  return { device: cpuName(), kernels, threads };
}
