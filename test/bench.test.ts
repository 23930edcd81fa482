// npm run bench's own logic: the convolutions it derives from the stage tables (bench/conv-shapes.ts),
// checked against the layers of the models training really builds, and how it sums a network up.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { buildArchitecture, type Arch } from "../src/models/index.ts";
import { convGflop, modelConvs, outSide, type BenchModel } from "../bench/conv-shapes.ts";
import { modelTotal, type OpRow } from "../bench/conv-ops.ts";
import { median, timeAlternating } from "../bench/timing.ts";
import { threadSpeedups, vgg19StepGflop, type StepRow } from "../bench/train-step.ts";

/** "outSide/inC/outC/k/stride" of every Conv2D layer of a model, sorted. */
function layerKeys(arch: Arch, size: number): string[] {
  const model = buildArchitecture({ arch, head: "fastai", finalBN: true, numClasses: 2, inputSize: size, width: 1 });
  const keys = model.layers
    .filter((l) => l.getClassName() === "Conv2D")
    .map((l) => {
      const config = l.getConfig() as { filters: number; kernelSize: number[]; strides: number[] };
      const inC = (l.input as tf.SymbolicTensor).shape[3];
      const out = (l.output as tf.SymbolicTensor).shape;
      return `${out[1]}/${inC}/${config.filters}/${config.kernelSize[0]}/${config.strides[0]}`;
    });
  model.dispose();
  return keys.sort();
}

function benchKeys(model: BenchModel, size: number): string[] {
  return modelConvs(model, size)
    .flatMap((c) => Array<string>(c.count).fill(`${outSide(c)}/${c.inC}/${c.outC}/${c.k}/${c.stride}`))
    .sort();
}

for (const size of [64, 224]) {
  test(`bench shapes: VGG19's 16 convolutions at ${size} px`, () => {
    const keys = benchKeys("vgg19", size);
    assert.equal(keys.length, 16);
    assert.deepEqual(keys, layerKeys("vgg19", size));
  });

  test(`bench shapes: ResNet34's 36 convolutions at ${size} px`, () => {
    const keys = benchKeys("resnet34", size);
    assert.equal(keys.length, 36);
    assert.deepEqual(keys, layerKeys("resnet34", size));
  });
}

test("bench shapes: VGG19's convolutions at 224 px do the commonly quoted 19.5 billion multiply-adds per image", () => {
  const gflop = modelConvs("vgg19", 224).reduce((sum, c) => sum + c.count * convGflop(c, 1), 0);
  assert.ok(Math.abs(gflop / 2 - 19.5) < 0.2, `VGG19 convolutions: ${gflop / 2} GMAC per image`);
});

test("a network's total weights each shape by its count, and counts the stock time where ours handed over", () => {
  const row = (layer: string, count: number, stockMs: number, oursMs: number | null): OpRow => ({
    model: "vgg19", layer, shape: "", count, op: "input", gflop: 1, stockMs, oursMs,
    stockGflops: 0, oursGflops: null, speedup: null, stockBatch: 4,
  });
  const rows = [row("conv1_1", 1, 10, null), row("conv3_2", 3, 20, 5), row("conv5_1", 4, 2, 1)];
  const total = modelTotal(rows, "vgg19", "input")!;
  assert.equal(total.gflop, 8);
  assert.equal(total.stockMs, 10 + 3 * 20 + 4 * 2);
  assert.equal(total.oursMs, 10 + 3 * 5 + 4 * 1, "conv1_1 at its stock time");
  assert.equal(total.speedup, 78 / 29);
  assert.equal(total.shape, "8 conv layers");
  assert.equal(modelTotal(rows, "vgg19", "input", { subset: true })!.layer, "vgg19 listed");
  assert.equal(modelTotal([row("conv1_1", 1, 10, null)], "vgg19", "input")!.oursMs, null, "no kernel of ours at all");
  assert.equal(modelTotal(rows, "resnet34", "input"), undefined);
});

test("timing alternates the contenders round by round and reports each one's median", async () => {
  const order: string[] = [];
  // Work counted in loop iterations and timed in process CPU time: a busy machine cannot skew it.
  let sink = 0;
  const work = (n: number) => {
    for (let i = 0; i < n; i++) sink += Math.sqrt(i);
  };
  const contenders = ["a", "b"].map((name, i) => ({
    before: () => order.push(name),
    run: async () => work(i === 0 ? 2e6 : 6e6),
  }));
  const [a, b] = await timeAlternating(contenders, { clock: "cpu", minMs: 1, rounds: 3 });
  assert.deepEqual(order, ["a", "a", "b", "b", "a", "b", "a", "b", "a", "b"], "two warm-up calls each, then 3 alternating rounds");
  assert.ok(sink > 0);
  assert.ok(b! > 1.5 * a!, `3 times the work took ${b} ms against ${a} ms`);
  assert.equal(median([5, 1, 3]), 3);
  assert.equal(median([4, 1, 3, 2]), 2.5);
});

test("a VGG19 step's convolution FLOPs: forward, filter and input gradients, none for the image", () => {
  const forward = modelConvs("vgg19", 32).reduce((sum, c) => sum + c.count * convGflop(c, 4), 0);
  const first = convGflop(modelConvs("vgg19", 32)[0]!, 4);
  assert.ok(Math.abs(vgg19StepGflop(32, 4, 1) - (3 * forward - first)) < 1e-9);
  assert.ok(vgg19StepGflop(32, 4, 1 / 8) < vgg19StepGflop(32, 4, 1) / 50, "width 1/8 has about 1/64 of the FLOPs");
});

test("the thread guard compares convolution time per step on 1 thread with the most threads timed", () => {
  const row = (finalBN: boolean, threads: number, msPerStep: number, convMsPerStep: number) =>
    ({ arch: "vgg19", finalBN, kernels: "ours", size: 32, batch: 4, width: 1, msPerStep, imagesPerSec: 4000 / msPerStep, threads, clock: threads > 1 ? "wall" : "cpu", gflops: 1, convMsPerStep, convShare: convMsPerStep / msPerStep }) as StepRow;
  const rows = [row(false, 1, 1000, 600), row(false, 2, 700, 320), row(true, 1, 1000, 600)];
  assert.deepEqual(threadSpeedups(rows), [{ finalBN: false, threads: 2, conv: 600 / 320, step: 1000 / 700 }]);
});
