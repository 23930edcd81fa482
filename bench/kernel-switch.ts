// "Stock" or "ours" for the backend being benched: which kernels are registered, and whether a
// call really took our path (a fallback to the stock kernel would make a comparison void).
import type { Clock } from "./timing.ts";
import { cpuConvKernelCalls, registerCpuConvKernels, unregisterCpuConvKernels } from "../src/backends/cpu/conv.ts";
import { registerCpuElementwiseKernels, unregisterCpuElementwiseKernels } from "../src/backends/cpu/elementwise.ts";
import { registerCpuAdamW, unregisterCpuAdamW } from "../src/backends/cpu/adamw.ts";
import { registerCpuMatMulKernels, unregisterCpuMatMulKernels } from "../src/backends/cpu/matmul.ts";
import { kernelThreads } from "../src/backends/cpu/thread-pool.ts";
import { registerWebGpuAdamW, unregisterWebGpuAdamW } from "../src/backends/webgpu/adamw.ts";
import {
  DEFAULT_WEBGPU_CONV_KERNELS,
  registerWebGpuConvKernels,
  unregisterWebGpuConvKernels,
  webGpuConvKernelCalls,
  type WebGpuConvOptions,
} from "../src/backends/webgpu/conv.ts";

export type Kernels = "stock" | "ours";

export interface KernelSwitch {
  backend: "cpu" | "webgpu";
  clock: Clock;
  /** Register tfjs's stock kernels, or ours as training uses them. */
  use(kernels: Kernels): void;
  /** Calls of our version of `kernelName` so far: fast path, and cases it handed to the stock kernel. */
  calls(kernelName: string): { fast: number; fallback: number };
}

/** Create after the backend has started: with its kernel threads, the wall clock (CPU time sums over threads). */
export function cpuSwitch(): KernelSwitch {
  return {
    backend: "cpu",
    clock: kernelThreads() > 1 ? "wall" : "cpu",
    use(kernels) {
      if (kernels === "ours") (registerCpuConvKernels(), registerCpuElementwiseKernels(), registerCpuAdamW(), registerCpuMatMulKernels());
      else (unregisterCpuConvKernels(), unregisterCpuElementwiseKernels(), unregisterCpuAdamW(), unregisterCpuMatMulKernels());
    },
    calls: (name) => (cpuConvKernelCalls() as Record<string, { fast: number; fallback: number }>)[name] ?? { fast: 0, fallback: 0 },
  };
}

/** `options` (register block, split-K) apply to every registration of ours. */
export function webGpuSwitch(options: WebGpuConvOptions = {}): KernelSwitch {
  return {
    backend: "webgpu",
    clock: "wall",
    use(kernels) {
      unregisterWebGpuConvKernels();
      unregisterWebGpuAdamW();
      if (kernels === "stock") return;
      registerWebGpuAdamW();
      registerWebGpuConvKernels({ ...options, kernels: DEFAULT_WEBGPU_CONV_KERNELS });
    },
    calls: (name) => (webGpuConvKernelCalls() as Record<string, { fast: number; fallback: number }>)[name] ?? { fast: 0, fallback: 0 },
  };
}
