// Which engine runs the tensors: CUDA, WebGPU or the plain CPU, chosen once at start-up.
//
//   const backend = await startBackend();          // prints "backend: webgpu (...) — chosen: ..."
//   const backend = await startBackend({ prefer: "cpu" });
//   FINALBN_BACKEND=webgpu npm run ...             // the environment overrides `prefer`
//
// "auto" tries, in order:
//   1. cuda    @tensorflow/tfjs-node-gpu, when installed and it finds a CUDA device;
//   2. webgpu  Dawn on a real GPU (Vulkan on Linux);
//   3. cpu     tfjs's cpu backend with this project's conv kernels (src/backends/cpu/conv.ts).
// A backend that fails to start (or hangs: every step has a timeout) falls back to the next with a
// one-line reason. Forcing one that cannot start falls back to cpu, saying "forced webgpu failed: ...".
//
// Software GPUs: Mesa's lavapipe (llvmpipe) is a CPU emulating a Vulkan GPU. Measured on a 2-core
// machine (one SGD step of conv-pool-conv-pool-dense, batch 4-16, 32-128 px, 16-64 channels; same
// losses on both): webgpu on lavapipe beat tfjs's stock cpu kernels 12-35x, but lost 1.3-4x to the
// cpu backend with our conv kernels (64 px, batch 16, 64 channels: 15-20 s against 4.6-5.3 s per
// step), and a fresh shader cache costs it ~30 s of compilation on top. So "auto" skips a software
// adapter whenever our cpu kernels load, and takes it only when they do not.
import * as tf from "@tensorflow/tfjs";
import { MathBackendCPU } from "@tensorflow/tfjs-backend-cpu";
import { startCuda } from "./cuda.ts";
import { loadCpuConv, startCpu } from "./cpu/backend.ts";
import { oneLine } from "./timeout.ts";
import { adapterLabel, probeWebGpu, startWebGpu, type AdapterSummary } from "./webgpu/backend.ts";

export type BackendName = "cuda" | "webgpu" | "cpu";
export type BackendChoice = BackendName | "auto";
export const BACKEND_CHOICES: readonly BackendChoice[] = ["auto", "cuda", "webgpu", "cpu"];

export interface Fallback {
  name: BackendName;
  reason: string;
}

export interface StartedBackend {
  name: BackendName;
  /** Why this one: "chosen: first GPU backend that started", "no GPU: ...", "forced webgpu failed: ...". */
  reason: string;
  /** What it runs on: "NVIDIA ... via Vulkan", "2 × AMD EPYC 7B13". */
  device: string;
  /** The backends tried before this one, with why each did not start. */
  fellBackFrom: Fallback[];
  /** Driver, adapter and kernel facts for describeBackend(). */
  details: Record<string, string>;
}

export interface StartOptions {
  prefer?: BackendChoice;
  /** Where the one-line "backend: ..." goes; console.log unless given. */
  log?: (line: string) => void;
  /** Limit for each start-up step (loading, requestAdapter, first kernel). */
  timeoutMs?: number;
}

const AUTO_ORDER: BackendName[] = ["cuda", "webgpu", "cpu"];

const NO_GPU_HINT =
  "No GPU backend. For WebGPU install a Vulkan driver: your GPU's, or Mesa's lavapipe (software, " +
  "slower than cpu for training) with `sudo bash .ci/lavapipe.sh` on Debian 12; Dawn also needs libvulkan1 " +
  "and libglvnd0. For CUDA, `npm install @tensorflow/tfjs-node-gpu` (CUDA 11.2, cuDNN 8.1).";

let current: StartedBackend | undefined;

// tfjs's cpu backend greets its first tensor in Node with a banner recommending tfjs-node. We run
// on cpu knowingly (the "backend:" line says why), and also before startBackend() and after a GPU
// backend falls back to cpu: every cpu backend of this process starts with the greeting given.
Object.defineProperty(MathBackendCPU.prototype, "firstUse", { get: () => false, set: () => {}, configurable: true });

/** What a starter returns; startBackend adds the reason and the fallbacks. */
type Started = Omit<StartedBackend, "reason" | "fellBackFrom">;

/** The choice after the environment: FINALBN_BACKEND wins over `prefer`; a bad value is ignored with a warning. */
export function resolveChoice(
  prefer: BackendChoice = "auto",
  env: Record<string, string | undefined> = process.env,
): { choice: BackendChoice; source: string; warning?: string } {
  const fromEnv = env.FINALBN_BACKEND?.trim().toLowerCase();
  const known = (value: string) => (BACKEND_CHOICES as readonly string[]).includes(value);
  if (fromEnv && known(fromEnv)) return { choice: fromEnv as BackendChoice, source: `FINALBN_BACKEND=${fromEnv}` };
  // Notebooks are not type-checked: an unknown name is reported, not obeyed.
  const bad = (what: string, value: string) => `${what}="${value}" is not one of ${BACKEND_CHOICES.join(", ")}: ignored`;
  const warnings = [fromEnv ? bad("FINALBN_BACKEND", env.FINALBN_BACKEND ?? "") : "", known(prefer) ? "" : bad("prefer", prefer)];
  const warning = warnings.filter(Boolean).join("; ") || undefined;
  const choice = known(prefer) ? prefer : "auto";
  return { choice, source: `prefer: ${choice}`, warning };
}

/** Start the best (or the asked-for) backend; never throws because a GPU is missing. */
export async function startBackend(options: StartOptions = {}): Promise<StartedBackend> {
  const { log = console.log, timeoutMs = 30_000 } = options;
  const { choice, source, warning } = resolveChoice(options.prefer, process.env);
  const fellBackFrom: Fallback[] = [];
  const candidates = choice === "auto" ? AUTO_ORDER : [choice];

  let started: Started | undefined;
  for (const name of candidates) {
    if (name === "cpu") break; // cpu is the fallback below
    try {
      started = name === "cuda" ? await tryCuda(timeoutMs) : await tryWebGpu({ timeoutMs, auto: choice === "auto" });
      break;
    } catch (error) {
      fellBackFrom.push({ name, reason: oneLine(error) });
    }
  }

  let reason: string;
  if (started) {
    reason = choice === "auto" ? "chosen: first GPU backend that started" : `chosen: ${source}`;
    if (started.details.software === "yes") {
      // auto only gets here when our cpu kernels are missing (see tryWebGpu).
      reason += choice === "auto" ? " (a software GPU, still faster than tfjs's stock cpu kernels)" : " (a software GPU: a CPU emulating one)";
    }
  } else {
    const cpu = await startCpu();
    started = { name: "cpu", device: cpu.device, details: { kernels: cpu.kernels } };
    if (choice === "cpu") reason = `chosen: ${source}`;
    else if (choice === "auto") reason = "no GPU: " + fellBackFrom.map((f) => `${f.name}: ${f.reason}`).join("; ");
    else reason = `forced ${choice} failed: ${fellBackFrom[0]?.reason}`;
  }
  if (warning) reason += ` [${warning}]`;

  current = { ...started, reason, fellBackFrom };
  log(`backend: ${current.name} (${current.device}${current.name === "cpu" ? `; ${current.details.kernels}` : ""}) — ${reason}`);
  return current;
}

async function tryCuda(timeoutMs: number): Promise<Started> {
  const { device, details } = await startCuda({ timeoutMs });
  return { name: "cuda", device, details };
}

async function tryWebGpu({ timeoutMs, auto }: { timeoutMs: number; auto: boolean }): Promise<Started> {
  const adapter = await probeWebGpu({ timeoutMs });
  const label = adapterLabel(adapter);
  if (adapter.software && auto) {
    const conv = await loadCpuConv();
    if (conv.module) {
      throw new Error(`${label} is software (a CPU emulating a GPU): cpu with finalbn conv kernels trains faster; FINALBN_BACKEND=webgpu forces it`);
    }
  }
  await startWebGpu({ timeoutMs });
  return { name: "webgpu", device: label, details: adapterDetails(adapter) };
}

function adapterDetails(adapter: AdapterSummary): Record<string, string> {
  const details: Record<string, string> = {
    driver: `${adapter.description || "unknown driver"} via ${adapter.api}`,
    adapter: `vendor ${adapter.vendor || "?"}, architecture ${adapter.architecture || "?"}, device ${adapter.device || "?"}`,
    software: adapter.software ? "yes" : "no",
  };
  if (process.env.VK_DRIVER_FILES) details.vulkanDriverFiles = process.env.VK_DRIVER_FILES;
  return details;
}

/** The last startBackend() result, if any. */
export function currentBackend(): StartedBackend | undefined {
  return current;
}

export interface BackendDescription {
  backend: string;
  device: string;
  driver: string;
  reason: string;
  fellBackFrom: Fallback[];
  tfjs: string;
  node: string;
  platform: string;
  /** What to do for a GPU, when running without one. */
  hint?: string;
}

/** Everything a notebook should show about where the tensors run. */
export function describeBackend(): BackendDescription {
  const name = current?.name ?? tf.getBackend();
  const details = current?.details ?? {};
  const driver =
    name === "cpu"
      ? `tfjs-backend-cpu ${tf.version["tfjs-backend-cpu"] ?? tf.version.tfjs} with ${details.kernels ?? "stock tfjs kernels"}`
      : [details.driver, details.adapter, details.vulkanDriverFiles && `VK_DRIVER_FILES=${details.vulkanDriverFiles}`]
          .filter(Boolean)
          .join("; ");
  return {
    backend: name,
    device: current?.device ?? "unknown (startBackend() was not called)",
    driver,
    reason: current?.reason ?? "",
    fellBackFrom: current?.fellBackFrom ?? [],
    tfjs: tf.version.tfjs,
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    ...(name === "cpu" || details.software === "yes" ? { hint: NO_GPU_HINT } : {}),
  };
}
