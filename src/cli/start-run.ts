// Start the compute backend for a command and describe it for the run log.
import * as tf from "@tensorflow/tfjs";
import { createRequire } from "node:module";
import { startBackend } from "../backends/index.ts";
import type { RunInfo } from "../train/run-log.ts";

export async function startRun(prefer: "auto" | "cuda" | "webgpu" | "cpu" = "auto"): Promise<RunInfo> {
  const backend = await startBackend({ prefer });
  const require = createRequire(import.meta.url);
  const version = (name: string) => {
    try {
      return (require(`${name}/package.json`) as { version: string }).version;
    } catch {
      return "not installed";
    }
  };
  return {
    backend: backend.name,
    device: backend.device,
    versions: {
      node: process.versions.node,
      tfjs: tf.version.tfjs,
      "tfjs-backend-webgpu": version("@tensorflow/tfjs-backend-webgpu"),
      webgpu: version("webgpu"),
      sharp: version("sharp"),
      finalbn: version("../.."),
    },
  };
}
