// Our webgpu Conv2DBackpropFilter (src/backends/webgpu-conv.ts) against tfjs's stock webgpu kernel and
// a plain float64 loop, in its own process. Runs wherever Dawn finds a Vulkan adapter (CI installs
// Mesa's lavapipe with .ci/lavapipe.sh); elsewhere it is skipped with the reason.
// Values are read with `await t.data()`: dataSync() fails on webgpu in Node.
import { before, test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { makeRng } from "../src/data/rng.ts";
import { outShape, randomValues, referenceConv, relError, type ConvCase, type Pad } from "./conv-reference.ts";
import { startBackend } from "../src/backends/index.ts";
import { probeWebGpu } from "../src/backends/webgpu.ts";
import {
  registerWebGpuConvKernels,
  unregisterWebGpuConvKernels,
  webGpuConvKernelCalls,
  webGpuConvKernelsRegistered,
} from "../src/backends/webgpu-conv.ts";
import { DEFAULT_SPLIT, planFilterGrad, TILE_K } from "../src/backends/webgpu-filter-grad.ts";

delete process.env.FINALBN_BACKEND;

let noAdapter: string | undefined;
try {
  await probeWebGpu({ timeoutMs: 30_000 });
} catch (error) {
  noAdapter = `no WebGPU adapter here: ${(error as Error).message}`;
  console.log(`skipping webgpu conv tests: ${noAdapter}`);
}

before(async () => {
  if (noAdapter) return;
  const backend = await startBackend({ prefer: "webgpu", log: () => {} });
  assert.equal(backend.name, "webgpu", backend.reason);
});

type Case = ConvCase;

// Channel counts that are multiples of 4 take the vec4 shader, the others the scalar one.
const CASES: Case[] = [
  { batch: 1, height: 7, width: 9, inC: 3, outC: 8, k: 3, stride: 1, pad: "same" },
  { batch: 2, height: 9, width: 11, inC: 5, outC: 70, k: 3, stride: 2, pad: "same" },
  { batch: 2, height: 8, width: 8, inC: 6, outC: 10, k: 3, stride: 1, pad: "valid" },
  { batch: 3, height: 9, width: 10, inC: 4, outC: 12, k: 3, stride: 2, pad: "valid" },
  { batch: 2, height: 5, width: 6, inC: 12, outC: 9, k: 1, stride: 1, pad: "valid" },
  { batch: 2, height: 7, width: 7, inC: 8, outC: 12, k: 1, stride: 2, pad: "same" },
  { batch: 1, height: 13, width: 13, inC: 3, outC: 8, k: 7, stride: 2, pad: "same" },
  { batch: 2, height: 11, width: 9, inC: 3, outC: 5, k: 7, stride: 1, pad: "valid" },
  { batch: 1, height: 3, width: 3, inC: 512, outC: 16, k: 3, stride: 1, pad: "same" },
  { batch: 1, height: 2, width: 3, inC: 24, outC: 512, k: 3, stride: 1, pad: "same" },
  { batch: 2, height: 3, width: 2, inC: 130, outC: 70, k: 3, stride: 1, pad: "same" },
  { batch: 2, height: 6, width: 7, inC: 5, outC: 6, k: 3, stride: 1, pad: 1 },
  { batch: 2, height: 6, width: 5, inC: 4, outC: 8, k: 3, stride: 1, pad: [[0, 0], [1, 2], [0, 1], [0, 0]] },
  // Big reduction (n*h*w = 2048), small filter: split into slices summed by a second program.
  { batch: 2, height: 32, width: 32, inC: 3, outC: 64, k: 3, stride: 1, pad: "same" },
  { batch: 2, height: 31, width: 33, inC: 8, outC: 16, k: 3, stride: 1, pad: "same" },
];

// A few more drawn at random (fixed seed): odd sizes, channels 3 to 40, both strides and paddings.
const draw = makeRng(7);
const pick = <T>(items: T[]): T => items[Math.floor(draw() * items.length)]!;
for (let i = 0; i < 4; i++) {
  CASES.push({
    batch: pick([1, 2, 3]),
    height: pick([5, 6, 9, 12]),
    width: pick([4, 7, 10]),
    inC: pick([3, 4, 7, 16, 40]),
    outC: pick([1, 4, 6, 33]),
    k: pick([1, 3]),
    stride: pick([1, 2]),
    pad: pick<Pad>(["same", "valid"]),
  });
}

/** Conv2DBackpropFilter through the engine, with our kernel registered or the stock one. */
async function filterGrad(ours: boolean, x: tf.Tensor, dy: tf.Tensor, c: Case, dataFormat = "NHWC"): Promise<Float32Array> {
  // Registering again would reset the options a test chose: only when the stock kernel is in.
  if (ours && !webGpuConvKernelsRegistered()) registerWebGpuConvKernels();
  if (!ours) unregisterWebGpuConvKernels();
  const attrs = { filterShape: [c.k, c.k, c.inC, c.outC], strides: [c.stride, c.stride], pad: c.pad as tf.NamedAttrMap[string], dataFormat };
  const dw = tf.engine().runKernel("Conv2DBackpropFilter", { x, dy }, attrs) as tf.Tensor;
  assert.deepEqual(dw.shape, [c.k, c.k, c.inC, c.outC]);
  const values = (await dw.data()) as Float32Array;
  dw.dispose();
  return values;
}

function calls(): { fast: number; fallback: number } {
  return webGpuConvKernelCalls().Conv2DBackpropFilter;
}

const TOL = 1e-4;

test("startBackend registers our filter gradient on webgpu", { skip: noAdapter }, () => {
  assert.equal(tf.getBackend(), "webgpu");
  assert.ok(webGpuConvKernelsRegistered());
});

test("split-K: small filters over a big batch are cut into slices", () => {
  const shape = { batch: 32, inHeight: 224, inWidth: 224, inChannels: 3, outHeight: 224, outWidth: 224, outChannels: 64 };
  const vgg11 = planFilterGrad({ ...shape, filterHeight: 3, filterWidth: 3, strideHeight: 1, strideWidth: 1, padTop: 1, padLeft: 1 });
  assert.equal(vgg11.tilesM * vgg11.tilesN, 1);
  assert.ok(vgg11.splits >= DEFAULT_SPLIT.targetWorkgroups / 2, `${vgg11.splits} slices`);
  assert.ok(vgg11.splits * vgg11.kPerSplit >= vgg11.K && (vgg11.splits - 1) * vgg11.kPerSplit < vgg11.K);
  assert.equal(vgg11.kPerSplit % TILE_K, 0);
  // conv5 at 14x14: 576 tiles nearly fill a GPU already, so at most 2 slices.
  const conv5 = planFilterGrad({ ...shape, inHeight: 14, inWidth: 14, outHeight: 14, outWidth: 14, inChannels: 512, outChannels: 512, filterHeight: 3, filterWidth: 3, strideHeight: 1, strideWidth: 1, padTop: 1, padLeft: 1 });
  assert.equal(conv5.tilesM * conv5.tilesN, 576);
  assert.ok(conv5.splits <= 2, `${conv5.splits} slices`);
  // A reduction shorter than minKPerSplit is never cut.
  const tiny = planFilterGrad({ ...shape, batch: 2, inHeight: 8, inWidth: 8, outHeight: 8, outWidth: 8, filterHeight: 3, filterWidth: 3, strideHeight: 1, strideWidth: 1, padTop: 1, padLeft: 1 });
  assert.equal(tiny.splits, 1);
  assert.equal(tiny.kPerSplit, 128);
});

for (const c of CASES) {
  const name = `${c.batch}x${c.height}x${c.width}x${c.inC} -> ${c.outC}, ${c.k}x${c.k}, stride ${c.stride}, pad ${JSON.stringify(c.pad)}`;
  test(`filter gradient matches stock webgpu and a reference loop: ${name}`, { skip: noAdapter }, async () => {
    const xValues = randomValues(c.batch * c.height * c.width * c.inC, 1);
    const shapeOut = outShape(c);
    const dyValues = randomValues(shapeOut.reduce((a, b) => a * b, 1), 2);
    const expected = referenceConv(c, xValues, dyValues).dw;
    const x = tf.tensor4d(xValues, [c.batch, c.height, c.width, c.inC]);
    const dy = tf.tensor4d(dyValues, shapeOut);
    const before = calls();
    const ours = await filterGrad(true, x, dy, c);
    assert.deepEqual(calls(), { fast: before.fast + 1, fallback: before.fallback }, "took our kernel");
    const stock = await filterGrad(false, x, dy, c);
    registerWebGpuConvKernels();
    tf.dispose([x, dy]);
    const refErr = relError(ours, expected);
    assert.ok(refErr < TOL, `relative error ${refErr} against the reference loop`);
    const stockErr = relError(ours, stock);
    assert.ok(stockErr < TOL, `relative error ${stockErr} against the stock kernel`);
  });
}

test("forced split-K on shapes of every kind still matches the reference loop", { skip: noAdapter }, async () => {
  const split = { ...DEFAULT_SPLIT, targetWorkgroups: 64, minKPerSplit: 16 };
  registerWebGpuConvKernels({ split });
  try {
    for (const c of [CASES[1]!, CASES[3]!, CASES[12]!, CASES[16]!]) {
      const [, outHeight, outWidth] = outShape(c);
      const plan = planFilterGrad({ batch: c.batch, inHeight: c.height, inWidth: c.width, inChannels: c.inC, outHeight, outWidth, outChannels: c.outC, filterHeight: c.k, filterWidth: c.k, strideHeight: c.stride, strideWidth: c.stride, padTop: 0, padLeft: 0 }, split);
      assert.ok(plan.splits > 1, `${JSON.stringify(c)} is cut into ${plan.splits} slices`);
      const xValues = randomValues(c.batch * c.height * c.width * c.inC, 3);
      const shapeOut = outShape(c);
      const dyValues = randomValues(shapeOut.reduce((a, b) => a * b, 1), 4);
      const x = tf.tensor4d(xValues, [c.batch, c.height, c.width, c.inC]);
      const dy = tf.tensor4d(dyValues, shapeOut);
      const ours = await filterGrad(true, x, dy, c);
      tf.dispose([x, dy]);
      const err = relError(ours, referenceConv(c, xValues, dyValues).dw);
      assert.ok(err < TOL, `${JSON.stringify(c)}: relative error ${err}`);
    }
  } finally {
    registerWebGpuConvKernels(); // default split again
  }
});

test("tf.grad of a conv2d on webgpu goes through our kernel", { skip: noAdapter }, async () => {
  const c: Case = { batch: 2, height: 9, width: 9, inC: 3, outC: 4, k: 3, stride: 1, pad: "valid" };
  const xValues = randomValues(2 * 9 * 9 * 3, 5);
  const x = tf.tensor4d(xValues, [2, 9, 9, 3]);
  const w = tf.tensor4d(randomValues(3 * 3 * 3 * 4, 6), [3, 3, 3, 4]);
  const before = calls().fast;
  // d/dw of sum(conv(x, w) * 1) is the filter gradient with dy = 1.
  const grad = tf.grad((filter) => tf.conv2d(x, filter as tf.Tensor4D, 1, "valid").sum())(w);
  const values = await grad.data();
  assert.equal(calls().fast, before + 1);
  const expected = referenceConv(c, xValues, new Float32Array(2 * 7 * 7 * 4).fill(1)).dw;
  const err = relError(values, expected);
  tf.dispose([x, w, grad]);
  assert.ok(err < TOL, `relative error ${err}`);
});

test("NCHW goes to the stock kernel", { skip: noAdapter }, async () => {
  const c: Case = { batch: 1, height: 5, width: 5, inC: 2, outC: 3, k: 3, stride: 1, pad: "same" };
  const x = tf.tensor4d(randomValues(2 * 5 * 5, 7), [1, 2, 5, 5]);
  const dy = tf.tensor4d(randomValues(3 * 5 * 5, 8), [1, 3, 5, 5]);
  const before = calls();
  const dw = await filterGrad(true, x, dy, c, "NCHW");
  tf.dispose([x, dy]);
  assert.deepEqual(calls(), { fast: before.fast, fallback: before.fallback + 1 });
  assert.equal(dw.length, 3 * 3 * 2 * 3);
});
