// BatchMatMul through gemm (src/backends/cpu/matmul.ts) against the stock cpu kernel.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { cpuMatMulKernelCalls, registerCpuMatMulKernels, stockCpuMatMulKernel, unregisterCpuMatMulKernels } from "../src/backends/cpu/matmul.ts";
import { randomValues, relError } from "./conv-reference.ts";

await tf.setBackend("cpu");

const CASES: [number[], number[], boolean, boolean][] = [
  [[1, 32, 1024], [1, 1024, 512], false, false], // a dense layer
  [[1, 32, 512], [1, 1024, 512], false, true], // its input gradient
  [[1, 32, 1024], [1, 32, 512], true, false], // its weight gradient
  [[3, 5, 7], [3, 7, 9], false, false],
  [[3, 7, 5], [1, 9, 7], true, true], // b broadcast over the batch
  [[1, 1, 1], [1, 1, 1], false, false],
];

for (const [aShape, bShape, transposeA, transposeB] of CASES) {
  test(`BatchMatMul ${JSON.stringify(aShape)} x ${JSON.stringify(bShape)}${transposeA ? ", a transposed" : ""}${transposeB ? ", b transposed" : ""}: ours matches stock`, () => {
    const a = tf.tensor(randomValues(aShape.reduce((x, y) => x * y), 1), aShape);
    const b = tf.tensor(randomValues(bShape.reduce((x, y) => x * y), 2), bShape);
    const attrs = { transposeA, transposeB };
    registerCpuMatMulKernels();
    const before = cpuMatMulKernelCalls().BatchMatMul.fast;
    const ours = tf.engine().runKernel("BatchMatMul", { a, b }, attrs) as tf.Tensor;
    assert.equal(cpuMatMulKernelCalls().BatchMatMul.fast, before + 1, "our path ran");
    const stock = tf.engine().makeTensorFromTensorInfo(stockCpuMatMulKernel("BatchMatMul")({ inputs: { a, b }, backend: tf.backend(), attrs }) as tf.TensorInfo);
    unregisterCpuMatMulKernels();
    assert.deepEqual(ours.shape, stock.shape);
    const err = relError(ours.dataSync(), stock.dataSync());
    assert.ok(err < 1e-5, `relative error ${err}`);
    tf.dispose([a, b, ours, stock]);
  });
}

test("BatchMatMul: int32 falls back to the stock kernel", () => {
  registerCpuMatMulKernels();
  const a = tf.tensor([1, 2], [1, 1, 2], "int32");
  const b = tf.tensor([3, 4], [1, 2, 1], "int32");
  const before = cpuMatMulKernelCalls().BatchMatMul.fallback;
  const out = tf.engine().runKernel("BatchMatMul", { a, b }, { transposeA: false, transposeB: false }) as tf.Tensor;
  assert.equal(cpuMatMulKernelCalls().BatchMatMul.fallback, before + 1);
  assert.deepEqual(Array.from(out.dataSync()), [11]);
  unregisterCpuMatMulKernels();
  tf.dispose([a, b, out]);
});
