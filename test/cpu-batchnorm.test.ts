import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { makeRng } from "../src/data/rng.ts";
import { BatchNorm } from "../src/models/batchnorm.ts";
import { hasBatchNormKernels } from "../src/backends/batchnorm-kernel.ts";
import { registerCpuBatchNorm, unregisterCpuBatchNorm } from "../src/backends/cpu/batchnorm.ts";

await tf.setBackend("cpu");

/** Activations around `offset` (a large offset is where E[x²] - E[x]² would cancel) with per-channel spread. */
function activations(shape: number[], seed: number, offset = 0): tf.Tensor {
  const rng = makeRng(seed);
  const channels = shape[shape.length - 1]!;
  const size = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(Float32Array.from({ length: size }, (_, i) => offset + (1 + (i % channels)) * (rng() * 2 - 1)), shape);
}

interface Pass {
  y: Float32Array;
  dx: Float32Array;
  dgamma: Float32Array;
  dbeta: Float32Array;
  movingMean: Float32Array;
  movingVariance: Float32Array;
}

/** One training forward and backward of a fresh layer (gamma and beta not 1 and 0), loss = Σ y · w. */
function trainPass(shape: number[], seed: number, offset: number): Pass {
  return tf.tidy(() => {
    const channels = shape[shape.length - 1]!;
    const layer = new BatchNorm({ momentum: 0.9, epsilon: 1e-5, name: `bn${seed}` });
    const x = activations(shape, seed, offset);
    layer.apply(x, { training: true }); // builds the weights (and updates the running ones once)
    const [gamma, beta] = layer.trainableWeights.map((w) => w.read() as tf.Variable);
    gamma!.assign(tf.linspace(0.5, 2, channels));
    beta!.assign(tf.linspace(-1, 1, channels));
    const w = activations(shape, seed + 100);
    const xs = tf.variable(x);
    let y: tf.Tensor | undefined;
    const { grads } = tf.variableGrads(() => {
      y = tf.keep(layer.apply(xs, { training: true }) as tf.Tensor);
      return tf.sum(tf.mul(y, w)) as tf.Scalar;
    }, [xs, gamma!, beta!]);
    const [dx, dgamma, dbeta] = [xs, gamma!, beta!].map((v) => grads[v.name]);
    xs.dispose();
    const [movingMean, movingVariance] = layer.getWeights().slice(2);
    const values = (t: tf.Tensor) => t.dataSync() as Float32Array;
    const yValues = values(y!);
    y!.dispose();
    return { y: yValues, dx: values(dx!), dgamma: values(dgamma!), dbeta: values(dbeta!), movingMean: values(movingMean!), movingVariance: values(movingVariance!) };
  });
}

function assertClose(actual: Float32Array, expected: Float32Array, tolerance: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  const scale = Math.max(1, ...Array.from(expected, Math.abs));
  for (let i = 0; i < actual.length; i++) {
    assert.ok(Math.abs(actual[i]! - expected[i]!) <= tolerance * scale, `${what}[${i}]: ${actual[i]} vs ${expected[i]} (tolerance ${tolerance} of ${scale})`);
  }
}

test("fused batch norm: the cpu kernels give the ops' output, running estimates and all three gradients", () => {
  const cases: [number[], number][] = [
    [[4, 6, 5, 8], 0], // conv activations, as in vgg19_bn
    [[16, 2], 0], // the final BN on the logits of a batch of 16
    [[2, 3, 3, 3], 50], // large mean, few values per channel
  ];
  for (const [shape, offset] of cases) {
    unregisterCpuBatchNorm();
    assert.equal(hasBatchNormKernels(), false);
    const ops = trainPass(shape, 7, offset);
    registerCpuBatchNorm();
    assert.equal(hasBatchNormKernels(), true);
    const fused = trainPass(shape, 7, offset);
    const what = `[${shape}] around ${offset}`;
    // float32 ops against float64 sums: agreement to a few units in the last place of the larger values.
    assertClose(fused.y, ops.y, 1e-5, `${what} y`);
    assertClose(fused.movingMean, ops.movingMean, 1e-5, `${what} running mean`);
    assertClose(fused.movingVariance, ops.movingVariance, 1e-4, `${what} running variance`);
    assertClose(fused.dx, ops.dx, 1e-4, `${what} dx`);
    assertClose(fused.dgamma, ops.dgamma, 1e-4, `${what} dgamma`);
    assertClose(fused.dbeta, ops.dbeta, 1e-5, `${what} dbeta`);
  }
});

test("fused batch norm: the gradient of x alone (a frozen layer) leaves no tensor behind", () => {
  registerCpuBatchNorm();
  const layer = new BatchNorm({ momentum: 0.9, epsilon: 1e-5, name: "frozen" });
  const x = activations([4, 3, 3, 8], 3);
  layer.apply(x, { training: true });
  const step = () => {
    const dx = tf.grad((xs: tf.Tensor) => tf.sum(tf.square(layer.apply(xs, { training: true }) as tf.Tensor)))(x);
    const finite = dx.dataSync().every(Number.isFinite);
    dx.dispose();
    return finite;
  };
  assert.ok(step());
  const before = tf.memory().numTensors;
  for (let i = 0; i < 3; i++) assert.ok(step());
  assert.equal(tf.memory().numTensors, before);
  x.dispose();
});
