// The bench times the convolutions it derives from the stage tables (bench/conv-shapes.ts): check
// them against the convolution layers of the models training really builds.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { buildArchitecture, type Arch } from "../src/models/index.ts";
import { convGflop, modelConvs, outSide, type BenchModel } from "../bench/conv-shapes.ts";

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
