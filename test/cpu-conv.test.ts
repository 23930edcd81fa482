import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { makeRng } from "../src/data/rng.ts";
import { referenceConv, relError, randomValues, outShape, type ConvCase } from "./conv-reference.ts";
import {
  CPU_CONV_KERNEL_NAMES,
  cpuConvKernelCalls,
  cpuConvKernelsRegistered,
  type CpuConvKernelName,
  registerCpuConvKernels,
  stockCpuConvKernel,
  unregisterCpuConvKernels,
} from "../src/backends/cpu/conv.ts";
import { gemm, microKernelKind, useMicroKernel } from "../src/backends/cpu/gemm.ts";
import { relaxedSimdAvailable } from "../src/backends/cpu/microkernel.ts";

await tf.setBackend("cpu");

interface Case extends ConvCase {
  /** False where the stock filter gradient (about 0.01 GFLOP/s) would take seconds. */
  stockFilter?: boolean;
}

const CASES: Case[] = [
  { batch: 1, height: 7, width: 7, inC: 3, outC: 8, k: 3, stride: 1, pad: "same" },
  { batch: 2, height: 9, width: 11, inC: 5, outC: 7, k: 3, stride: 2, pad: "same" },
  { batch: 2, height: 8, width: 8, inC: 6, outC: 10, k: 3, stride: 1, pad: "valid" },
  { batch: 3, height: 9, width: 10, inC: 4, outC: 6, k: 3, stride: 2, pad: "valid" },
  { batch: 2, height: 5, width: 6, inC: 12, outC: 9, k: 1, stride: 1, pad: "valid" },
  { batch: 2, height: 7, width: 7, inC: 8, outC: 12, k: 1, stride: 2, pad: "same" },
  { batch: 1, height: 13, width: 13, inC: 3, outC: 8, k: 7, stride: 2, pad: "same" },
  { batch: 2, height: 11, width: 9, inC: 3, outC: 5, k: 7, stride: 1, pad: "valid" },
  { batch: 1, height: 3, width: 3, inC: 512, outC: 16, k: 3, stride: 1, pad: "same" },
  { batch: 1, height: 2, width: 3, inC: 24, outC: 512, k: 3, stride: 1, pad: "same" },
  { batch: 2, height: 6, width: 7, inC: 5, outC: 6, k: 3, stride: 1, pad: 1 },
  { batch: 1, height: 8, width: 9, inC: 3, outC: 4, k: 3, stride: 2, pad: 2 },
  { batch: 2, height: 6, width: 5, inC: 4, outC: 5, k: 3, stride: 1, pad: [[0, 0], [1, 2], [0, 1], [0, 0]] },
  // Several im2col bands (7*7*64 = 3136 floats a row, 400 rows) and GEMM blocks in every dimension.
  { batch: 1, height: 20, width: 20, inC: 64, outC: 9, k: 7, stride: 1, pad: "same", stockFilter: false },
];

function randomTensor(shape: number[], seed: number): tf.Tensor {
  return tf.tensor(randomValues(shape.reduce((a, b) => a * b, 1), seed), shape);
}

/** Run fn with our kernels registered or with the stock ones, and return its values. */
function valuesWith(ours: boolean, fn: () => tf.Tensor): { values: Float32Array<ArrayBufferLike>; shape: number[] } {
  if (ours) registerCpuConvKernels();
  else unregisterCpuConvKernels();
  try {
    return tf.tidy(() => {
      const t = fn();
      return { values: t.dataSync() as Float32Array, shape: t.shape };
    });
  } finally {
    unregisterCpuConvKernels();
  }
}

const TOL = 1e-4;

// The WebAssembly micro-kernels this runtime has: FMA (relaxed SIMD) where it compiles, plain SIMD always.
const WASM_KINDS = relaxedSimdAvailable() ? (["wasm-fma", "wasm-simd"] as const) : (["wasm-simd"] as const);
// The default kernel, the one the tfjs kernels below use.
const DEFAULT_KIND = WASM_KINDS[0];

test("Node runs the fused multiply-add micro-kernel by default (Node 20 and later have relaxed SIMD)", () => {
  assert.ok(relaxedSimdAvailable(), "relaxed SIMD compiles (Node 20 with the flag set from the process)");
  assert.equal(microKernelKind(), process.env.FINALBN_FMA === "0" ? "wasm-simd" : "wasm-fma");
});

test("gemm adds A·B into C for strided operands, with either micro-kernel", () => {
  const rng = makeRng(5);
  // Edge tiles, and more than one cache block in every dimension (KC 256, MC 96, NC 1024).
  for (const [m, n, k] of [[1, 1, 1], [5, 7, 3], [97, 1030, 300], [130, 9, 513]]) {
    const a = Float32Array.from({ length: m * k }, () => rng() - 0.5); // stored transposed: k x m
    const b = Float32Array.from({ length: k * n }, () => rng() - 0.5); // row-major k x n
    const c0 = Float32Array.from({ length: m * n }, () => rng() - 0.5);
    const expected = Float64Array.from(c0);
    for (let i = 0; i < m; i++)
      for (let p = 0; p < k; p++) for (let j = 0; j < n; j++) expected[i * n + j] += a[p * m + i] * b[p * n + j];
    for (const kind of ["js", ...WASM_KINDS] as const) {
      useMicroKernel(kind);
      const c = Float32Array.from(c0);
      gemm({
        m, n, k,
        a: { data: a, offset: 0, rowStride: 1, colStride: m },
        b: { data: b, offset: 0, rowStride: n, colStride: 1 },
        c: { data: c, offset: 0, rowStride: n },
      });
      const err = relError(c, expected);
      assert.ok(err < 1e-6, `${kind} ${m}x${n}x${k}: relative error ${err}`);
    }
  }
  useMicroKernel(DEFAULT_KIND);
});

/** How many fast-path and fallback calls of one kernel fn makes. */
function countCalls(name: CpuConvKernelName, fn: () => void): { fast: number; fallback: number } {
  const before = cpuConvKernelCalls()[name];
  fn();
  const after = cpuConvKernelCalls()[name];
  return { fast: after.fast - before.fast, fallback: after.fallback - before.fallback };
}

for (const c of CASES) {
  const name = `${c.batch}x${c.height}x${c.width}x${c.inC} -> ${c.outC}, ${c.k}x${c.k}, stride ${c.stride}, pad ${JSON.stringify(c.pad)}`;
  test(`conv kernels match stock and a reference loop: ${name}`, () => {
    const x = randomTensor([c.batch, c.height, c.width, c.inC], 1);
    const w = randomTensor([c.k, c.k, c.inC, c.outC], 2);
    const dy = randomTensor(outShape(c), 3);
    const ref = referenceConv(c, x.dataSync(), dy.dataSync(), w.dataSync());
    const engine = tf.engine();
    const strides: [number, number] = [c.stride, c.stride];
    const pad = c.pad as tf.NamedAttrMap[string];
    const kernels = {
      forward: () => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, c.stride, c.pad),
      input: () => engine.runKernel("Conv2DBackpropInput", { dy, filter: w }, { inputShape: x.shape, strides, pad, dataFormat: "NHWC" }) as tf.Tensor,
      filter: () => engine.runKernel("Conv2DBackpropFilter", { x, dy }, { filterShape: w.shape, strides, pad, dataFormat: "NHWC" }) as tf.Tensor,
    };
    const expected = { forward: ref.y, input: ref.dx, filter: ref.dw };
    const kernelName = { forward: "Conv2D", input: "Conv2DBackpropInput", filter: "Conv2DBackpropFilter" } as const;
    for (const kind of ["forward", "input", "filter"] as const) {
      // The plain-JS and other micro-kernels first, then the default one (compared with stock too).
      for (const other of ["js", ...WASM_KINDS.slice(1)] as const) {
        useMicroKernel(other);
        const oursOther = valuesWith(true, kernels[kind]);
        useMicroKernel(DEFAULT_KIND);
        const otherErr = relError(oursOther.values, expected[kind]);
        assert.ok(otherErr < TOL, `${kind}, ${other} micro-kernel: relative error ${otherErr} against the reference loop`);
      }
      let ours = { values: new Float32Array(0) as Float32Array<ArrayBufferLike>, shape: [] as number[] };
      const counted = countCalls(kernelName[kind], () => (ours = valuesWith(true, kernels[kind])));
      assert.deepEqual(counted, { fast: 1, fallback: 0 }, `${kind} took the fast path`);
      const refErr = relError(ours.values, expected[kind]);
      assert.ok(refErr < TOL, `${kind}: relative error ${refErr} against the reference loop`);
      if (kind === "filter" && c.stockFilter === false) continue;
      const stock = valuesWith(false, kernels[kind]);
      assert.deepEqual(ours.shape, stock.shape);
      const stockErr = relError(ours.values, stock.values);
      assert.ok(stockErr < TOL, `${kind}: relative error ${stockErr} against the stock kernel`);
    }
    tf.dispose([x, w, dy]);
  });
}

test("FusedConv2D: bias and every fusable activation match the stock kernel", () => {
  const x = randomTensor([2, 9, 8, 5], 11) as tf.Tensor4D;
  const w = randomTensor([3, 3, 5, 6], 12) as tf.Tensor4D;
  const bias = randomTensor([6], 13);
  const alpha = randomTensor([6], 14);
  const variants: Parameters<typeof tf.fused.conv2d>[0][] = [
    { x, filter: w, strides: 1, pad: "same" },
    { x, filter: w, strides: 2, pad: "valid", bias, activation: "relu" },
    { x, filter: w, strides: 1, pad: "same", bias: tf.scalar(0.3), activation: "relu6" },
    { x, filter: w, strides: 1, pad: "same", bias, activation: "elu" },
    { x, filter: w, strides: 2, pad: "same", bias, activation: "sigmoid" },
    { x, filter: w, strides: 1, pad: "valid", bias, activation: "leakyrelu", leakyreluAlpha: 0.1 },
    { x, filter: w, strides: 1, pad: "same", bias, activation: "prelu", preluActivationWeights: alpha }, // stock fallback
  ];
  for (const args of variants) {
    let ours = { values: new Float32Array(0) as Float32Array<ArrayBufferLike>, shape: [] as number[] };
    const counted = countCalls("FusedConv2D", () => (ours = valuesWith(true, () => tf.fused.conv2d(args))));
    const expectFast = args.activation !== "prelu";
    assert.deepEqual(counted, { fast: expectFast ? 1 : 0, fallback: expectFast ? 0 : 1 }, args.activation);
    const stock = valuesWith(false, () => tf.fused.conv2d(args));
    assert.deepEqual(ours.shape, stock.shape);
    const err = relError(ours.values, stock.values);
    assert.ok(err < TOL, `${args.activation ?? "linear"}: relative error ${err}`);
  }
  tf.dispose([x, w, bias, alpha]);
});

test("NCHW and dilated convolutions fall back to the stock kernel and still agree", () => {
  const x = randomTensor([2, 9, 9, 4], 21) as tf.Tensor4D;
  const w = randomTensor([3, 3, 4, 5], 22) as tf.Tensor4D;
  const xNchw = tf.transpose(x, [0, 3, 1, 2]) as tf.Tensor4D;
  const dilated = () => tf.conv2d(x, w, 1, "same", "NHWC", 2);
  const nchw = () => tf.conv2d(xNchw, w, 2, "same", "NCHW");
  for (const op of [dilated, nchw]) {
    let ours = { values: new Float32Array(0) as Float32Array<ArrayBufferLike>, shape: [] as number[] };
    assert.deepEqual(countCalls("Conv2D", () => (ours = valuesWith(true, op))), { fast: 0, fallback: 1 });
    const err = relError(ours.values, valuesWith(false, op).values);
    assert.ok(err < TOL, `relative error ${err}`);
  }
  tf.dispose([x, w, xNchw]);
});

test("gradients of a small conv net through tf.grads agree with the stock kernels", () => {
  const x = randomTensor([2, 12, 12, 3], 31) as tf.Tensor4D;
  const w1 = randomTensor([3, 3, 3, 8], 32) as tf.Tensor4D;
  const b1 = randomTensor([8], 33);
  const w2 = randomTensor([3, 3, 8, 16], 34) as tf.Tensor4D;
  const w3 = randomTensor([1, 1, 16, 4], 35) as tf.Tensor4D;
  const target = randomTensor([2, 6, 6, 4], 36);
  const loss = (x: tf.Tensor, w1: tf.Tensor, b1: tf.Tensor, w2: tf.Tensor, w3: tf.Tensor) => {
    const h1 = tf.fused.conv2d({ x: x as tf.Tensor4D, filter: w1 as tf.Tensor4D, strides: 1, pad: "same", bias: b1 });
    const h2 = tf.relu(tf.conv2d(tf.relu(h1), w2 as tf.Tensor4D, 2, "same"));
    const out = tf.conv2d(h2 as tf.Tensor4D, w3 as tf.Tensor4D, 1, "valid");
    return tf.sum(tf.square(tf.sub(out, target)));
  };
  const grads = (ours: boolean) =>
    [0, 1, 2, 3, 4].map((i) => valuesWith(ours, () => tf.grads(loss)([x, w1, b1, w2, w3])[i]).values);
  let ours: Float32Array[] = [];
  const counted = countCalls("Conv2DBackpropFilter", () => (ours = grads(true)));
  assert.ok(counted.fast > 0 && counted.fallback === 0, `filter gradients took the fast path: ${JSON.stringify(counted)}`);
  const stock = grads(false);
  for (let i = 0; i < ours.length; i++) {
    const err = relError(ours[i], stock[i]);
    assert.ok(err < TOL, `gradient ${i}: relative error ${err}`);
  }
  tf.dispose([x, w1, b1, w2, w3, target]);
});

test("a tf.layers conv model predicts and trains the same with our kernels", () => {
  const build = () => {
    const model = tf.sequential({
      layers: [
        tf.layers.conv2d({ inputShape: [10, 10, 3], filters: 6, kernelSize: 3, padding: "same", activation: "relu", kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) }),
        tf.layers.conv2d({ filters: 4, kernelSize: 3, strides: 2, activation: "relu", kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }),
        tf.layers.flatten(),
        tf.layers.dense({ units: 2, kernelInitializer: tf.initializers.glorotUniform({ seed: 3 }) }),
      ],
    });
    return model;
  };
  const model = build();
  const x = randomTensor([3, 10, 10, 3], 41);
  const predict = () => model.predict(x) as tf.Tensor;
  let ours = { values: new Float32Array(0) as Float32Array<ArrayBufferLike>, shape: [] as number[] };
  // Outside gradient recording, tf.layers.conv2d dispatches FusedConv2D with bias and relu.
  assert.deepEqual(countCalls("FusedConv2D", () => (ours = valuesWith(true, predict))), { fast: 2, fallback: 0 });
  const err = relError(ours.values, valuesWith(false, predict).values);
  assert.ok(err < TOL, `predict: relative error ${err}`);
  // Under gradient recording, layers run conv + bias + relu unfused: Conv2D and both backprops.
  const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const gradient = (ours: boolean, i: number) =>
    valuesWith(ours, () => {
      const lossFn = () => tf.sum(tf.square(model.apply(x, { training: true }) as tf.Tensor)) as tf.Scalar;
      return tf.variableGrads(lossFn, variables).grads[variables[i].name];
    }).values;
  for (let i = 0; i < variables.length; i++) {
    const err = relError(gradient(true, i), gradient(false, i));
    assert.ok(err < TOL, `${variables[i].name}: relative error ${err}`);
  }
  model.dispose();
  x.dispose();
});

test("register and unregister swap the kernels and restore the stock ones", () => {
  const stock = CPU_CONV_KERNEL_NAMES.map((name) => tf.getKernel(name, "cpu").kernelFunc);
  registerCpuConvKernels();
  registerCpuConvKernels(); // idempotent
  assert.equal(cpuConvKernelsRegistered(), true);
  CPU_CONV_KERNEL_NAMES.forEach((name, i) => {
    assert.notEqual(tf.getKernel(name, "cpu").kernelFunc, stock[i], name);
    assert.equal(stockCpuConvKernel(name), stock[i], name);
  });
  unregisterCpuConvKernels();
  assert.equal(cpuConvKernelsRegistered(), false);
  CPU_CONV_KERNEL_NAMES.forEach((name, i) => assert.equal(tf.getKernel(name, "cpu").kernelFunc, stock[i], name));
});
