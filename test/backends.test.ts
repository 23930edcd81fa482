// Backend selection: auto, forced, unavailable, and the FINALBN_BACKEND override.
// The webgpu backend itself is tested in test/webgpu.test.ts: tfjs backends are process-global,
// and node's test runner gives each test file its own process.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { describeBackend, resolveChoice, startBackend, type StartedBackend } from "../src/backends/index.ts";
import { oneLine, withTimeout } from "../src/backends/timeout.ts";

// CI or a user's shell may set the override; these tests set it themselves.
const savedEnv = process.env.FINALBN_BACKEND;
delete process.env.FINALBN_BACKEND;
after(() => {
  if (savedEnv === undefined) delete process.env.FINALBN_BACKEND;
  else process.env.FINALBN_BACKEND = savedEnv;
});

/** startBackend with its one line captured instead of printed. */
async function start(prefer?: "auto" | "cuda" | "webgpu" | "cpu"): Promise<{ backend: StartedBackend; lines: string[] }> {
  const lines: string[] = [];
  const backend = await startBackend({ prefer, log: (line) => lines.push(line) });
  return { backend, lines };
}

/** A 3x3 box filter over a ramp, read back asynchronously as webgpu requires. */
async function smallConv(): Promise<number[]> {
  const x = tf.tensor4d([1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 3, 3, 1]);
  const w = tf.ones([3, 3, 1, 1]) as tf.Tensor4D;
  const y = tf.conv2d(x, w, 1, "valid");
  const values = Array.from(await y.data());
  tf.dispose([x, w, y]);
  return values;
}

test("resolveChoice: FINALBN_BACKEND wins over prefer, a bad value is ignored with a warning", () => {
  assert.deepEqual(resolveChoice(undefined, {}), { choice: "auto", source: "prefer: auto", warning: undefined });
  assert.equal(resolveChoice("cuda", { FINALBN_BACKEND: "CPU" }).choice, "cpu");
  assert.equal(resolveChoice("cuda", { FINALBN_BACKEND: "CPU" }).source, "FINALBN_BACKEND=cpu");
  const bad = resolveChoice("webgpu", { FINALBN_BACKEND: "gpu" });
  assert.equal(bad.choice, "webgpu");
  assert.match(bad.warning ?? "", /FINALBN_BACKEND="gpu" is not one of auto, cuda, webgpu, cpu/);
  const typo = resolveChoice("gpu" as "auto", {}); // notebooks are not type-checked
  assert.equal(typo.choice, "auto");
  assert.match(typo.warning ?? "", /prefer="gpu" is not one of/);
});

test("a start-up step that hangs becomes a one-line reason", async () => {
  const never = new Promise<never>(() => {});
  await assert.rejects(withTimeout(never, 20, "requestAdapter"), { message: "requestAdapter timed out after 0.02 s" });
  assert.equal(await withTimeout(Promise.resolve(7), 1000, "quick"), 7);
  assert.equal(oneLine(new Error("\nno suitable backends found\nAvailable adapters: ...")), "no suitable backends found");
});

test("auto starts a working backend and says why in one line", async () => {
  const { backend, lines } = await start("auto");
  assert.ok(["cuda", "webgpu", "cpu"].includes(backend.name), backend.name);
  assert.ok(backend.reason.length > 0);
  assert.ok(backend.device.length > 0);
  assert.equal(lines.length, 1);
  assert.ok(lines[0]!.startsWith(`backend: ${backend.name} (`), lines[0]);
  assert.ok(lines[0]!.includes(backend.reason));
  // cuda is tried first; where tfjs-node-gpu is missing it must have fallen back with a reason.
  for (const fallback of backend.fellBackFrom) assert.ok(fallback.reason.length > 0, fallback.name);
  if (backend.name !== "cuda") assert.equal(backend.fellBackFrom[0]?.name, "cuda");
  assert.deepEqual(await smallConv(), [45]);
});

test("forcing cpu gives cpu with this project's conv kernels", async () => {
  const { backend } = await start("cpu");
  assert.equal(backend.name, "cpu");
  assert.equal(tf.getBackend(), "cpu");
  assert.equal(backend.reason, "chosen: prefer: cpu");
  assert.deepEqual(backend.fellBackFrom, []);
  // With how many threads the convolutions run and which micro-kernel (FMA where relaxed SIMD compiles).
  assert.match(backend.details.kernels ?? "", /^finalbn conv, elementwise and AdamW kernels, \d+ threads?, wasm-(fma|simd)$/);
  assert.deepEqual(await smallConv(), [45]);
});

test("forcing an unavailable cuda falls back to cpu with the reason, without throwing", async (t) => {
  const { backend, lines } = await start("cuda");
  if (backend.name === "cuda") {
    t.skip("tfjs-node-gpu is installed and found a CUDA device here");
    return;
  }
  assert.equal(backend.name, "cpu");
  assert.equal(tf.getBackend(), "cpu");
  assert.equal(backend.fellBackFrom.length, 1);
  assert.equal(backend.fellBackFrom[0]!.name, "cuda");
  assert.match(backend.reason, /^forced cuda failed: .+/);
  assert.match(lines[0]!, /^backend: cpu \(.*\) — forced cuda failed: /);
});

test("FINALBN_BACKEND overrides prefer", async () => {
  process.env.FINALBN_BACKEND = "cpu";
  try {
    const { backend } = await start("cuda");
    assert.equal(backend.name, "cpu");
    assert.equal(backend.reason, "chosen: FINALBN_BACKEND=cpu");
    assert.deepEqual(backend.fellBackFrom, []); // cuda was never tried
  } finally {
    delete process.env.FINALBN_BACKEND;
  }
});

test("describeBackend tells a notebook where tensors run, with a hint when there is no GPU", async () => {
  await start("cpu");
  const described = describeBackend();
  assert.equal(described.backend, "cpu");
  assert.equal(described.tfjs, tf.version.tfjs);
  assert.equal(described.node, process.version);
  assert.match(described.driver, /tfjs-backend-cpu .* with finalbn conv, elementwise and AdamW kernels/);
  assert.match(described.hint ?? "", /lavapipe/);
});
