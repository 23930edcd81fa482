// The webgpu backend through Dawn, in its own file (own process): forcing it starts it, and a small
// conv2d, its filter gradient and a matMul agree with tfjs's cpu backend.
// Runs wherever Dawn finds a Vulkan adapter (CI installs lavapipe with .ci/lavapipe.sh); elsewhere
// it is skipped with the reason. Values are read with `await t.data()`: dataSync() fails on webgpu in Node.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { makeRng } from "../src/data/rng.ts";
import { describeBackend, startBackend } from "../src/backends/index.ts";
import { probeWebGpu } from "../src/backends/webgpu/backend.ts";
import { registerWebGpuAdamW, unregisterWebGpuAdamW } from "../src/backends/webgpu/adamw.ts";
import { fusedAgainstOps } from "./adamw-reference.ts";

delete process.env.FINALBN_BACKEND;

let noAdapter: string | undefined;
try {
  await probeWebGpu({ timeoutMs: 30_000 });
} catch (error) {
  noAdapter = `no WebGPU adapter here: ${(error as Error).message}`;
  console.log(`skipping webgpu tests: ${noAdapter}`);
}

function randomValues(n: number, seed: number): Float32Array {
  const rng = makeRng(seed);
  return Float32Array.from({ length: n }, () => rng() * 2 - 1);
}

const X = randomValues(2 * 9 * 9 * 3, 1); // batch 2, 9x9, 3 channels
const W = randomValues(3 * 3 * 3 * 4, 2); // 3x3 filter, 3 -> 4 channels
const A = randomValues(17 * 33, 3);
const B = randomValues(33 * 9, 4);

/** conv2d, the gradient of sum(conv^2) with respect to the filter, and a matMul on the current backend. */
async function compute(): Promise<Record<string, Float32Array>> {
  const x = tf.tensor4d(X, [2, 9, 9, 3]);
  const w = tf.tensor4d(W, [3, 3, 3, 4]);
  const conv = tf.conv2d(x, w, [2, 1], "same");
  const filterGrad = tf.grad((filter) => tf.conv2d(x, filter as tf.Tensor4D, 1, "valid").square().sum())(w);
  const product = tf.matMul(tf.tensor2d(A, [17, 33]), tf.tensor2d(B, [33, 9]));
  const out = {
    conv: (await conv.data()) as Float32Array,
    filterGrad: (await filterGrad.data()) as Float32Array,
    matMul: (await product.data()) as Float32Array,
  };
  tf.dispose([x, w, conv, filterGrad, product]);
  return out;
}

/** max |a - b| / max |b|: the error relative to the size of the result. */
function relativeError(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return diff / scale;
}

test("forcing webgpu starts it on the adapter Dawn finds", { skip: noAdapter }, async () => {
  const lines: string[] = [];
  const backend = await startBackend({ prefer: "webgpu", log: (line) => lines.push(line) });
  assert.equal(backend.name, "webgpu", backend.reason);
  assert.equal(tf.getBackend(), "webgpu");
  assert.deepEqual(backend.fellBackFrom, []);
  assert.match(lines[0]!, /^backend: webgpu \(.+ via \w+\) — chosen: prefer: webgpu/);
  const described = describeBackend();
  assert.equal(described.backend, "webgpu");
  assert.match(described.driver, /vendor .*, architecture .*, device /);
});

test("conv2d, its filter gradient and matMul on webgpu match the cpu backend within 1e-4", { skip: noAdapter }, async () => {
  const backend = await startBackend({ prefer: "webgpu", log: () => {} });
  assert.equal(backend.name, "webgpu", backend.reason);
  const onGpu = await compute();
  await tf.setBackend("cpu");
  const onCpu = await compute();
  for (const name of Object.keys(onCpu)) {
    const error = relativeError(onGpu[name]!, onCpu[name]!);
    assert.ok(error <= 1e-4, `${name}: relative error ${error}`);
  }
});

test("AdamW's fused webgpu shaders match the same update as tfjs ops", { skip: noAdapter }, async () => {
  const backend = await startBackend({ prefer: "webgpu", log: () => {} });
  assert.equal(backend.name, "webgpu", backend.reason);
  // 4.3M weights: more workgroups of 64 than one dispatch row holds (65535), so the backend folds it.
  const shapes = [[3, 3, 5, 7], [70], [2100, 2050]];
  const worst = await fusedAgainstOps({ register: registerWebGpuAdamW, unregister: unregisterWebGpuAdamW, shapes, steps: 3 });
  assert.ok(worst < 1e-4, `largest relative difference ${worst}`);
  registerWebGpuAdamW();
});
