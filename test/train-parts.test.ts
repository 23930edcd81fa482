// The small pieces of training, checked against numbers worked out by hand.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { minorityMetrics, crossEntropy, argmaxRows, meanStd } from "../src/train/metrics.ts";
import { oneCycle } from "../src/train/schedule.ts";
import { AdamW } from "../src/train/adamw.ts";
import { registerCpuAdamW, unregisterCpuAdamW } from "../src/backends/cpu-adamw.ts";
import { ADAMW_KERNEL } from "../src/backends/adamw-kernel.ts";
import { fusedAgainstOps } from "./adamw-reference.ts";
import { summarize, summaryTable, type VariantRun } from "../src/train/experiment.ts";
import { pairedStats } from "../src/train/stats.ts";
import type { EpochRecord } from "../src/train/learner.ts";
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

test("AdamW: the fused cpu kernel and the tfjs ops agree over many steps of changing lr and beta1", async () => {
  await tf.setBackend("cpu");
  const worst = await fusedAgainstOps({ register: registerCpuAdamW, unregister: unregisterCpuAdamW, shapes: [[4, 3, 8], [8]], steps: 20 });
  assert.ok(worst < 1e-4, `largest relative difference ${worst}`);
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
