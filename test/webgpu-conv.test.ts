// Our webgpu convolution kernels (src/backends/webgpu/conv.ts: Conv2D, FusedConv2D,
// Conv2DBackpropInput, Conv2DBackpropFilter) against tfjs's stock webgpu kernels and a plain float64
// loop, in its own process. Runs wherever Dawn finds a Vulkan adapter (CI installs Mesa's lavapipe
// with .ci/lavapipe.sh); elsewhere it is skipped with the reason.
// Values are read with `await t.data()`: dataSync() fails on webgpu in Node.
// Shader compiles are slow on lavapipe: our shaders are keyed by kernel kind, which channel counts
// are multiples of 4 and the fused epilogue only, so the many cases below share 17 of them.
import { before, test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { makeRng } from "../src/data/rng.ts";
import { outShape, randomValues, referenceConv, relError, type ConvCase, type Pad } from "./conv-reference.ts";
import { startBackend } from "../src/backends/index.ts";
import { probeWebGpu } from "../src/backends/webgpu/backend.ts";
import {
  activeWebGpuConvKernels,
  DEFAULT_WEBGPU_CONV_KERNELS,
  registerWebGpuConvKernels,
  stockWebGpuConvKernel,
  unregisterWebGpuConvKernels,
  WEBGPU_CONV_KERNEL_NAMES,
  webGpuConvKernelCalls,
  webGpuConvKernelsRegistered,
  type WebGpuConvKernelName,
  type WebGpuConvOptions,
} from "../src/backends/webgpu/conv.ts";
import { DEFAULT_SPLIT, planFilterGrad } from "../src/backends/webgpu/split-k.ts";
import { planGemm, TILE_K } from "../src/backends/webgpu/conv-gemm.ts";

delete process.env.FINALBN_BACKEND;

let noAdapter: string | undefined;
try {
  await probeWebGpu({ timeoutMs: 30_000 });
} catch (error) {
  noAdapter = `no WebGPU adapter here: ${(error as Error).message}`;
  console.log(`skipping webgpu conv tests: ${noAdapter}`);
}

// All four of ours, on every shape (the default leaves some shapes to the faster stock kernels).
const ALL_OURS: WebGpuConvOptions = { kernels: WEBGPU_CONV_KERNEL_NAMES, everyShape: true };
let activeAtStart: WebGpuConvKernelName[] = [];

before(async () => {
  if (noAdapter) return;
  const backend = await startBackend({ prefer: "webgpu", log: () => {} });
  assert.equal(backend.name, "webgpu", backend.reason);
  activeAtStart = activeWebGpuConvKernels();
  registerWebGpuConvKernels(ALL_OURS);
});

type Case = ConvCase;

// Channel counts that are multiples of 4 are read and written as vec4, the others one float at a
// time: the cases cover all four combinations of input and output channels.
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

/** Our kernels in (as ALL_OURS, unless a test chose other options) or the stock ones. */
function useOurs(ours: boolean): void {
  // Registering again would reset the options a test chose: only when the stock kernels are in.
  if (ours && !webGpuConvKernelsRegistered()) registerWebGpuConvKernels(ALL_OURS);
  if (!ours) unregisterWebGpuConvKernels();
}

/** Conv2DBackpropFilter through the engine, with our kernel registered or the stock one. */
async function filterGrad(ours: boolean, x: tf.Tensor, dy: tf.Tensor, c: Case, dataFormat = "NHWC"): Promise<Float32Array> {
  useOurs(ours);
  const attrs = { filterShape: [c.k, c.k, c.inC, c.outC], strides: [c.stride, c.stride], pad: c.pad as tf.NamedAttrMap[string], dataFormat };
  const dw = tf.engine().runKernel("Conv2DBackpropFilter", { x, dy }, attrs) as tf.Tensor;
  assert.deepEqual(dw.shape, [c.k, c.k, c.inC, c.outC]);
  const values = (await dw.data()) as Float32Array;
  dw.dispose();
  return values;
}

function calls(name: WebGpuConvKernelName = "Conv2DBackpropFilter"): { fast: number; fallback: number } {
  return webGpuConvKernelCalls()[name];
}

/** Values of a kernel's output, disposing it. */
async function readAndDispose(t: tf.TensorInfo): Promise<Float32Array> {
  const tensor = t as tf.Tensor;
  const out = (await tensor.data()) as Float32Array;
  tensor.dispose();
  return out;
}

const convAttrs = (c: Case) => ({ strides: [c.stride, c.stride], pad: c.pad as tf.NamedAttrMap[string], dataFormat: "NHWC", dilations: [1, 1] });

/** One case's forward pass, fused forward pass (bias, relu) and input gradient, each through the engine. */
const OPS = {
  forward: {
    kernel: "Conv2D",
    run: (c: Case, t: CaseTensors) => tf.engine().runKernel("Conv2D", { x: t.x, filter: t.w }, convAttrs(c)),
  },
  "fused forward with bias and relu": {
    kernel: "FusedConv2D",
    run: (c: Case, t: CaseTensors) =>
      tf.engine().runKernel("FusedConv2D", { x: t.x, filter: t.w, bias: t.bias }, { ...convAttrs(c), activation: "relu" }),
  },
  "input gradient": {
    kernel: "Conv2DBackpropInput",
    run: (c: Case, t: CaseTensors) =>
      tf.engine().runKernel("Conv2DBackpropInput", { dy: t.dy, filter: t.w }, { ...convAttrs(c), inputShape: t.x.shape }),
  },
} satisfies Record<string, { kernel: WebGpuConvKernelName; run: (c: Case, t: CaseTensors) => tf.TensorInfo | tf.TensorInfo[] }>;

interface CaseTensors {
  x: tf.Tensor4D;
  w: tf.Tensor4D;
  bias: tf.Tensor1D;
  dy: tf.Tensor4D;
}

/** Seeded inputs of one case and what the float64 loop makes of them. */
function caseData(c: Case) {
  const x = randomValues(c.batch * c.height * c.width * c.inC, 11);
  const w = randomValues(c.k * c.k * c.inC * c.outC, 12);
  const bias = randomValues(c.outC, 13);
  const shapeOut = outShape(c);
  const dy = randomValues(shapeOut.reduce((a, b) => a * b, 1), 14);
  const ref = referenceConv(c, x, dy, w);
  const fused = ref.y.map((v, i) => Math.max(0, v + bias[i % c.outC]!));
  const expected = { forward: ref.y, "fused forward with bias and relu": fused, "input gradient": ref.dx };
  const tensors = (): CaseTensors => ({
    x: tf.tensor4d(x, [c.batch, c.height, c.width, c.inC]),
    w: tf.tensor4d(w, [c.k, c.k, c.inC, c.outC]),
    bias: tf.tensor1d(bias),
    dy: tf.tensor4d(dy, shapeOut),
  });
  return { expected, tensors };
}

const TOL = 1e-4;

test("startBackend registers the default set of our kernels on webgpu", { skip: noAdapter }, () => {
  assert.equal(tf.getBackend(), "webgpu");
  assert.ok(DEFAULT_WEBGPU_CONV_KERNELS.includes("Conv2DBackpropFilter"));
  assert.deepEqual(activeAtStart, WEBGPU_CONV_KERNEL_NAMES.filter((name) => DEFAULT_WEBGPU_CONV_KERNELS.includes(name)));
});

test("a subset of our kernels can be registered, and unregistering brings every stock kernel back", { skip: noAdapter }, () => {
  const registeredFunc = (name: WebGpuConvKernelName) => tf.getKernel(name, "webgpu")!.kernelFunc;
  try {
    registerWebGpuConvKernels({ kernels: ["Conv2D", "Conv2DBackpropFilter"] });
    assert.deepEqual(activeWebGpuConvKernels(), ["Conv2D", "Conv2DBackpropFilter"]);
    assert.notEqual(registeredFunc("Conv2D"), stockWebGpuConvKernel("Conv2D"));
    assert.equal(registeredFunc("FusedConv2D"), stockWebGpuConvKernel("FusedConv2D"));
    assert.equal(registeredFunc("Conv2DBackpropInput"), stockWebGpuConvKernel("Conv2DBackpropInput"));
    registerWebGpuConvKernels({ kernels: ["Conv2DBackpropInput"] }); // a different subset replaces the first
    assert.deepEqual(activeWebGpuConvKernels(), ["Conv2DBackpropInput"]);
    assert.equal(registeredFunc("Conv2D"), stockWebGpuConvKernel("Conv2D"));
    unregisterWebGpuConvKernels();
    assert.ok(!webGpuConvKernelsRegistered());
    for (const name of WEBGPU_CONV_KERNEL_NAMES) assert.equal(registeredFunc(name), stockWebGpuConvKernel(name), name);
    registerWebGpuConvKernels(ALL_OURS);
    for (const name of WEBGPU_CONV_KERNEL_NAMES) assert.notEqual(registeredFunc(name), stockWebGpuConvKernel(name), name);
  } finally {
    registerWebGpuConvKernels(ALL_OURS);
  }
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
    useOurs(true);
    tf.dispose([x, dy]);
    const refErr = relError(ours, expected);
    assert.ok(refErr < TOL, `relative error ${refErr} against the reference loop`);
    const stockErr = relError(ours, stock);
    assert.ok(stockErr < TOL, `relative error ${stockErr} against the stock kernel`);
  });
}

for (const c of CASES) {
  const name = `${c.batch}x${c.height}x${c.width}x${c.inC} -> ${c.outC}, ${c.k}x${c.k}, stride ${c.stride}, pad ${JSON.stringify(c.pad)}`;
  for (const [opName, op] of Object.entries(OPS)) {
    test(`${opName} matches stock webgpu and a reference loop: ${name}`, { skip: noAdapter }, async () => {
      const { expected, tensors } = caseData(c);
      const t = tensors();
      const before = calls(op.kernel);
      useOurs(true);
      const ours = await readAndDispose(op.run(c, t) as tf.TensorInfo);
      assert.deepEqual(calls(op.kernel), { fast: before.fast + 1, fallback: before.fallback }, "took our kernel");
      useOurs(false);
      const stock = await readAndDispose(op.run(c, t) as tf.TensorInfo);
      useOurs(true);
      tf.dispose(Object.values(t));
      const refErr = relError(ours, expected[opName as keyof typeof expected]);
      assert.ok(refErr < TOL, `relative error ${refErr} against the reference loop`);
      const stockErr = relError(ours, stock);
      assert.ok(stockErr < TOL, `relative error ${stockErr} against the stock kernel`);
    });
  }
}

test("forced split-K on shapes of every kind still matches the reference loop", { skip: noAdapter }, async () => {
  const split = { ...DEFAULT_SPLIT, targetWorkgroups: 64, minKPerSplit: 16 };
  registerWebGpuConvKernels({ ...ALL_OURS, split });
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
    // The input gradient: a long reduction (kh*kw*outC = 9*512) over few input pixels.
    const c: Case = { batch: 1, height: 2, width: 3, inC: 24, outC: 512, k: 3, stride: 1, pad: "same" };
    const plan = planGemm("inputGrad", { batch: 1, inHeight: 2, inWidth: 3, inChannels: 24, outHeight: 2, outWidth: 3, outChannels: 512, filterHeight: 3, filterWidth: 3, strideHeight: 1, strideWidth: 1, padTop: 1, padLeft: 1 }, split);
    assert.ok(plan.splits > 1, `the input gradient is cut into ${plan.splits} slices`);
    const { expected, tensors } = caseData(c);
    const t = tensors();
    const before = calls("Conv2DBackpropInput").fast;
    const dx = await readAndDispose(OPS["input gradient"].run(c, t) as tf.TensorInfo);
    tf.dispose(Object.values(t));
    assert.equal(calls("Conv2DBackpropInput").fast, before + 1);
    const err = relError(dx, expected["input gradient"]);
    assert.ok(err < TOL, `split input gradient: relative error ${err}`);
  } finally {
    registerWebGpuConvKernels(ALL_OURS); // default split again
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

test("what ours do not cover goes to the stock kernels, with the stock results", { skip: noAdapter }, async () => {
  const c: Case = { batch: 1, height: 6, width: 5, inC: 4, outC: 8, k: 3, stride: 1, pad: "same" };
  const { tensors } = caseData(c);
  const t = tensors();
  const alpha = tf.tensor1d(randomValues(c.outC, 15));
  const fused = (attrs: tf.NamedAttrMap, inputs: tf.NamedTensorMap = {}) => () =>
    tf.engine().runKernel("FusedConv2D", { x: t.x, filter: t.w, bias: t.bias, ...inputs }, { ...convAttrs(c), ...attrs });
  const oddBias = tf.tensor1d([0.5]);
  const cases: [string, WebGpuConvKernelName, () => tf.TensorInfo | tf.TensorInfo[]][] = [
    ["leakyrelu", "FusedConv2D", fused({ activation: "leakyrelu", leakyreluAlpha: 0.2 })],
    ["elu", "FusedConv2D", fused({ activation: "elu" })],
    ["relu6", "FusedConv2D", fused({ activation: "relu6" })],
    ["sigmoid", "FusedConv2D", fused({ activation: "sigmoid" })],
    ["prelu", "FusedConv2D", fused({ activation: "prelu" }, { preluActivationWeights: alpha })],
    ["a bias of shape [1]", "FusedConv2D", fused({ activation: "relu" }, { bias: oddBias })],
    ["dilation 2", "Conv2D", () => tf.engine().runKernel("Conv2D", { x: t.x, filter: t.w }, { ...convAttrs(c), dilations: [2, 2] })],
  ];
  try {
    for (const [what, kernel, run] of cases) {
      const before = calls(kernel);
      useOurs(true);
      const ours = await readAndDispose(run() as tf.TensorInfo);
      assert.deepEqual(calls(kernel), { fast: before.fast, fallback: before.fallback + 1 }, what);
      useOurs(false);
      const stock = await readAndDispose(run() as tf.TensorInfo);
      assert.deepEqual(ours, stock, what);
    }
  } finally {
    useOurs(true);
    tf.dispose([...Object.values(t), alpha, oddBias]);
  }
});

// Where stock is faster (stockIsFaster in webgpu/conv.ts), the default hands the call over.
const STOCK_BY_DEFAULT: { why: string; c: Case; ops: string[] }[] = [
  { why: "narrow products (8 output, 4 input channels)", c: { batch: 1, height: 6, width: 5, inC: 4, outC: 8, k: 3, stride: 1, pad: "same" }, ops: ["forward", "fused forward with bias and relu", "input gradient"] },
  { why: "a strided input gradient", c: { batch: 2, height: 9, width: 9, inC: 36, outC: 40, k: 3, stride: 2, pad: "same" }, ops: ["input gradient"] },
  { why: "an input gradient of fewer pixels than a tile has rows", c: { batch: 1, height: 3, width: 4, inC: 36, outC: 40, k: 3, stride: 1, pad: "same" }, ops: ["input gradient"] },
];

for (const { why, c, ops } of STOCK_BY_DEFAULT) {
  test(`by default, ${why} go to the stock kernels`, { skip: noAdapter }, async () => {
    const { expected, tensors } = caseData(c);
    const t = tensors();
    registerWebGpuConvKernels({ kernels: WEBGPU_CONV_KERNEL_NAMES });
    try {
      for (const opName of ops) {
        const op = OPS[opName as keyof typeof OPS];
        const before = calls(op.kernel);
        const out = await readAndDispose(op.run(c, t) as tf.TensorInfo);
        assert.deepEqual(calls(op.kernel), { fast: before.fast, fallback: before.fallback + 1 }, opName);
        const err = relError(out, expected[opName as keyof typeof expected]);
        assert.ok(err < TOL, `${opName}: relative error ${err}`);
      }
    } finally {
      registerWebGpuConvKernels(ALL_OURS);
      tf.dispose(Object.values(t));
    }
  });
}

// tf.layers.conv2d fuses bias and activation into FusedConv2D, except that while gradients are
// recorded tfjs fuses only a linear activation: a ReLU layer then runs Conv2D, Add and Relu. The
// gradient of FusedConv2D computes the input gradient even where nothing needs it.
test("a training step of tf.layers.conv2d runs our kernels", { skip: noAdapter }, async () => {
  const x = tf.tensor4d(randomValues(2 * 7 * 7 * 3, 16), [2, 7, 7, 3]);
  const expected = {
    linear: { Conv2D: 0, FusedConv2D: 1, Conv2DBackpropInput: 1, Conv2DBackpropFilter: 1 },
    relu: { Conv2D: 1, FusedConv2D: 0, Conv2DBackpropInput: 0, Conv2DBackpropFilter: 1 },
  };
  for (const activation of ["linear", "relu"] as const) {
    const layer = tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: "same", activation, kernelInitializer: "glorotUniform" });
    (layer.apply(x) as tf.Tensor).dispose(); // builds the layer: its kernel and bias
    const weights = layer.trainableWeights.map((w) => w.read() as tf.Variable);
    const before = webGpuConvKernelCalls();
    const { value, grads } = tf.variableGrads(() => (layer.apply(x) as tf.Tensor).square().mean() as tf.Scalar, weights);
    await value.data();
    const after = webGpuConvKernelCalls();
    const fast = Object.fromEntries(WEBGPU_CONV_KERNEL_NAMES.map((name) => [name, after[name].fast - before[name].fast]));
    assert.deepEqual(fast, expected[activation], activation);
    assert.deepEqual(Object.keys(grads).length, 2, "kernel and bias");
    tf.dispose([value, ...Object.values(grads)]);
    layer.dispose();
  }
  x.dispose();
});
