// WebGPU in Node through Dawn (the `webgpu` package), driving @tensorflow/tfjs-backend-webgpu.
//
// Two steps, so the caller can decide in between:
//   probeWebGpu()  asks Dawn for an adapter and says what it is (a real GPU, or a CPU pretending
//                  to be one: Mesa's lavapipe/llvmpipe, SwiftShader);
//   startWebGpu()  hands Dawn to tfjs and switches tfjs to its "webgpu" backend.
// tfjs-backend-webgpu registers itself only if navigator.gpu exists when it is imported, so
// navigator.gpu is set first and the backend is imported afterwards, dynamically.
// Reading values on this backend in Node: `await t.data()`, never dataSync() (it needs OffscreenCanvas).
import * as tf from "@tensorflow/tfjs";
import { withTimeout } from "./timeout.ts";
import { registerWebGpuConvKernels } from "./webgpu-conv.ts";
import { registerWebGpuAdamW } from "./webgpu-adamw.ts";

export interface AdapterSummary {
  vendor: string;
  architecture: string;
  /** Dawn's device identifier, e.g. "llvmpipe-llvm-15-0-6-256-bits". */
  device: string;
  /** The driver's description, e.g. "llvmpipe: Mesa 25.0.7-2~bpo12+1 (LLVM 15.0.6)". */
  description: string;
  /** The native API Dawn drives: Vulkan on Linux. */
  api: string;
  /** True for a CPU emulating a GPU (lavapipe, SwiftShader). */
  software: boolean;
}

// Dawn's native backend per platform; naming it makes the "via Vulkan" in our messages true.
const DAWN_BACKENDS: Partial<Record<NodeJS.Platform, { flag: string; api: string }>> = {
  linux: { flag: "vulkan", api: "Vulkan" },
  darwin: { flag: "metal", api: "Metal" },
  win32: { flag: "d3d12", api: "D3D12" },
};

let dawnGpu: GPU | undefined; // one Dawn instance per process, shared by the probe and tfjs

async function dawn(): Promise<GPU> {
  if (dawnGpu) return dawnGpu;
  const { create, globals } = await import("webgpu");
  // Dawn's documented set-up: its GPU* classes and constants (GPUBufferUsage, ...) as globals.
  for (const [key, value] of Object.entries(globals)) {
    if (!(key in globalThis)) Object.assign(globalThis, { [key]: value });
  }
  const backend = DAWN_BACKENDS[process.platform];
  dawnGpu = create(backend ? [`backend=${backend.flag}`] : []);
  return dawnGpu;
}

/** "llvmpipe", "lavapipe" or "swiftshader" in any adapter string, or Dawn's own fallback flag. */
export function isSoftwareAdapter(info: Partial<GPUAdapterInfo> & { isFallbackAdapter?: boolean }): boolean {
  const text = [info.vendor, info.architecture, info.device, info.description].join(" ");
  return /llvmpipe|lavapipe|swiftshader/i.test(text) || info.isFallbackAdapter === true;
}

/** "<device> (<driver>) via Vulkan": Dawn's device identifier names the chip, the description the driver. */
export function adapterLabel(summary: AdapterSummary): string {
  const name = summary.device.replace(/-+$/, "") || summary.vendor || "unknown adapter";
  return `${name}${summary.description ? ` (${summary.description})` : ""} via ${summary.api}`;
}

function noAdapterReason(): string {
  if (process.platform === "linux") {
    return "no adapter (install mesa-vulkan-drivers ≥ 24 for lavapipe, e.g. sudo bash .ci/lavapipe.sh, or a GPU's Vulkan driver; Dawn also needs libvulkan1 and libglvnd0)";
  }
  return `no adapter (Dawn found no ${DAWN_BACKENDS[process.platform]?.api ?? "usable"} device)`;
}

/** Ask Dawn for a high-performance adapter; throws a one-line Error when there is none. */
export async function probeWebGpu({ timeoutMs }: { timeoutMs: number }): Promise<AdapterSummary> {
  let gpu: GPU;
  try {
    gpu = await dawn();
  } catch (error) {
    throw new Error(`the webgpu package (Dawn) failed to load: ${(error as Error).message}`);
  }
  const adapter = await withTimeout(gpu.requestAdapter({ powerPreference: "high-performance" }), timeoutMs, "requestAdapter");
  if (!adapter) throw new Error(noAdapterReason());
  const info = adapter.info as GPUAdapterInfo & { isFallbackAdapter?: boolean };
  return {
    vendor: info.vendor ?? "",
    architecture: info.architecture ?? "",
    device: info.device ?? "",
    description: info.description ?? "",
    api: DAWN_BACKENDS[process.platform]?.api ?? "Dawn",
    software: isSoftwareAdapter(info),
  };
}

/** navigator.gpu = Dawn, which is where tfjs-backend-webgpu looks for WebGPU. */
function installNavigatorGpu(gpu: GPU): void {
  const current = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (current?.gpu === gpu) return;
  if (current && Object.isExtensible(current)) {
    // Node 21+ has a navigator of its own (a getter on globalThis): add gpu to it, keep the rest.
    Object.defineProperty(current, "gpu", { value: gpu, configurable: true, writable: true });
  } else {
    Object.defineProperty(globalThis, "navigator", { value: { gpu }, configurable: true, writable: true });
  }
}

/** Switch tfjs to the webgpu backend on Dawn's adapter and check that a kernel really runs. */
export async function startWebGpu({ timeoutMs }: { timeoutMs: number }): Promise<void> {
  installNavigatorGpu(await dawn());
  await import("@tensorflow/tfjs-backend-webgpu");
  if (!tf.findBackendFactory("webgpu")) {
    throw new Error("@tensorflow/tfjs-backend-webgpu was imported before navigator.gpu existed, so it did not register: start the backend first");
  }
  const ok = await withTimeout(tf.setBackend("webgpu"), timeoutMs, "starting the webgpu backend");
  if (!ok) throw new Error("tfjs could not initialise the webgpu backend (see the warning above)");
  try {
    // A tiny kernel end to end: compiles a shader, runs it, reads the result back.
    const probe = tf.tidy(() => tf.tensor1d([1, 2, 3]).mul(2));
    const values = await withTimeout(probe.data(), timeoutMs, "a first webgpu kernel");
    probe.dispose();
    if (values[2] !== 6) throw new Error(`a first webgpu kernel computed ${Array.from(values)} instead of 2,4,6`);
  } catch (error) {
    await tf.setBackend("cpu");
    throw error;
  }
  registerWebGpuConvKernels(); // our convolution kernels (webgpu-conv.ts, DEFAULT_WEBGPU_CONV_KERNELS) in place of the stock ones
  registerWebGpuAdamW(); // AdamW in three passes per weight tensor instead of a dozen (webgpu-adamw.ts)
}
