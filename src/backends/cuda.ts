// CUDA through @tensorflow/tfjs-node-gpu (TensorFlow's C library with CUDA 11.2 / cuDNN 8.1).
// It is an optional path for users who have it installed; this project does not depend on it, and it
// cannot be installed on our machines, so every failure here is a one-line reason, never a crash.
import * as tf from "@tensorflow/tfjs";
import { oneLine, withTimeout } from "./timeout.ts";

const PACKAGE = "@tensorflow/tfjs-node-gpu";

/** The part of tfjs-node's backend that tells whether TensorFlow found a GPU. */
interface NodeBackend {
  isUsingGpuDevice?: boolean;
  binding?: { TF_Version?: string };
}

export interface CudaStarted {
  device: string;
  details: Record<string, string>;
}

/** Load tfjs-node-gpu and switch tfjs to its "tensorflow" backend; throws a one-line Error if it cannot. */
export async function startCuda({ timeoutMs }: { timeoutMs: number }): Promise<CudaStarted> {
  try {
    // A variable specifier: TypeScript and bundlers must not look for a package that is not installed.
    const specifier: string = PACKAGE;
    await withTimeout(import(specifier), timeoutMs, `loading ${PACKAGE}`);
  } catch (error) {
    const code = (error as { code?: string }).code;
    const missing = (code === "ERR_MODULE_NOT_FOUND" || code === "MODULE_NOT_FOUND") && oneLine(error).includes(PACKAGE);
    throw new Error(missing ? `${PACKAGE} is not installed` : `${PACKAGE} failed to load: ${oneLine(error)}`);
  }
  const ok = await withTimeout(tf.setBackend("tensorflow"), timeoutMs, "starting the tensorflow backend");
  if (!ok) throw new Error(`${PACKAGE} loaded but its "tensorflow" backend did not start`);
  const backend = tf.backend() as unknown as NodeBackend;
  // tfjs-node-gpu quietly runs on the CPU when it finds no CUDA device or libraries.
  if (backend.isUsingGpuDevice === false) {
    await tf.setBackend("cpu");
    throw new Error(`${PACKAGE} loaded but TensorFlow found no CUDA device (CUDA 11.2 and cuDNN 8.1 libraries needed)`);
  }
  const version = backend.binding?.TF_Version ?? "unknown";
  return {
    device: "CUDA GPU via TensorFlow " + version,
    details: { driver: `TensorFlow ${version} through ${PACKAGE}` },
  };
}
