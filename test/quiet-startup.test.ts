// Starting a backend prints the one "backend: ..." line and nothing else: no libwayland error from
// Mesa's device-select layer, no Dawn limit warnings from probing lavapipe, no tfjs banner.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { quietVulkanEnv, type AdapterSummary } from "../src/backends/webgpu/backend.ts";

const GPU: AdapterSummary = { vendor: "nvidia", architecture: "", device: "NVIDIA H200", description: "NVIDIA 550", api: "Vulkan", software: false };

test("WAYLAND_DISPLAY goes only when libwayland could never reach the compositor", () => {
  assert.deepEqual(quietVulkanEnv({ WAYLAND_DISPLAY: "wayland-0" }), { WAYLAND_DISPLAY: undefined });
  assert.deepEqual(quietVulkanEnv({ WAYLAND_DISPLAY: "wayland-0", XDG_RUNTIME_DIR: "" }), { WAYLAND_DISPLAY: undefined });
  assert.deepEqual(quietVulkanEnv({ WAYLAND_DISPLAY: "wayland-0", XDG_RUNTIME_DIR: "run/user/1000" }), { WAYLAND_DISPLAY: undefined });
  assert.deepEqual(quietVulkanEnv({ WAYLAND_DISPLAY: "wayland-0", XDG_RUNTIME_DIR: "/run/user/1000" }), {});
  assert.deepEqual(quietVulkanEnv({ WAYLAND_DISPLAY: "/run/user/1000/wayland-0" }), {}, "an absolute socket path needs no runtime dir");
  assert.deepEqual(quietVulkanEnv({}), {});
});

test("lavapipe is hidden from Vulkan only next to a hardware adapter, and never against the user's own driver choice", (t) => {
  if (process.platform !== "linux") return t.skip("the Vulkan loader's driver filter is used on Linux only");
  assert.deepEqual(quietVulkanEnv({}, GPU), { VK_LOADER_DRIVERS_DISABLE: "*lvp_icd*" });
  assert.deepEqual(quietVulkanEnv({}, { ...GPU, software: true }), {});
  assert.deepEqual(quietVulkanEnv({}), {});
  for (const chosen of ["VK_LOADER_DRIVERS_DISABLE", "VK_LOADER_DRIVERS_SELECT", "VK_DRIVER_FILES", "VK_ICD_FILENAMES"])
    assert.deepEqual(quietVulkanEnv({ [chosen]: "x" }, GPU), {}, chosen);
});

test("a process that makes a tensor and starts the auto backend prints the backend line and nothing else", async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), "finalbn-quiet-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const script = path.join(dir, "start.mts");
  const backends = path.resolve(import.meta.dirname, "../src/backends/index.ts");
  const tfjs = pathToFileURL(createRequire(import.meta.url).resolve("@tensorflow/tfjs")).href; // the script is not in the project
  // A tensor before startBackend, as a notebook may make: tfjs's cpu backend then starts on its own.
  await writeFile(
    script,
    `import * as tf from ${JSON.stringify(tfjs)};\nimport { startBackend } from ${JSON.stringify(backends)};\n` +
      `tf.zeros([1]).dataSync();\nawait startBackend({ prefer: "auto" });\n`,
  );
  // As from a desktop session reached through su or ssh: a Wayland display, no runtime dir.
  const { XDG_RUNTIME_DIR: _, FINALBN_BACKEND: __, ...env } = process.env;
  const { stdout, stderr } = await promisify(execFile)(process.execPath, ["--import", "tsx", script], {
    cwd: path.resolve(import.meta.dirname, ".."),
    env: { ...env, WAYLAND_DISPLAY: "wayland-0" },
    timeout: 120_000,
  });
  assert.match(stdout, /^backend: \w+ \(/);
  assert.equal(stdout.trim().split("\n").length, 1, stdout);
  assert.equal(stderr, "", "nothing on stderr: no XDG_RUNTIME_DIR error, Dawn warning or tfjs banner");
});
