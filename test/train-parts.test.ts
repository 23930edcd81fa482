// The small pieces of training, checked against numbers worked out by hand.
import { test } from "node:test";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import sharp from "sharp";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { minorityMetrics, crossEntropy, crossEntropyFromLogits, argmaxRows, meanStd } from "../src/train/metrics.ts";
import { oneCycle } from "../src/train/schedule.ts";
import { AdamW } from "../src/train/adamw.ts";
import { registerCpuAdamW, unregisterCpuAdamW, useAdamWUpdate } from "../src/backends/cpu/adamw.ts";
import { ADAMW_KERNEL } from "../src/backends/adamw-kernel.ts";
import { fusedAgainstOps } from "./adamw-reference.ts";
import { summarize, summaryTable, type VariantRun } from "../src/train/experiment.ts";
import { pairedStats } from "../src/train/stats.ts";
import { evaluate, trainingLoss, trainStep, type EpochRecord } from "../src/train/learner.ts";
import type { Batch } from "../src/data/images.ts";
import { buildModel, FINAL_BN_LAYER, getDropoutStep, LOGITS_LAYER, setDropoutStep } from "../src/models/index.ts";
import { classProbabilities } from "../src/models/heads.ts";
import { resolveTrainConfig } from "../src/train/config.ts";

test("minority metrics: the minority class (label 1) is the positive class", () => {
  // 6 majority, 4 minority; the model finds 3 of the 4 minority images and raises 1 false alarm.
  const labels = [0, 0, 0, 0, 0, 0, 1, 1, 1, 1];
  const preds = [0, 0, 0, 0, 0, 1, 1, 1, 1, 0];
  const m = minorityMetrics(labels, preds);
  assert.deepEqual(m.confusion, [[5, 1], [1, 3]]);
  assert.equal(m.precision, 0.75);
  assert.equal(m.recall, 0.75);
  assert.equal(m.f1, 0.75);
  assert.equal(m.accuracy, 0.8);
  // A model that never predicts the minority: accuracy 0.6 on this set, F1 0 (the paper's failure).
  const never = minorityMetrics(labels, labels.map(() => 0));
  assert.equal(never.f1, 0);
  assert.equal(never.accuracy, 0.6);
});

test("cross-entropy and arg-max of probability rows", () => {
  const probs = [0.9, 0.1, 0.2, 0.8, 0.5, 0.5];
  assert.deepEqual(Array.from(argmaxRows(probs, 2)), [0, 1, 0], "ties go to the first class");
  const ce = crossEntropy(probs, [0, 1, 1], 2);
  assert.ok(Math.abs(ce - -(Math.log(0.9) + Math.log(0.8) + Math.log(0.5)) / 3) < 1e-12);
  assert.deepEqual(meanStd([1, 2, 3]), { mean: 2, std: 1 });
});

/** Mean of -log softmax(z)[label] over rows, written out: log softmax = z - log(sum(exp(z))). */
function handCrossEntropy(z: number[][], labels: number[]): number {
  return z.reduce((sum, row, i) => sum - (row[labels[i]] - Math.log(row.reduce((s, v) => s + Math.exp(v), 0))), 0) / z.length;
}

test("cross-entropy from logits: by log-softmax, exact where the softmax rounds to 0 or 1", () => {
  const z = [[2, -1], [0.5, 0.25], [-3, 1]];
  assert.ok(Math.abs(crossEntropyFromLogits(z.flat(), [0, 1, 0], 2) - handCrossEntropy(z, [0, 1, 0])) < 1e-12);
  // Confidently wrong by a margin of 40: the loss is 40, where a clip at 1e-7 stops at 16.1.
  assert.ok(Math.abs(crossEntropyFromLogits([40, 0], [1], 2) - 40) < 1e-12);
  // Large logits do not overflow exp().
  assert.ok(Math.abs(crossEntropyFromLogits([1000, 999], [1], 2) - Math.log(1 + Math.E)) < 1e-12);
});

/** x -> dense (2 classes, the logits) -> [final_bn] -> softmax, with the names the learner relies on. */
function tinyModel(kernel: number[][], bias: number[], finalBN: boolean): tf.LayersModel {
  const input = tf.input({ shape: [kernel.length] });
  const dense = tf.layers.dense({ units: 2, name: LOGITS_LAYER });
  const logits = dense.apply(input) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: classProbabilities(logits, { finalBN }) });
  dense.setWeights([tf.tensor2d(kernel), tf.tensor1d(bias)]);
  return model;
}

test("training loss: log-softmax cross-entropy of the softmax input (after final_bn), no clip", async () => {
  const x = [[1, 2], [-1, 0.5], [3, -2]];
  const labels = [0, 1, 1];
  const kernel = [[10, -5], [2, 8]];
  const bias = [0.5, -0.5];
  const logits = x.map((row) => [0, 1].map((c) => row[0] * kernel[0][c] + row[1] * kernel[1][c] + bias[c]));
  const y = tf.oneHot(tf.tensor1d(labels, "int32"), 2);
  // Without final BN the logits are the dense output; the third sample is wrong by a margin of 34,
  // which a loss clipped at 1e-7 would count as 16.1.
  const plain = tinyModel(kernel, bias, false);
  const loss = await trainingLoss(plain, tf.tensor2d(x), y).data();
  assert.ok(Math.abs(loss[0] - handCrossEntropy(logits, labels)) < 1e-4 * handCrossEntropy(logits, labels), `${loss[0]}`);
  // With final BN in training mode the logits are normalised per class over the batch (biased variance).
  const withBN = tinyModel(kernel, bias, true);
  const normed = logits.map((row) =>
    row.map((v, c) => {
      const col = logits.map((r) => r[c]);
      const mean = col.reduce((a, b) => a + b, 0) / col.length;
      const variance = col.reduce((a, b) => a + (b - mean) ** 2, 0) / col.length;
      return (v - mean) / Math.sqrt(variance + 1e-5);
    }),
  );
  const lossBN = await trainingLoss(withBN, tf.tensor2d(x), y).data();
  assert.ok(Math.abs(lossBN[0] - handCrossEntropy(normed, labels)) < 1e-5, `${lossBN[0]} vs ${handCrossEntropy(normed, labels)}`);
  for (const m of [plain, withBN]) m.dispose();
  y.dispose();
});

test("training loss: a very confident correct sample still has a gradient (a clip at 1 - 1e-7 gives it none)", async () => {
  // Logits [30, 0] for class 0: softmax rounds to exactly 1 in float32.
  const model = tinyModel([[30, 0]], [0, 0], false);
  const x = tf.tensor2d([[1]]);
  const y = tf.oneHot(tf.tensor1d([0], "int32"), 2);
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const gradNorm = async (loss: () => tf.Scalar) => {
    const { value, grads } = tf.variableGrads(loss, vars);
    const norm = (await tf.addN(Object.values(grads).map((g) => tf.sum(tf.abs(g)))).data())[0];
    tf.dispose([value, ...Object.values(grads)]);
    return norm;
  };
  // The loss as the learner computed it before: -log(clip(softmax output, 1e-7, 1 - 1e-7)).
  const clipped = () => tf.neg(tf.mean(tf.sum(tf.mul(y, tf.log(tf.clipByValue(model.apply(x) as tf.Tensor, 1e-7, 1 - 1e-7))), -1))) as tf.Scalar;
  assert.equal(await gradNorm(clipped), 0, "the clip cuts the gradient");
  const ours = await gradNorm(() => trainingLoss(model, x, y));
  // d loss / d logit of the other class is softmax = e^-30 = 9.4e-14 (and the same on its kernel weight).
  assert.ok(ours > 1e-14, `gradient ${ours}`);
  model.dispose();
  tf.dispose([x, y]);
});

test("a training step runs the model once: batch norm statistics and dropout counters advance as in one model.apply", async () => {
  const config = { arch: "vgg19_bn" as const, head: "fastai" as const, finalBN: true, numClasses: 2, inputSize: 32, width: 1 / 16, seed: 6 };
  const stepped = buildModel(config);
  const applied = buildModel(config);
  const shape: Batch["shape"] = [4, 32, 32, 3];
  const pixels = await tf.randomNormal(shape, 0, 1, "float32", 8).data();
  const batch: Batch = { x: Float32Array.from(pixels), shape, labels: Int32Array.from([0, 1, 0, 0]), paths: [] };
  for (const m of [stepped, applied]) setDropoutStep(m, 17);
  const optimizer = new AdamW(stepped.trainableWeights.map((w) => w.read() as tf.Variable), { weightDecay: 1e-2 });
  const loss = trainStep(stepped, optimizer, batch, { lr: 1e-3, beta1: 0.9 });
  assert.ok(Number.isFinite((await loss.data())[0]));
  tf.dispose([loss, applied.apply(tf.tensor4d(batch.x, shape), { training: true }) as tf.Tensor]);
  assert.equal(getDropoutStep(stepped), 18, "one dropout mask per layer");
  assert.equal(getDropoutStep(applied), 18);
  // Same running statistics: every BN saw the same batch once (the step's update comes after).
  const running = (m: tf.LayersModel) => m.nonTrainableWeights.map((w) => w.read().dataSync());
  const [a, b] = [running(stepped), running(applied)];
  assert.equal(a.length, 2 * (16 + 2 + 1), "moving mean and variance of 16 body BNs, 2 head BNs and final_bn");
  a.forEach((values, i) => assert.deepEqual(values, b[i], stepped.nonTrainableWeights[i].originalName));
  optimizer.dispose();
  for (const m of [stepped, applied]) m.dispose();
});

test("evaluate: the test loss comes from the logits too, the probabilities are the model's softmax", async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), "finalbn-evaluate-"));
  try {
    const items = await Promise.all(
      [0, 1, 1, 0, 1].map(async (label, i) => {
        const file = path.join(dir, `${i}.png`);
        const rgb = Buffer.from(Array.from({ length: 32 * 32 * 3 }, (_, k) => (k * (i + 3) * 7) % 256));
        await sharp(rgb, { raw: { width: 32, height: 32, channels: 3 } }).png().toFile(file);
        return { path: file, label };
      }),
    );
    const model = buildModel({ arch: "vgg19", head: "fastai", finalBN: true, numClasses: 2, inputSize: 32, width: 1 / 16, seed: 2 });
    // final_bn turned into constant logits [40, -40]: every image "healthy" with probability 1, and
    // each diseased one wrong by a margin of 80, which a clip at 1e-7 would count as 16.1.
    model.getLayer(FINAL_BN_LAYER).setWeights([tf.zeros([2]), tf.tensor1d([40, -40]), tf.zeros([2]), tf.ones([2])]);
    const result = await evaluate(model, items, { size: 32, batchSize: 2, cacheDir: path.join(dir, "cache") });
    assert.ok(Math.abs(result.loss - (3 / 5) * 80) < 1e-4, `test loss ${result.loss}`);
    assert.deepEqual(Array.from(result.labels), [0, 1, 1, 0, 1]);
    for (let i = 0; i < 5; i++) {
      assert.equal(result.probs[2 * i], 1);
      assert.ok(Math.abs(result.probs[2 * i + 1] / Math.exp(-80) - 1) < 1e-5, `softmax of [40, -40]: ${result.probs[2 * i + 1]}`);
    }
    assert.equal(result.metrics.recall, 0);
    model.dispose();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("one-cycle: warms up from lr/25 to lr, then anneals towards lr/1e5; beta1 moves the other way", () => {
  const o = { maxLr: 1e-2, totalSteps: 100 };
  assert.ok(Math.abs(oneCycle(0, o).lr - 1e-2 / 25) < 1e-12);
  assert.ok(Math.abs(oneCycle(25, o).lr - 1e-2) < 1e-12, "peak after 25% of the steps");
  assert.ok(oneCycle(99, o).lr < 1e-5);
  assert.equal(oneCycle(0, o).beta1, 0.95);
  assert.ok(Math.abs(oneCycle(25, o).beta1 - 0.85) < 1e-12);
  for (let s = 1; s <= 25; s++) assert.ok(oneCycle(s, o).lr >= oneCycle(s - 1, o).lr, "rising during warm-up");
  for (let s = 26; s < 100; s++) assert.ok(oneCycle(s, o).lr <= oneCycle(s - 1, o).lr, "falling afterwards");
});

for (const fused of [false, true]) {
  test(`AdamW (${fused ? "fused cpu kernel" : "tfjs ops"}): one step matches the formula, with weight decay on kernels only`, async () => {
    await tf.setBackend("cpu");
    if (fused) registerCpuAdamW();
    else unregisterCpuAdamW();
    const kernel = tf.variable(tf.tensor2d([[1, -2]]));
    const bias = tf.variable(tf.tensor1d([0.5]));
    const opt = new AdamW([kernel, bias], { weightDecay: 0.1, beta2: 0.99, eps: 1e-5 });
    const lr = 0.01;
    const beta1 = 0.9;
    const grads = [tf.tensor2d([[0.2, 0.4]]), tf.tensor1d([-1])];
    const profile = await tf.profile(() => opt.apply(grads, { lr, beta1 }));
    assert.equal(profile.kernels.some((k) => k.name === ADAMW_KERNEL), fused, "the path under test ran");
    tf.dispose(grads);
    // Step 1: m = (1-b1) g, v = (1-b2) g², m̂ = g, v̂ = g², so the update is lr * g / (|g| + eps).
    const expect = (w: number, g: number, decay: boolean) => (decay ? w * (1 - lr * 0.1) : w) - (lr * g) / (Math.abs(g) + 1e-5);
    const k = await kernel.data();
    const b = await bias.data();
    assert.ok(Math.abs(k[0] - expect(1, 0.2, true)) < 1e-6);
    assert.ok(Math.abs(k[1] - expect(-2, 0.4, true)) < 1e-6);
    assert.ok(Math.abs(b[0] - expect(0.5, -1, false)) < 1e-6, "no decay on a bias");
    assert.equal(opt.step, 1);
    opt.dispose();
    unregisterCpuAdamW();
  });
}

test("AdamW: the fused cpu kernel (WebAssembly and JavaScript loops) and the tfjs ops agree over many steps of changing lr and beta1", async () => {
  await tf.setBackend("cpu");
  assert.equal(useAdamWUpdate(), "wasm", "Node has WebAssembly SIMD: the default loop");
  // 20001 weights: several of the WebAssembly loop's chunks, and a last one not a multiple of 4.
  for (const kind of ["wasm", "js"] as const) {
    assert.equal(useAdamWUpdate(kind), kind);
    const worst = await fusedAgainstOps({ register: registerCpuAdamW, unregister: unregisterCpuAdamW, shapes: [[4, 3, 8], [8], [3, 6667]], steps: 20 });
    assert.ok(worst < 1e-4, `${kind}: largest relative difference ${worst}`);
  }
  useAdamWUpdate("wasm");
});

test("the summary averages final and best F1 over seeds, per variant, and lists the seeds trained both ways", () => {
  const rec = (epoch: number, f1: number, testLoss: number): EpochRecord => ({
    epoch, f1, testLoss, trainLoss: testLoss / 2, accuracy: 0.5, precision: 0, recall: 0,
    confusion: [[0, 0], [0, 0]], lr: 0, seconds: 1, imagesPerSec: 1,
  });
  const runs: VariantRun[] = [
    { label: "vgg19_bn-fastai-nofinalbn-seed1", finalBN: false, seed: 1, runDir: "", history: [rec(1, 0.2, 0.5), rec(2, 0.1, 0.4)] },
    { label: "vgg19_bn-fastai-nofinalbn-seed2", finalBN: false, seed: 2, runDir: "", history: [rec(1, 0.3, 0.5), rec(2, 0.3, 0.3)] },
    { label: "vgg19_bn-fastai-finalbn-seed1", finalBN: true, seed: 1, runDir: "", history: [rec(1, 0.9, 0.6), rec(2, 0.8, 0.7)] },
  ];
  const [without, withBN] = summarize(runs);
  assert.equal(without.variant, "vgg19_bn-fastai-nofinalbn");
  assert.equal(without.seeds, 2);
  assert.ok(Math.abs(without.finalF1 - 0.2) < 1e-12);
  assert.ok(Math.abs(without.finalF1Std - Math.sqrt(0.02)) < 1e-12, "sample standard deviation of 0.1 and 0.3");
  assert.ok(Math.abs(without.bestF1 - 0.25) < 1e-12);
  assert.ok(Math.abs(without.finalTestLoss - 0.35) < 1e-12);
  assert.equal(withBN.finalF1, 0.8);
  assert.equal(withBN.bestF1, 0.9);
  const table = summaryTable([without, withBN]).split("\n");
  assert.equal(table.length, 4);
  assert.match(table[2], /^vgg19_bn-fastai-nofinalbn\s+2\s+0\.200 ± 0\.141\s+0\.250 ± 0\.071/);
  // With the paired stats: seed 1 has both variants (0.1 without, 0.8 with), seed 2 only one.
  const paired = summaryTable([without, withBN], pairedStats(runs)).split("\n");
  assert.deepEqual(paired.slice(0, 4), table);
  assert.deepEqual(paired.slice(5).map((l) => l.trim().split(/\s{2,}/)), [
    ["final minority F1 per seed (paired: same seed, same data order and initial weights)"],
    ["seed", "F1 without", "F1 with", "with - without"],
    ["----", "----------", "-------", "--------------"],
    ["1", "0.100", "0.800", "+0.700"],
    ["difference +0.700 on one seed: no interval"],
    ["left out: seed 2, only without the final BN"],
  ]);
});

test("training configs reject settings that cannot work, with the reason", () => {
  const base = { manifest: "m.json", data: "d" };
  assert.throws(() => resolveTrainConfig({ ...base, size: 16 }), /size must be an integer of at least 32/);
  assert.throws(() => resolveTrainConfig({ ...base, batchSize: 1 }), /batch norm needs a batch/);
  assert.throws(() => resolveTrainConfig({ ...base, freezeEpochs: 1 }), /only makes sense with pretrained/);
  assert.equal(resolveTrainConfig(base).weightDecay, 1e-2);
});
