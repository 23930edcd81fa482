// WebGPU in Node through Dawn (the `webgpu` package), driving @tensorflow/tfjs-backend-webgpu.
//
// Two steps, so the caller can decide in between:
//   probeWebGpu()  asks Dawn for an adapter and says what it is (a real GPU, or a CPU pretending
//                  to be one: Mesa's lavapipe/llvmpipe, SwiftShader), in a child process;
//   startWebGpu()  hands Dawn to tfjs and switches tfjs to its "webgpu" backend.
// The probe runs in a child process because Dawn and the Vulkan stack write straight to the
// process's stderr, below anything Node can redirect: lavapipe alone makes Dawn print two
// "Warning: maxDynamic...PerPipelineLayout artificially reduced" lines on every start. "auto"
// probes on every start (kernel, command, worker) and then usually picks cpu on a machine without
// a GPU, so those lines, and whatever a broken driver prints or crashes with, stay in the child.
// tfjs-backend-webgpu registers itself only if navigator.gpu exists when it is imported, so
// navigator.gpu is set first and the backend is imported afterwards, dynamically.
// Reading values on this backend in Node: `await t.data()`, never dataSync() (it needs OffscreenCanvas).
import * as tf from "@tensorflow/tfjs";
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import { withTimeout } from "../timeout.ts";
import { registerWebGpuConvKernels } from "./conv.ts";
import { registerWebGpuAdamW } from "./adamw.ts";

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

/**
 * Environment changes that keep the Vulkan stack quiet; undefined removes a variable.
 *
 * WAYLAND_DISPLAY, when it cannot work. Mesa's Vulkan device-select layer (an implicit layer,
 * loaded by every Vulkan program) asks the Wayland compositor which GPU drives the screen whenever
 * WAYLAND_DISPLAY is set. Without an absolute XDG_RUNTIME_DIR (a notebook server or command started
 * through su, sudo or ssh from a desktop session) libwayland cannot find the compositor's socket
 * and prints "error: XDG_RUNTIME_DIR is invalid or not set in the environment." at every start.
 * That connection can never succeed, so the variable goes.
 *
 * Lavapipe, when the probe found a hardware adapter: on a machine with a GPU and Mesa's software
 * driver installed (Debian's mesa-vulkan-drivers), Dawn would set lavapipe up too and print its
 * two limit warnings. Unless the user chose Vulkan drivers themselves.
 */
export function quietVulkanEnv(env: NodeJS.ProcessEnv, hardware?: AdapterSummary): Record<string, string | undefined> {
  const changes: Record<string, string | undefined> = {};
  const display = env.WAYLAND_DISPLAY;
  if (display && !display.startsWith("/") && !env.XDG_RUNTIME_DIR?.startsWith("/")) changes.WAYLAND_DISPLAY = undefined;
  const chosen = ["VK_LOADER_DRIVERS_DISABLE", "VK_LOADER_DRIVERS_SELECT", "VK_DRIVER_FILES", "VK_ICD_FILENAMES"];
  if (hardware && !hardware.software && process.platform === "linux" && !chosen.some((name) => env[name])) {
    changes.VK_LOADER_DRIVERS_DISABLE = "*lvp_icd*";
  }
  return changes;
}

let found: AdapterSummary | undefined; // what the last probe found, for startWebGpu

let dawnGpu: GPU | undefined; // one Dawn instance per process, used by tfjs

async function dawn(): Promise<GPU> {
  if (dawnGpu) return dawnGpu;
  // Set in this process, where Node passes it on to the C environment Vulkan reads (and to workers).
  for (const [name, value] of Object.entries(quietVulkanEnv(process.env, found))) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
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

// The probe: load Dawn, ask for a high-performance adapter, print its info as one JSON line. Dawn
// keeps a process alive, so it exits once the line is out.
const PROBE = `
const [url, backend] = process.argv.slice(1);
const done = (result) => process.stdout.write(JSON.stringify(result) + "\\n", () => process.exit(0));
let gpu;
try {
  gpu = (await import(url)).create(backend ? ["backend=" + backend] : []);
} catch (error) {
  done({ loadError: String(error?.message ?? error) });
}
if (gpu) {
  const adapter = await gpu.requestAdapter({ powerPreference: "high-performance" });
  const i = adapter?.info;
  done({ adapter: i ? { vendor: i.vendor, architecture: i.architecture, device: i.device, description: i.description, isFallbackAdapter: i.isFallbackAdapter } : null });
}
`;

// What Dawn and the Vulkan stack print on a healthy start: not worth repeating in an error.
const NOISE = /artificially reduced|XDG_RUNTIME_DIR is invalid/;

type ProbeResult = { loadError: string } | { adapter: (Partial<GPUAdapterInfo> & { isFallbackAdapter?: boolean }) | null };

function runProbe(timeoutMs: number): Promise<ProbeResult> {
  const url = pathToFileURL(createRequire(import.meta.url).resolve("webgpu")).href;
  const child = spawn(process.execPath, ["--input-type=module", "-e", PROBE, url, DAWN_BACKENDS[process.platform]?.flag ?? ""], {
    env: { ...process.env, ...quietVulkanEnv(process.env) },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk) => (stdout += chunk));
  child.stderr.on("data", (chunk) => (stderr += chunk));
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  return new Promise((resolve, reject) => {
    child.on("error", (error) => reject(new Error(`could not start the adapter probe: ${error.message}`)));
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      const line = stdout.split("\n").find((l) => l.startsWith("{"));
      if (line) return resolve(JSON.parse(line) as ProbeResult);
      if (signal === "SIGKILL") return reject(new Error(`requestAdapter timed out after ${timeoutMs / 1000} s`));
      const said = stderr.split("\n").filter((l) => l.trim() && !NOISE.test(l)).pop()?.trim();
      const how = signal ? `crashed (${signal})` : `exited with code ${code}`;
      reject(new Error(`Dawn's adapter probe ${how}${said ? `: ${said}` : ""}`));
    });
  });
}

/** Ask Dawn for a high-performance adapter; throws a one-line Error when there is none. */
export async function probeWebGpu({ timeoutMs }: { timeoutMs: number }): Promise<AdapterSummary> {
  const result = await runProbe(timeoutMs);
  if ("loadError" in result) throw new Error(`the webgpu package (Dawn) failed to load: ${result.loadError}`);
  const info = result.adapter;
  if (!info) throw new Error(noAdapterReason());
  found = {
    vendor: info.vendor ?? "",
    architecture: info.architecture ?? "",
    device: info.device ?? "",
    description: info.description ?? "",
    api: DAWN_BACKENDS[process.platform]?.api ?? "Dawn",
    software: isSoftwareAdapter(info),
  };
  return found;
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
  registerWebGpuConvKernels(); // our convolution kernels (webgpu/conv.ts, DEFAULT_WEBGPU_CONV_KERNELS) in place of the stock ones
  registerWebGpuAdamW(); // AdamW in three passes per weight tensor instead of a dozen (webgpu/adamw.ts)
}
