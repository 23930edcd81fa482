// The model layer: shapes, the final BN and its removal, parameter counts against
// torchvision, seeded initial weights and replayable dropout. Tiny widths keep it fast.
import assert from "node:assert/strict";
import { test } from "node:test";
import * as tf from "@tensorflow/tfjs";
import {
  BatchNorm,
  buildArchitecture,
  buildModel,
  countTrainableParams,
  FINAL_BN_LAYER,
  getDropoutStep,
  hasFinalBN,
  logitsModel,
  removeFinalBN,
  SeededDropout,
  setBodyTrainable,
  setDropoutStep,
  SOFTMAX_LAYER,
  summarize,
  type Arch,
  type Head,
} from "../src/models/index.ts";

const small = { width: 1 / 16, inputSize: 32, numClasses: 3 };

function images(batch: number, size: number, seed = 1): tf.Tensor4D {
  return tf.randomNormal([batch, size, size, 3], 0, 1, "float32", seed) as tf.Tensor4D;
}

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-5, what = "values"): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < actual.length; i++) {
    assert.ok(Math.abs(actual[i] - expected[i]) <= tol * (1 + Math.abs(expected[i])), `${what}[${i}]: ${actual[i]} vs ${expected[i]}`);
  }
}

test("every arch, head and finalBN gives probabilities of the right shape; final_bn sits right before the softmax", async () => {
  const x = images(2, 32);
  for (const arch of ["vgg19", "vgg19_bn", "resnet34"] as Arch[]) {
    for (const head of ["fastai", "classic"] as Head[]) {
      for (const finalBN of [false, true]) {
        const model = buildModel({ arch, head, finalBN, ...small });
        const what = `${arch}/${head}/finalBN=${finalBN}`;
        const y = model.predict(x) as tf.Tensor;
        assert.deepEqual(y.shape, [2, 3], what);
        const rows = (await y.array()) as number[][];
        for (const row of rows) assert.ok(Math.abs(row.reduce((a, b) => a + b, 0) - 1) < 1e-5, `${what}: rows sum to 1`);
        const names = model.layers.map((l) => l.name);
        assert.equal(names.at(-1), SOFTMAX_LAYER, what);
        assert.equal(names.at(-2), finalBN ? FINAL_BN_LAYER : "head/logits", what);
        assert.equal(hasFinalBN(model), finalBN, what);
        // The softmax reads straight from final_bn (not merely listed after it).
        const softmaxInput = (model.getLayer(SOFTMAX_LAYER).input as tf.SymbolicTensor).sourceLayer.name;
        assert.equal(softmaxInput, finalBN ? FINAL_BN_LAYER : "head/logits", what);
        if (finalBN) {
          const bn = model.getLayer(FINAL_BN_LAYER).getConfig();
          assert.equal(bn.momentum, 0.99);
          assert.equal(bn.epsilon, 1e-5);
        }
        y.dispose();
        model.dispose();
      }
    }
  }
  x.dispose();
});

test("removeFinalBN gives softmax(logits) with the same weights; logitsModel gives the softmax input", async () => {
  const model = buildModel({ arch: "vgg19_bn", head: "fastai", finalBN: true, ...small, seed: 3 });
  // Give final_bn statistics far from the identity so that skipping it makes a difference.
  const bn = model.getLayer(FINAL_BN_LAYER);
  bn.setWeights([tf.tensor1d([2, 0.5, 1]), tf.tensor1d([0.3, -1, 0]), tf.tensor1d([0.1, -0.2, 0.3]), tf.tensor1d([0.04, 0.09, 0.25])]);
  const x = images(2, 32, 5);
  const dense = tf.model({ inputs: model.inputs, outputs: model.getLayer("head/logits").output as tf.SymbolicTensor });
  const logits = dense.predict(x) as tf.Tensor2D;

  const withoutBN = removeFinalBN(model);
  assert.ok(!withoutBN.layers.some((l) => l.name === FINAL_BN_LAYER));
  assertClose(await (withoutBN.predict(x) as tf.Tensor).data(), await tf.softmax(logits).data(), 1e-5, "without final BN");

  // With the BN: softmax(gamma * (z - mean) / sqrt(var + eps) + beta), in inference mode.
  const [gamma, beta, mean, variance] = [[2, 0.5, 1], [0.3, -1, 0], [0.1, -0.2, 0.3], [0.04, 0.09, 0.25]];
  const z = (await logits.array()) as number[][];
  const normed = z.map((row) => row.map((v, j) => (gamma[j] * (v - mean[j])) / Math.sqrt(variance[j] + 1e-5) + beta[j]));
  const full = model.predict(x) as tf.Tensor;
  assertClose(await full.data(), await tf.softmax(tf.tensor2d(normed)).data(), 1e-4, "with final BN");
  assertClose(await (logitsModel(model).predict(x) as tf.Tensor).data(), normed.flat(), 1e-4, "logitsModel");
  assert.notDeepEqual(Array.from(await full.data()), Array.from(await (withoutBN.predict(x) as tf.Tensor).data()));

  // Views share the weights: their dispose() leaves the model usable.
  withoutBN.dispose();
  assert.deepEqual((model.predict(x) as tf.Tensor).shape, [2, 3]);
  model.dispose();
});

test("trainable parameter counts match torchvision (1000 classes, classic head, 224 px, width 1)", () => {
  // torchvision counts BN weight and bias as parameters, running statistics as buffers:
  // that is exactly tfjs's trainable weights. buildArchitecture() skips the random draw.
  const expected: Record<Arch, number> = { vgg19: 143_667_240, vgg19_bn: 143_678_248, resnet34: 21_797_672 };
  for (const arch of Object.keys(expected) as Arch[]) {
    const model = buildArchitecture({ arch, head: "classic", finalBN: false, numClasses: 1000, inputSize: 224 });
    assert.equal(countTrainableParams(model), expected[arch], arch);
    // At 224 px both bodies end in a 7x7 map of 512 channels, as in torchvision.
    const rows = summarize(model);
    const last = rows.filter((r) => r.name.startsWith("body/")).at(-1)!;
    assert.equal(last.outputShape, "N×7×7×512", arch);
    if (arch === "vgg19_bn") {
      // BN running statistics are the only non-trainable weights: 2 x (16 x conv channels).
      assert.equal(model.countParams() - countTrainableParams(model), 2 * (2 * 64 + 2 * 128 + 4 * 256 + 8 * 512));
    }
    model.dispose();
  }
  const fastai = buildArchitecture({ arch: "resnet34", head: "fastai", finalBN: true, numClasses: 2, inputSize: 224 });
  // body (21,797,672 - fc 513,000) + BN(1024) + 1024*512 + BN(512) + 512*2 + final BN(2), trainable part:
  // the dense layers after a BN have no bias (fastai's LinBnDrop).
  assert.equal(countTrainableParams(fastai), 21_797_672 - 513_000 + 2048 + 524_288 + 1024 + 1024 + 4);
  fastai.dispose();
});

test("width rounds every channel count and never goes below one channel", () => {
  const model = buildArchitecture({ arch: "vgg19", head: "classic", finalBN: false, numClasses: 2, inputSize: 32, width: 1 / 100 });
  const rows = new Map(summarize(model).map((r) => [r.name, r]));
  assert.equal(rows.get("body/conv1_1")!.outputShape, "N×32×32×1"); // 64/100 rounds to 1
  assert.equal(rows.get("body/conv5_4")!.outputShape, "N×2×2×5"); // 512/100 rounds to 5
  assert.equal(rows.get("head/fc1")!.outputShape, "N×41"); // 4096/100
  model.dispose();
});

test("two builds with the same seed have identical weights; another seed differs", async () => {
  const config = { arch: "resnet34" as const, head: "fastai" as const, finalBN: true, ...small };
  const a = buildModel({ ...config, seed: 7 });
  const b = buildModel({ ...config, seed: 7 });
  const c = buildModel({ ...config, seed: 8 });
  const [wa, wb, wc] = [a, b, c].map((m) => m.getWeights());
  assert.equal(wa.length, wb.length);
  let differs = 0;
  for (let i = 0; i < wa.length; i++) {
    assert.deepEqual(await wa[i].data(), await wb[i].data(), a.weights[i].originalName);
    if (wa[i].size > 1 && (await tf.notEqual(wa[i], wc[i]).any().data())[0]) differs++;
  }
  assert.ok(differs > 30, `different seeds change the kernels (${differs} differ)`);
  // Kernels follow torchvision's kaiming_normal_(fan_out): std sqrt(2 / (3*3*out)).
  const k = await a.getLayer("body/layer3_1/conv2").getWeights()[0].data();
  const std = Math.sqrt(Array.from(k).reduce((s, v) => s + v * v, 0) / k.length);
  assert.ok(Math.abs(std - Math.sqrt(2 / (9 * 16))) < 0.1 * Math.sqrt(2 / (9 * 16)), `std ${std}`);
  for (const m of [a, b, c]) m.dispose();
});

test("dropout masks change every step and replay after setDropoutStep", async () => {
  const layer = new SeededDropout({ rate: 0.5, seed: 11 });
  const x = tf.ones([8, 64]);
  const mask = async () => Array.from(await (layer.apply(x, { training: true }) as tf.Tensor).data());
  const first = await mask();
  const second = await mask();
  assert.ok(first.every((v) => v === 0 || v === 2), "kept units are scaled by 1/(1-rate)");
  const dropped = first.filter((v) => v === 0).length / first.length;
  assert.ok(dropped > 0.35 && dropped < 0.65, `about half dropped (${dropped})`);
  assert.notDeepEqual(first, second, "a new mask every step");
  layer.step = 0;
  assert.deepEqual(await mask(), first, "the same step gives the same mask");
  assert.deepEqual(Array.from(await (layer.apply(x) as tf.Tensor).data()), Array.from(await x.data()), "identity at inference");

  // In a model: a training step after setDropoutStep(model, n) repeats step n exactly.
  const model = buildModel({ arch: "vgg19", head: "classic", finalBN: false, ...small, seed: 2 });
  const input = images(2, 32, 9);
  const train = async () => Array.from(await (model.apply(input, { training: true }) as tf.Tensor).data());
  setDropoutStep(model, 41);
  const at41 = await train();
  assert.equal(getDropoutStep(model), 42);
  const at42 = await train();
  assert.notDeepEqual(at41, at42);
  setDropoutStep(model, 41);
  assert.deepEqual(await train(), at41);
  // The layer survives a round trip through the model's JSON (checkpoints), seed included.
  const copy = await tf.models.modelFromJSON({ modelTopology: model.toJSON(null, false) as tf.io.ModelJSON["modelTopology"] });
  const restored = copy.getLayer("head/dropout1") as SeededDropout;
  assert.ok(restored instanceof SeededDropout);
  assert.equal(restored.seed, (model.getLayer("head/dropout1") as SeededDropout).seed);
  copy.dispose();
  model.dispose();
});

test("setBodyTrainable freezes the body except its BatchNorm layers (fastai's train_bn)", () => {
  const model = buildModel({ arch: "vgg19_bn", head: "fastai", finalBN: true, ...small });
  const all = model.trainableWeights.length;
  setBodyTrainable(model, false);
  const trainable = model.trainableWeights.map((w) => w.originalName);
  assert.ok(trainable.every((n) => !n.startsWith("body/conv")), "no body conv trains");
  assert.ok(trainable.includes("body/bn1_1/gamma") && trainable.includes("head/fc1/kernel") && trainable.includes("final_bn/gamma"));
  setBodyTrainable(model, true);
  assert.equal(model.trainableWeights.length, all);
  model.dispose();
});

test("bad configurations fail with a clear message", () => {
  assert.throws(() => buildModel({ arch: "vgg19", head: "fastai", finalBN: false, numClasses: 2, inputSize: 16 }), /inputSize/);
  assert.throws(() => buildModel({ arch: "vgg16" as Arch, head: "fastai", finalBN: false, numClasses: 2, inputSize: 32 }), /unknown arch/);
  assert.throws(() => buildModel({ arch: "vgg19", head: "fastai", finalBN: false, numClasses: 0, inputSize: 32 }), /numClasses/);
});

test("a training step reaches every trainable weight through dropout and batch norm", async () => {
  const model = buildModel({ arch: "resnet34", head: "fastai", finalBN: true, ...small });
  const x = images(2, 32, 3);
  const y = tf.oneHot(tf.tensor1d([0, 2], "int32"), 3);
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const crossEntropy = () => tf.neg(tf.mean(tf.sum(tf.mul(y, tf.log(model.apply(x, { training: true }) as tf.Tensor)), -1))) as tf.Scalar;
  const { value, grads } = tf.variableGrads(crossEntropy, vars);
  assert.ok(Number.isFinite((await value.data())[0]));
  assert.equal(Object.keys(grads).length, vars.length);
  tf.dispose([value, ...Object.values(grads), x, y]);
  model.dispose();
});

test("fastai head as fastai builds it: no bias after a BN, head BNs start with shift 1e-3; classic heads, body and final_bn as before", async () => {
  const model = buildModel({ arch: "vgg19_bn", head: "fastai", finalBN: true, ...small, seed: 4 });
  const names = model.weights.map((w) => w.originalName);
  for (const dense of ["head/fc1", "head/logits"]) {
    assert.ok(names.includes(`${dense}/kernel`), dense);
    assert.ok(!names.includes(`${dense}/bias`), `${dense} follows a BN: no bias`);
  }
  const values = async (name: string) => Array.from(await model.weights.find((w) => w.originalName === name)!.read().data());
  for (const bn of ["head/bn1", "head/bn2"]) {
    assert.ok((await values(`${bn}/beta`)).every((v) => v === Math.fround(1e-3)), `${bn} beta 1e-3`);
    assert.ok((await values(`${bn}/gamma`)).every((v) => v === 1), `${bn} gamma 1`);
  }
  for (const bn of ["body/bn1_1", "body/bn5_4", FINAL_BN_LAYER]) {
    assert.ok((await values(`${bn}/beta`)).every((v) => v === 0), `${bn} beta 0`);
    assert.ok((await values(`${bn}/gamma`)).every((v) => v === 1), `${bn} gamma 1`);
  }
  model.dispose();
  const classic = buildArchitecture({ arch: "vgg19", head: "classic", finalBN: false, ...small });
  const classicNames = classic.weights.map((w) => w.originalName);
  for (const dense of ["head/fc1", "head/fc2", "head/logits"]) assert.ok(classicNames.includes(`${dense}/bias`), `classic ${dense} keeps its bias`);
  classic.dispose();
});

/** Per-channel mean and biased/unbiased variance of a channels-last array with `c` channels. */
function channelStats(x: ArrayLike<number>, c: number): { mean: number[]; biased: number[]; unbiased: number[] } {
  const n = x.length / c;
  const mean = Array.from({ length: c }, (_, j) => {
    let s = 0;
    for (let i = 0; i < n; i++) s += x[i * c + j];
    return s / n;
  });
  const squares = Array.from({ length: c }, (_, j) => {
    let s = 0;
    for (let i = 0; i < n; i++) s += (x[i * c + j] - mean[j]) ** 2;
    return s;
  });
  return { mean, biased: squares.map((s) => s / n), unbiased: squares.map((s) => s / (n - 1)) };
}

test("BatchNorm: normalises with the biased batch variance, runs its variance on the unbiased one (PyTorch), else as tfjs", async () => {
  // 2 images x 3 x 3 pixels = 18 values per channel, 4 channels, far from mean 0 and variance 1.
  const x = tf.randomNormal([2, 3, 3, 4], 2, 3, "float32", 21);
  const xs = await x.data();
  const ours = new BatchNorm({ momentum: 0.9, epsilon: 1e-5, name: "ours" });
  const stock = tf.layers.batchNormalization({ momentum: 0.9, epsilon: 1e-5 });
  const yOurs = ours.apply(x, { training: true }) as tf.Tensor;
  const yStock = stock.apply(x, { training: true }) as tf.Tensor;
  assert.deepEqual(ours.weights.map((w) => w.originalName), ["ours/gamma", "ours/beta", "ours/moving_mean", "ours/moving_variance"]);

  const { mean, biased, unbiased } = channelStats(xs, 4);
  // The output: (x - mean) / sqrt(biased + eps), gamma 1 and beta 0; the same as tfjs's layer.
  assertClose(await yOurs.data(), Array.from(xs, (v, i) => (v - mean[i % 4]) / Math.sqrt(biased[i % 4] + 1e-5)), 1e-4, "output");
  assertClose(await yOurs.data(), await yStock.data(), 1e-6, "output against tfjs");
  // Running statistics after one step from (0, 1): 0.9 * old + 0.1 * batch value.
  const [, , movingMean, movingVariance] = await Promise.all(ours.getWeights().map((w) => w.data()));
  assertClose(movingMean, mean.map((m) => 0.1 * m), 1e-5, "moving mean");
  assertClose(movingVariance, unbiased.map((v) => 0.9 + 0.1 * v), 1e-5, "moving variance: unbiased, as PyTorch");
  const stockVariance = await stock.getWeights()[3].data();
  assertClose(stockVariance, biased.map((v) => 0.9 + 0.1 * v), 1e-5, "tfjs's layer runs the biased one");
  // Inference uses the running statistics, as tfjs does.
  assertClose(await (ours.apply(x) as tf.Tensor).data(), Array.from(xs, (v, i) => (v - movingMean[i % 4]) / Math.sqrt(movingVariance[i % 4] + 1e-5)), 1e-4, "inference");

  // One value per channel has no variance to estimate: refused in training, as PyTorch does.
  const single = new BatchNorm({ momentum: 0.9, epsilon: 1e-5, name: "single" });
  assert.throws(() => single.apply(tf.ones([1, 3]), { training: true }), /single: .*more than one value per channel/);
  tf.dispose([x, yOurs, yStock]);
});

test("every BN of every model (body, head, final_bn) runs the unbiased variance, and survives the model's JSON", async () => {
  for (const arch of ["vgg19_bn", "resnet34"] as Arch[]) {
    const model = buildModel({ arch, head: "fastai", finalBN: true, ...small, numClasses: 2, seed: 5 });
    const bns = model.layers.filter((l) => l.getClassName().includes("BatchNorm"));
    assert.ok(bns.every((l) => l instanceof BatchNorm), `${arch}: every BN layer is ours`);
    assert.ok(["head/bn1", "head/bn2", FINAL_BN_LAYER].every((n) => bns.some((l) => l.name === n)), `${arch}: head and final BNs`);
    // One training call of the whole model that also returns what went into each BN.
    const probe = tf.model({ inputs: model.inputs, outputs: [...bns.map((l) => l.input as tf.SymbolicTensor), model.outputs[0]] });
    const before = await Promise.all(bns.map((l) => l.getWeights()[3].data()));
    const outs = probe.apply(images(2, 32, 7), { training: true }) as tf.Tensor[];
    for (const [i, layer] of bns.entries()) {
      const input = outs[i];
      const { unbiased } = channelStats(await input.data(), input.shape.at(-1)!);
      const m = (layer as BatchNorm).momentum;
      const expected = unbiased.map((v, j) => m * before[i][j] + (1 - m) * v);
      assertClose(await layer.getWeights()[3].data(), expected, 1e-4, `${arch} ${layer.name} moving variance`);
    }
    tf.dispose(outs);
    // Checkpoints and notebooks may rebuild the model from its JSON: the layer and its settings come back.
    const copy = await tf.models.modelFromJSON({ modelTopology: model.toJSON(null, false) as tf.io.ModelJSON["modelTopology"] });
    const bn = copy.getLayer(FINAL_BN_LAYER);
    assert.ok(bn instanceof BatchNorm);
    assert.equal(bn.momentum, 0.99);
    assert.equal(bn.epsilon, 1e-5);
    copy.dispose();
    model.dispose();
  }
});
