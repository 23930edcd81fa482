import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { makeRng } from "../src/data/rng.ts";
import {
  CPU_ELEMENTWISE_KERNEL_NAMES,
  cpuElementwiseKernelCalls,
  cpuElementwiseKernelsRegistered,
  type CpuElementwiseKernelName,
  registerCpuElementwiseKernels,
  stockCpuElementwiseKernel,
  unregisterCpuElementwiseKernels,
} from "../src/backends/cpu/elementwise.ts";
import { rowBroadcast, wholeTileCount } from "../src/backends/cpu/broadcast.ts";
import { reductionBlock } from "../src/backends/cpu/reduce.ts";

await tf.setBackend("cpu");

const SPECIALS = [0, -0, NaN, Infinity, -Infinity];

/** Values in [-1, 1), with a few zeros, NaNs and infinities unless `plain`; `levels` makes small integers (ties). */
function randomTensor(shape: number[], seed: number, options: { plain?: boolean; levels?: number; dtype?: "float32" | "int32" } = {}): tf.Tensor {
  const rng = makeRng(seed);
  const size = shape.reduce((a, b) => a * b, 1);
  const values = Array.from({ length: size }, () => {
    if (!options.plain && rng() < 0.03) return SPECIALS[Math.floor(rng() * SPECIALS.length)];
    if (options.levels) return Math.floor(rng() * options.levels);
    return rng() * 2 - 1;
  });
  if (options.dtype === "int32") return tf.tensor(values.map((v) => (Number.isFinite(v) ? Math.round(v * 10) : 0)), shape, "int32");
  return tf.tensor(Float32Array.from(values), shape);
}

interface Result {
  shape: number[];
  dtype: string;
  values: ArrayLike<number>;
}

function read(t: tf.Tensor): Result {
  const result = { shape: t.shape, dtype: t.dtype, values: t.dataSync() as ArrayLike<number> };
  t.dispose();
  return result;
}

/** Run a kernel with ours registered; also say whether it took the fast path. */
function runOurs(name: CpuElementwiseKernelName, inputs: tf.NamedTensorMap, attrs: tf.NamedAttrMap = {}): Result & { path: "fast" | "fallback" } {
  assert.ok(cpuElementwiseKernelsRegistered());
  const before = cpuElementwiseKernelCalls()[name];
  const out = tf.engine().runKernel(name, inputs, attrs) as tf.Tensor;
  const after = cpuElementwiseKernelCalls()[name];
  const fast = after.fast - before.fast;
  const fallback = after.fallback - before.fallback;
  assert.equal(fast + fallback, 1, `${name}: one call counted`);
  return { ...read(out), path: fast === 1 ? "fast" : "fallback" };
}

function runStock(name: CpuElementwiseKernelName, inputs: tf.NamedTensorMap, attrs: tf.NamedAttrMap = {}): Result {
  const info = stockCpuElementwiseKernel(name)({ inputs, backend: tf.backend(), attrs }) as tf.TensorInfo;
  return read(tf.engine().makeTensorFromTensorInfo(info));
}

/** Bit-for-bit the same, NaN and the sign of zero included. */
function assertSame(actual: Result, expected: Result, label: string): void {
  assert.deepEqual(actual.shape, expected.shape, `${label}: shape`);
  assert.equal(actual.dtype, expected.dtype, `${label}: dtype`);
  assert.equal(actual.values.length, expected.values.length, `${label}: size`);
  for (let i = 0; i < expected.values.length; i++) {
    if (!Object.is(actual.values[i], expected.values[i])) {
      assert.fail(`${label}: element ${i} is ${actual.values[i]}, stock kernel gives ${expected.values[i]}`);
    }
  }
}

/** Ours against the stock kernel on the same inputs, and which path ours took. */
function check(name: CpuElementwiseKernelName, inputs: tf.NamedTensorMap, attributes: object, path: "fast" | "fallback", label: string) {
  // tfjs ops pass null or undefined for absent attributes (axis: null means all axes); its types do not say so.
  const attrs = attributes as tf.NamedAttrMap;
  const ours = runOurs(name, inputs, attrs);
  assertSame(ours, runStock(name, inputs, attrs), `${name} ${label}`);
  assert.equal(ours.path, path, `${name} ${label}: expected the ${path} path`);
}

test("register and unregister swap the kernels and are safe to repeat", () => {
  const stock = tf.getKernel("Multiply", "cpu")!.kernelFunc;
  registerCpuElementwiseKernels();
  registerCpuElementwiseKernels();
  assert.ok(cpuElementwiseKernelsRegistered());
  for (const name of CPU_ELEMENTWISE_KERNEL_NAMES) assert.notEqual(tf.getKernel(name, "cpu")!.kernelFunc, stockCpuElementwiseKernel(name));
  unregisterCpuElementwiseKernels();
  unregisterCpuElementwiseKernels();
  assert.equal(tf.getKernel("Multiply", "cpu")!.kernelFunc, stock);
  registerCpuElementwiseKernels();
});

test("pattern helpers: which shapes take the fast path", () => {
  assert.deepEqual(rowBroadcast([16, 32, 32, 8], [1, 1, 1, 8]), { outShape: [16, 32, 32, 8], big: "a" });
  assert.deepEqual(rowBroadcast([8], [16, 32, 32, 8]), { outShape: [16, 32, 32, 8], big: "b" });
  assert.deepEqual(rowBroadcast([], [2, 3]), { outShape: [2, 3], big: "b" });
  assert.equal(rowBroadcast([16, 1], [16, 2]), undefined);
  assert.equal(rowBroadcast([2, 3], [4, 3, 2]), undefined); // does not broadcast at all
  assert.deepEqual(reductionBlock([16, 32, 32, 8], [0, 1, 2], true), { outer: 1, reduce: 16384, inner: 8, outShape: [1, 1, 1, 8] });
  assert.deepEqual(reductionBlock([16, 4, 4, 8], [1, 2], false), { outer: 16, reduce: 16, inner: 8, outShape: [16, 8] });
  assert.equal(reductionBlock([2, 3, 4], [0, 2], false), undefined);
  assert.equal(wholeTileCount([1, 1, 1, 8], [16, 32, 32, 1]), 16 * 32 * 32);
  assert.equal(wholeTileCount([2, 3], [1, 2]), undefined);
});

const BINARY_FAST: [string, number[], number[]][] = [
  ["same shape", [2, 3, 4, 5], [2, 3, 4, 5]],
  ["same size, other rank", [1, 6], [6]],
  ["scalar b", [2, 3, 4, 5], []],
  ["scalar a", [], [2, 3, 4, 5]],
  ["[1] b", [3, 7], [1]],
  ["[C] b", [2, 3, 4, 5], [5]],
  ["[C] a", [5], [2, 3, 4, 5]],
  ["[1,1,1,C] b", [2, 3, 4, 5], [1, 1, 1, 5]],
  ["[1,1,1,C] a", [1, 1, 1, 5], [2, 3, 4, 5]],
  ["[1,C] with [N,C]", [1, 9], [6, 9]],
  ["[H,W,C] with [N,H,W,C]", [3, 4, 5], [2, 3, 4, 5]],
];
const BINARY_FALLBACK: [string, number[], number[]][] = [
  ["middle broadcast", [2, 1, 4, 5], [2, 3, 4, 5]],
  ["trailing broadcast", [16, 1], [16, 2]],
  ["both broadcast", [4, 1], [1, 5]],
];

for (const op of ["Add", "Sub", "Multiply", "RealDiv"] as const) {
  test(`${op}: fast patterns and fallbacks match the stock kernel exactly`, () => {
    registerCpuElementwiseKernels();
    let seed = 1;
    for (const [label, aShape, bShape] of BINARY_FAST) {
      const a = randomTensor(aShape, seed++);
      const b = randomTensor(bShape, seed++);
      check(op, { a, b }, {}, "fast", label);
      tf.dispose([a, b]);
    }
    for (const [label, aShape, bShape] of BINARY_FALLBACK) {
      const a = randomTensor(aShape, seed++);
      const b = randomTensor(bShape, seed++);
      check(op, { a, b }, {}, "fallback", label);
      tf.dispose([a, b]);
    }
    const a = randomTensor([3, 4], seed++, { dtype: "int32" });
    const b = randomTensor([3, 4], seed++, { dtype: "int32" });
    check(op, { a, b }, {}, "fallback", "int32");
    tf.dispose([a, b]);
  });
}

const REDUCE_FAST: [string, number[], number | number[] | null, boolean][] = [
  ["leading axes (batch norm)", [16, 16, 16, 8], [0, 1, 2], false],
  ["leading axes, keepDims", [4, 5, 6, 7], [0, 1, 2], true],
  ["negative axes", [4, 5, 6, 7], [-4, -3, -2], false],
  ["middle axes (global pool)", [3, 5, 6, 7], [1, 2], false],
  ["middle axes, keepDims", [3, 5, 6, 7], [1, 2], true],
  ["last axis", [3, 5, 7], [2], false],
  ["last axis as -1, keepDims", [3, 5, 7], -1, true],
  ["first axis as a number", [9, 11], 0, false],
  ["all axes (null)", [3, 4, 5], null, false],
  ["all axes, keepDims", [3, 4, 5], [0, 1, 2], true],
];
const REDUCE_FALLBACK: [string, number[], number | number[] | null, boolean][] = [
  ["axes apart", [3, 4, 5, 6], [0, 2], false],
  ["axes out of order", [3, 4, 5, 6], [2, 1], false],
];

for (const [op, axisAttr] of [["Sum", "axis"], ["Mean", "axis"], ["Max", "reductionIndices"]] as const) {
  test(`${op}: contiguous axes are fast, the rest falls back, all match the stock kernel exactly`, () => {
    registerCpuElementwiseKernels();
    let seed = 100;
    for (const [label, shape, axis, keepDims] of REDUCE_FAST) {
      // Mostly plain values: one NaN would make every sum NaN and hide rounding differences.
      for (const plain of [true, false]) {
        const x = randomTensor(shape, seed++, { plain });
        check(op, { x }, { [axisAttr]: axis, keepDims }, "fast", `${label}${plain ? "" : " (with NaN/inf)"}`);
        x.dispose();
      }
    }
    for (const [label, shape, axis, keepDims] of REDUCE_FALLBACK) {
      const x = randomTensor(shape, seed++, { plain: true });
      check(op, { x }, { [axisAttr]: axis, keepDims }, "fallback", label);
      x.dispose();
    }
    const x = randomTensor([4, 6], seed++, { dtype: "int32" });
    check(op, { x }, { [axisAttr]: [0], keepDims: false }, "fallback", "int32");
    x.dispose();
  });
}

test("Tile: whole copies are fast, other tilings fall back, all match the stock kernel", () => {
  registerCpuElementwiseKernels();
  const cases: [string, number[], number[], "fast" | "fallback", "float32" | "int32"][] = [
    ["batch norm's [1,1,1,C] to [N,H,W,C]", [1, 1, 1, 5], [2, 3, 4, 1], "fast", "float32"],
    ["whole rows along axis 0", [2, 3], [3, 1], "fast", "float32"],
    ["leading 1 then a repeated axis", [1, 4], [2, 3], "fast", "float32"],
    ["no repetition", [2, 3, 4], [1, 1, 1], "fast", "float32"],
    ["repeat along the last axis", [2, 3], [1, 2], "fallback", "float32"],
    ["repeat inside", [2, 1, 3], [1, 2, 1], "fallback", "float32"],
    ["int32", [1, 3], [2, 1], "fallback", "int32"],
  ];
  cases.forEach(([label, shape, reps, path, dtype], i) => {
    const x = randomTensor(shape, 200 + i, { dtype });
    check("Tile", { x }, { reps }, path, label);
    x.dispose();
  });
});

test("MaxPoolGrad: matches the stock kernel exactly, ties and padding included", () => {
  registerCpuElementwiseKernels();
  type Pool = [string, number[], number, number, "same" | "valid" | number, { levels?: number; plain?: boolean }];
  const cases: Pool[] = [
    ["VGG 2x2/2 valid", [2, 8, 8, 3], 2, 2, "valid", { plain: true }],
    ["2x2/2 valid with ties", [2, 8, 8, 3], 2, 2, "valid", { levels: 3, plain: true }],
    ["2x2/2 valid, odd size, NaN and inf", [1, 9, 7, 4], 2, 2, "valid", {}],
    ["2x2/2 same, odd size", [2, 7, 9, 3], 2, 2, "same", { levels: 2, plain: true }],
    ["ResNet stem 3x3/2 same (overlap)", [2, 9, 9, 4], 3, 2, "same", { levels: 3, plain: true }],
    ["3x3/2 valid, NaN and inf", [1, 11, 8, 5], 3, 2, "valid", { levels: 4 }],
    ["3x3/2 pad 1", [1, 10, 10, 2], 3, 2, 1, { plain: true }],
    ["3x3/1 same (heavy overlap)", [1, 6, 7, 3], 3, 1, "same", { levels: 2, plain: true }],
  ];
  cases.forEach(([label, shape, filterSize, stride, pad, options], i) => {
    const input = randomTensor(shape, 300 + i, options);
    const output = tf.maxPool(input as tf.Tensor4D, filterSize, stride, pad, typeof pad === "number" ? "floor" : undefined);
    const dy = randomTensor(output.shape, 400 + i, { plain: true });
    const attrs = { filterSize, strides: stride, pad, dimRoundingMode: typeof pad === "number" ? "floor" : undefined };
    check("MaxPoolGrad", { dy, input, output }, attrs, "fast", label);
    tf.dispose([input, output, dy]);
  });
  // A window of nothing but -Infinity passes no gradient on, as in the stock kernel.
  const input = tf.fill([1, 4, 4, 1], -Infinity);
  const output = tf.maxPool(input as tf.Tensor4D, 2, 2, "valid");
  const dy = tf.onesLike(output);
  check("MaxPoolGrad", { dy, input, output }, { filterSize: 2, strides: 2, pad: "valid" }, "fast", "all -Infinity");
  tf.dispose([input, output, dy]);
  // int32 input: stock kernel.
  const xi = randomTensor([1, 4, 4, 2], 500, { dtype: "int32" });
  const yi = tf.maxPool(xi as tf.Tensor4D, 2, 2, "valid");
  const dyi = randomTensor(yi.shape, 501, { plain: true });
  check("MaxPoolGrad", { dy: dyi, input: xi, output: yi }, { filterSize: 2, strides: 2, pad: "valid" }, "fallback", "int32");
  tf.dispose([xi, yi, dyi]);
});

test("gradients of a conv + batch norm + pool network agree with the stock kernels", () => {
  const model = tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: [12, 12, 3], filters: 4, kernelSize: 3, padding: "same" }),
      tf.layers.batchNormalization(),
      tf.layers.activation({ activation: "relu" }),
      tf.layers.maxPooling2d({ poolSize: 2, strides: 2 }),
      tf.layers.conv2d({ filters: 6, kernelSize: 3, padding: "same" }),
      tf.layers.batchNormalization(),
      tf.layers.maxPooling2d({ poolSize: 3, strides: 2, padding: "same" }),
      tf.layers.flatten(),
      tf.layers.dense({ units: 3 }),
      tf.layers.batchNormalization(),
    ],
  });
  const x = randomTensor([4, 12, 12, 3], 600, { plain: true });
  const labels = tf.oneHot(tf.tensor1d([0, 1, 2, 1], "int32"), 3);
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const gradients = () => {
    const { value, grads } = tf.variableGrads(
      () => tf.losses.softmaxCrossEntropy(labels, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar,
      vars,
    );
    const out = { loss: value.dataSync()[0], grads: Object.fromEntries(Object.entries(grads).map(([k, g]) => [k, g.dataSync().slice()])) };
    tf.dispose([value, ...Object.values(grads)]);
    return out;
  };

  registerCpuElementwiseKernels();
  const before = cpuElementwiseKernelCalls();
  const ours = gradients();
  const after = cpuElementwiseKernelCalls();
  unregisterCpuElementwiseKernels();
  const stock = gradients();
  registerCpuElementwiseKernels();

  // Batch norm and the pools really ran on the fast paths.
  for (const name of ["Multiply", "Sub", "Sum", "Mean", "Tile", "MaxPoolGrad"] as const) {
    assert.ok(after[name].fast > before[name].fast, `${name} took the fast path`);
  }
  assert.ok(Math.abs(ours.loss - stock.loss) <= 1e-5 * Math.abs(stock.loss));
  assert.deepEqual(Object.keys(ours.grads).sort(), Object.keys(stock.grads).sort());
  for (const [name, g] of Object.entries(stock.grads)) {
    const scale = Math.max(...Array.from(g, Math.abs), 1e-12);
    const worst = Math.max(...Array.from(g, (v, i) => Math.abs(v - ours.grads[name][i])));
    assert.ok(worst <= 1e-5 * scale, `${name}: max difference ${worst} against largest gradient ${scale}`);
  }
  tf.dispose([x, labels]);
  model.dispose();
});

test("Relu and Step: float32 is fast and bit-identical to the stock kernel (NaN, ±0, ±Infinity); int32 falls back", () => {
  const x = randomTensor([3, 5, 7, 4], 71);
  check("Relu", { x }, {}, "fast", "float32");
  for (const alpha of [0, 0.1, -2]) check("Step", { x }, { alpha }, "fast", `float32, alpha ${alpha}`);
  const ints = randomTensor([4, 6], 72, { dtype: "int32" });
  check("Relu", { x: ints }, {}, "fallback", "int32");
  check("Step", { x: ints }, { alpha: 0 }, "fallback", "int32");
  tf.dispose([x, ints]);
});
