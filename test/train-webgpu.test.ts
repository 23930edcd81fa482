// The training suite once more on the webgpu backend (a real GPU, or Mesa's lavapipe in CI).
import { probeWebGpu } from "../src/backends/webgpu/backend.ts";
import { trainSuite } from "./train-suite.ts";

delete process.env.FINALBN_BACKEND;
const noAdapter = await probeWebGpu({ timeoutMs: 30_000 }).then(
  () => undefined,
  (error: Error) => `no WebGPU adapter here: ${error.message}`,
);
if (noAdapter) console.log(`skipping webgpu training tests: ${noAdapter}`);
trainSuite("webgpu", noAdapter);
