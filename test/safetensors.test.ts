// The .safetensors reader/writer, the torchvision weight loader (checked against convolutions
// and a dense layer computed by hand in PyTorch's NCHW convention) and the weights:fetch
// download, served from a loopback server.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";
import * as tf from "@tensorflow/tfjs";
import { makeRng } from "../src/data/rng.ts";
import { downloadWeights } from "../src/models/download.ts";
import { buildModel, loadTorchvisionWeights, torchvisionBodyTensors } from "../src/models/index.ts";
import { hwioToOihw, oihwToHwio } from "../src/models/torchvision.ts";
import { f16ToNumber, numberToBF16, numberToF16, parseSafetensors, readSafetensors, toFloat32, writeSafetensors, type TensorToWrite } from "../src/models/safetensors.ts";
import { CHECKPOINT_FILE, loadCheckpoint } from "../src/train/checkpoint.ts";

// ---------- the file format ----------

test("write then parse: F32, F16, BF16 and I64 round-trip; header aligned; metadata kept", () => {
  const values = [0, 1, -2.5, 0.1, 65504, 1e-7, -3.140625];
  const bytes = writeSafetensors(
    {
      a: { shape: [7], data: values },
      h: { shape: [7], data: values, dtype: "F16" },
      b: { shape: [1, 7], data: values, dtype: "BF16" },
      n: { shape: [], data: [12345], dtype: "I64" },
    },
    { format: "pt" },
  );
  const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.equal((8 + headerLength) % 8, 0, "data starts on an 8-byte boundary");
  const file = parseSafetensors(bytes);
  assert.deepEqual(file.metadata, { format: "pt" });
  assert.deepEqual([...file.tensors.keys()], ["a", "h", "b", "n"]);
  assert.deepEqual(Array.from(toFloat32(file.tensors.get("a")!)), Array.from(new Float32Array(values)));
  const half = toFloat32(file.tensors.get("h")!);
  values.forEach((v, i) => assert.ok(Math.abs(half[i] - v) <= Math.abs(v) * 1e-3 + 6e-8, `F16 ${v} -> ${half[i]}`));
  const bf = toFloat32(file.tensors.get("b")!);
  values.forEach((v, i) => assert.ok(Math.abs(bf[i] - v) <= Math.abs(v) * 8e-3, `BF16 ${v} -> ${bf[i]}`));
  assert.deepEqual(file.tensors.get("b")!.shape, [1, 7]);
  assert.deepEqual(Array.from(toFloat32(file.tensors.get("n")!)), [12345]);
});

test("half-precision bit patterns are decoded exactly", () => {
  const cases: [number, number][] = [[0x3c00, 1], [0xc000, -2], [0x7bff, 65504], [0x0001, 2 ** -24], [0x3555, 0.333251953125], [0x7c00, Infinity]];
  for (const [bits, value] of cases) {
    assert.equal(f16ToNumber(bits), value);
    assert.equal(numberToF16(value), bits);
  }
  assert.equal(numberToBF16(1), 0x3f80);
  assert.equal(numberToBF16(-2), 0xc000);
  // Hand-made BF16 bytes: 0x3f80 = 1.0, 0x4049 = 3.140625 (little-endian in the file).
  const bytes = writeSafetensors({ x: { shape: [2], data: [0, 0], dtype: "BF16" } });
  bytes.set([0x80, 0x3f, 0x49, 0x40], bytes.length - 4);
  assert.deepEqual(Array.from(toFloat32(parseSafetensors(bytes).tensors.get("x")!)), [1, 3.140625]);
});

test("broken files are rejected with a message that names the problem", () => {
  const good = writeSafetensors({ w: { shape: [2, 2], data: [1, 2, 3, 4] } });
  assert.throws(() => parseSafetensors(good.subarray(0, 5)), /shorter than 8 bytes/);
  assert.throws(() => parseSafetensors(good.subarray(0, good.length - 4)), /w: data_offsets/);
  const lying = new Uint8Array(good);
  new DataView(lying.buffer).setBigUint64(0, 1n << 40n, true);
  assert.throws(() => parseSafetensors(lying), /header length/);
});

test("a truncated checkpoint names its file and what to do; the file is left as it was", async () => {
  const runDir = await mkdtemp(path.join(os.tmpdir(), "finalbn-ckpt-"));
  try {
    const whole = writeSafetensors({ "model.0": { shape: [64], data: new Array(64).fill(0.5) } }, { format: "finalbn-checkpoint/1", history: "[]" });
    const file = path.join(runDir, CHECKPOINT_FILE);
    // Cut inside the header (a copy or a full disk that stopped early), then inside the data.
    for (const [cut, problem] of [[40, /header length \d+ exceeds the file's 40 bytes/], [whole.length - 10, /model\.0: data_offsets .* run past the end of the file/]] as const) {
      const bytes = whole.subarray(0, cut);
      await writeFile(file, bytes);
      // The model and optimizer are never reached: the file is checked first.
      await assert.rejects(loadCheckpoint(runDir, {} as never, {} as never, {} as never), (err: Error) => {
        assert.ok(err.message.startsWith(`checkpoint ${file} is damaged (`), err.message);
        assert.match(err.message, problem);
        assert.match(err.message, /delete it to train this run afresh, or restore it from a copy$/);
        return true;
      });
      assert.deepEqual(await readFile(file), Buffer.from(bytes), "the damaged file is not touched");
    }
    // Read as weights (--pretrained), the error names the file too.
    await assert.rejects(readSafetensors(file), (err: Error) => err.message.startsWith(`${file}: model.0: data_offsets`));
  } finally {
    await rm(runDir, { recursive: true, force: true });
  }
});

// ---------- PyTorch's computations, written out by hand ----------

interface Chw {
  data: Float32Array;
  c: number;
  h: number;
  w: number;
}

/** NHWC tensor (batch 1) to a C,H,W array, PyTorch's layout. */
async function toChw(t: tf.Tensor): Promise<Chw> {
  const [, h, w, c] = t.shape;
  const nhwc = await t.data();
  const data = new Float32Array(c * h * w);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let k = 0; k < c; k++) data[(k * h + y) * w + x] = nhwc[(y * w + x) * c + k];
  return { data, c, h, w };
}

/** torch.nn.functional.conv2d for one image: weight [O, C, kh, kw], symmetric zero padding. */
function torchConv2d(x: Chw, weight: Float32Array, bias: Float32Array | undefined, o: number, k: number, stride: number, pad: number): Chw {
  const h = Math.floor((x.h + 2 * pad - k) / stride) + 1;
  const w = Math.floor((x.w + 2 * pad - k) / stride) + 1;
  const out = new Float32Array(o * h * w);
  for (let f = 0; f < o; f++)
    for (let y = 0; y < h; y++)
      for (let xx = 0; xx < w; xx++) {
        let sum = bias ? bias[f] : 0;
        for (let c = 0; c < x.c; c++)
          for (let i = 0; i < k; i++)
            for (let j = 0; j < k; j++) {
              const yy = y * stride - pad + i;
              const xi = xx * stride - pad + j;
              if (yy < 0 || yy >= x.h || xi < 0 || xi >= x.w) continue;
              sum += x.data[(c * x.h + yy) * x.w + xi] * weight[((f * x.c + c) * k + i) * k + j];
            }
        out[(f * h + y) * w + xx] = sum;
      }
  return { data: out, c: o, h, w };
}

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string, tol = 1e-4): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < actual.length; i++) {
    assert.ok(Math.abs(actual[i] - expected[i]) <= tol * (1 + Math.abs(expected[i])), `${what}[${i}]: ${actual[i]} vs ${expected[i]}`);
  }
}

/** Outputs of several named layers of a model for one input. */
async function layerOutputs(model: tf.LayersModel, x: tf.Tensor, names: string[]): Promise<tf.Tensor[]> {
  const probe = tf.model({ inputs: model.inputs, outputs: names.map((n) => model.getLayer(n).output as tf.SymbolicTensor) });
  return probe.predict(x) as tf.Tensor[];
}

// ---------- torchvision state_dicts, as torchvision names them ----------

function randomTensor(shape: number[], seed: number, opts: { positive?: boolean } = {}): TensorToWrite {
  const rng = makeRng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  const data = Float32Array.from({ length: n }, () => (opts.positive ? 0.5 + rng() : (rng() - 0.5) * 0.4));
  return { shape, data };
}

/** A vgg19_bn state_dict at width 1/16 (channels 4 ... 32), torchvision's `features` numbering. */
function vgg19bnStateDict(opts: { mapSize: number; classes: number; timm?: boolean }): Record<string, TensorToWrite> {
  const cfg = [4, 4, "M", 8, 8, "M", 16, 16, 16, 16, "M", 32, 32, 32, 32, "M", 32, 32, 32, 32, "M"] as const;
  const sd: Record<string, TensorToWrite> = {};
  let index = 0;
  let inC = 3;
  let seed = 100;
  for (const v of cfg) {
    if (v === "M") {
      index += 1;
      continue;
    }
    sd[`features.${index}.weight`] = randomTensor([v, inC, 3, 3], seed++);
    sd[`features.${index}.bias`] = randomTensor([v], seed++);
    sd[`features.${index + 1}.weight`] = randomTensor([v], seed++, { positive: true });
    sd[`features.${index + 1}.bias`] = randomTensor([v], seed++);
    sd[`features.${index + 1}.running_mean`] = randomTensor([v], seed++);
    sd[`features.${index + 1}.running_var`] = randomTensor([v], seed++, { positive: true });
    sd[`features.${index + 1}.num_batches_tracked`] = { shape: [], data: [1000], dtype: "I64" };
    inC = v;
    index += 3;
  }
  const flat = 32 * opts.mapSize * opts.mapSize;
  const [fc1, fc2, fc3] = opts.timm ? ["pre_logits.fc1", "pre_logits.fc2", "head.fc"] : ["classifier.0", "classifier.3", "classifier.6"];
  // timm stores the first two dense layers as convolutions: [4096, 512, 7, 7] and [4096, 4096, 1, 1].
  sd[`${fc1}.weight`] = randomTensor(opts.timm ? [256, 32, opts.mapSize, opts.mapSize] : [256, flat], 900);
  sd[`${fc1}.bias`] = randomTensor([256], 901);
  sd[`${fc2}.weight`] = randomTensor(opts.timm ? [256, 256, 1, 1] : [256, 256], 902);
  sd[`${fc2}.bias`] = randomTensor([256], 903);
  sd[`${fc3}.weight`] = randomTensor([opts.classes, 256], 904);
  sd[`${fc3}.bias`] = randomTensor([opts.classes], 905);
  return sd;
}

/** A resnet34 state_dict at width 1/16 (channels 4, 8, 16, 32), torchvision's names. */
function resnet34StateDict(classes: number): Record<string, TensorToWrite> {
  const sd: Record<string, TensorToWrite> = {};
  let seed = 200;
  const bn = (prefix: string, c: number) => {
    sd[`${prefix}.weight`] = randomTensor([c], seed++, { positive: true });
    sd[`${prefix}.bias`] = randomTensor([c], seed++);
    sd[`${prefix}.running_mean`] = randomTensor([c], seed++);
    sd[`${prefix}.running_var`] = randomTensor([c], seed++, { positive: true });
  };
  sd["conv1.weight"] = randomTensor([4, 3, 7, 7], seed++);
  bn("bn1", 4);
  let inC = 4;
  [[3, 4], [4, 8], [6, 16], [3, 32]].forEach(([blocks, c], l) => {
    for (let b = 0; b < blocks; b++) {
      const p = `layer${l + 1}.${b}`;
      sd[`${p}.conv1.weight`] = randomTensor([c, b === 0 ? inC : c, 3, 3], seed++);
      bn(`${p}.bn1`, c);
      sd[`${p}.conv2.weight`] = randomTensor([c, c, 3, 3], seed++);
      bn(`${p}.bn2`, c);
      if (b === 0 && l > 0) {
        sd[`${p}.downsample.0.weight`] = randomTensor([c, inC, 1, 1], seed++);
        bn(`${p}.downsample.1`, c);
      }
    }
    inC = c;
  });
  sd["fc.weight"] = randomTensor([classes, 32], seed++);
  sd["fc.bias"] = randomTensor([classes], seed++);
  return sd;
}

const f32 = (t: TensorToWrite) => Float32Array.from(t.data);

test("vgg19_bn weights: a converted conv, its BN and the classic head's first dense match PyTorch's arithmetic", async () => {
  const sd = vgg19bnStateDict({ mapSize: 2, classes: 5 });
  const model = buildModel({ arch: "vgg19_bn", head: "classic", finalBN: false, numClasses: 3, inputSize: 64, width: 1 / 16 });
  const report = await loadTorchvisionWeights(model, writeSafetensors(sd), { arch: "vgg19_bn" });

  assert.equal(report.loaded.length, 16 * 6 + 4, "16 conv+BN groups and two classifier layers");
  assert.deepEqual(report.missing, ["head/logits/kernel", "head/logits/bias"]);
  const skipped = new Map(report.skipped.map((s) => [s.name, s.reason]));
  assert.match(skipped.get("classifier.6.weight")!, /class count differs: the file has 5 classes, the model 3/);
  assert.match(skipped.get("features.1.num_batches_tracked")!, /step counter/);
  assert.equal(report.skipped.length, 16 + 2);

  const x = tf.randomNormal([1, 64, 64, 3], 0, 1, "float32", 4);
  const [conv, bn, pool5, fc1] = await layerOutputs(model, x, ["body/conv1_1", "body/bn1_1", "body/pool5", "head/fc1"]);
  // features.0: a 3x3 conv, padding 1, with bias.
  const expectedConv = torchConv2d(await toChw(x), f32(sd["features.0.weight"]), f32(sd["features.0.bias"]), 4, 3, 1, 1);
  assertClose((await toChw(conv)).data, expectedConv.data, "features.0");
  // features.1: eval-mode BatchNorm, eps 1e-5.
  const [g, b, m, v] = ["weight", "bias", "running_mean", "running_var"].map((p) => f32(sd[`features.1.${p}`]));
  const hw = expectedConv.h * expectedConv.w;
  const expectedBn = expectedConv.data.map((val, i) => {
    const c = Math.floor(i / hw);
    return ((val - m[c]) / Math.sqrt(v[c] + 1e-5)) * g[c] + b[c];
  });
  assertClose((await toChw(bn)).data, expectedBn, "features.1");
  // classifier.0 + ReLU on torch.flatten of the 2x2x32 map, in C,H,W order.
  const flat = (await toChw(pool5)).data;
  const w0 = f32(sd["classifier.0.weight"]);
  const b0 = f32(sd["classifier.0.bias"]);
  const expectedFc1 = Array.from({ length: 256 }, (_, o) => Math.max(0, flat.reduce((s, val, i) => s + val * w0[o * flat.length + i], b0[o])));
  assertClose(await fc1.data(), expectedFc1, "classifier.0");

  // timm's copy of the same weights (pre_logits.fc1 as a conv, head.fc) loads identically.
  const timmModel = buildModel({ arch: "vgg19_bn", head: "classic", finalBN: false, numClasses: 5, inputSize: 64, width: 1 / 16 });
  const timmReport = await loadTorchvisionWeights(timmModel, writeSafetensors(vgg19bnStateDict({ mapSize: 2, classes: 5, timm: true })), { arch: "vgg19_bn" });
  assert.deepEqual(timmReport.missing, []);
  assert.ok(timmReport.loaded.includes("pre_logits.fc1.weight") && timmReport.loaded.includes("head.fc.bias"));
  for (const name of ["head/fc1", "head/fc2"]) {
    const [a, c] = [model, timmModel].map((mm) => mm.getLayer(name).getWeights()[0]);
    assert.deepEqual(await a.data(), await c.data(), name);
  }
  model.dispose();
  timmModel.dispose();
});

test("resnet34 weights: stride-2 convs pad symmetrically like PyTorch; everything loads", async () => {
  const sd = resnet34StateDict(4);
  const model = buildModel({ arch: "resnet34", head: "classic", finalBN: true, numClasses: 4, inputSize: 64, width: 1 / 16 });
  const report = await loadTorchvisionWeights(model, writeSafetensors(sd), { arch: "resnet34" });
  assert.equal(report.loaded.length, Object.keys(sd).length);
  assert.deepEqual(report.skipped, []);
  assert.deepEqual(report.missing.sort(), ["final_bn/beta", "final_bn/gamma", "final_bn/moving_mean", "final_bn/moving_variance"]);

  const x = tf.randomNormal([1, 64, 64, 3], 0, 1, "float32", 6);
  const names = ["body/conv1", "body/layer1_2/relu2", "body/layer2_0/conv1", "body/layer2_0/downsample_conv", "head/logits", "body/layer4_2/relu2"];
  const [conv1, l1, l2conv1, down, logits, features] = await layerOutputs(model, x, names);
  // conv1: 7x7, stride 2, padding 3, no bias.
  assertClose((await toChw(conv1)).data, torchConv2d(await toChw(x), f32(sd["conv1.weight"]), undefined, 4, 7, 2, 3).data, "conv1");
  // layer2.0.conv1: 3x3, stride 2, padding 1 (tfjs "same" would pad only bottom/right).
  const l1Chw = await toChw(l1);
  assertClose((await toChw(l2conv1)).data, torchConv2d(l1Chw, f32(sd["layer2.0.conv1.weight"]), undefined, 8, 3, 2, 1).data, "layer2.0.conv1");
  assertClose((await toChw(down)).data, torchConv2d(l1Chw, f32(sd["layer2.0.downsample.0.weight"]), undefined, 8, 1, 2, 0).data, "downsample.0");
  // fc on the global average pool.
  const feat = await toChw(features);
  const pooled = Array.from({ length: feat.c }, (_, c) => feat.data.slice(c * feat.h * feat.w, (c + 1) * feat.h * feat.w).reduce((a, b) => a + b, 0) / (feat.h * feat.w));
  const [fw, fb] = [f32(sd["fc.weight"]), f32(sd["fc.bias"])];
  assertClose(await logits.data(), Array.from({ length: 4 }, (_, o) => pooled.reduce((s, p, i) => s + p * fw[o * 32 + i], fb[o])), "fc");
  model.dispose();
});

test("the loader names the tensor on a shape mismatch, refuses the wrong arch and reports an unused classifier", async () => {
  const model = buildModel({ arch: "vgg19_bn", head: "classic", finalBN: false, numClasses: 5, inputSize: 64, width: 1 / 16 });
  const sd = vgg19bnStateDict({ mapSize: 2, classes: 5 });
  sd["features.3.weight"] = randomTensor([4, 3, 3, 3], 1); // conv1_2 takes 4 input channels, not 3
  await assert.rejects(loadTorchvisionWeights(model, writeSafetensors(sd), { arch: "vgg19_bn" }), /features\.3\.weight: shape \[4,3,3,3\] does not fit body\/conv1_2\/kernel/);
  await assert.rejects(loadTorchvisionWeights(model, writeSafetensors(resnet34StateDict(5)), { arch: "resnet34" }), /the model is a vgg19_bn/);
  // The classic head's first dense only fits the map it was trained on.
  const bigger = buildModel({ arch: "vgg19_bn", head: "classic", finalBN: false, numClasses: 5, inputSize: 96, width: 1 / 16 });
  await assert.rejects(loadTorchvisionWeights(bigger, writeSafetensors(vgg19bnStateDict({ mapSize: 2, classes: 5 })), { arch: "vgg19_bn" }), /classifier\.0\.weight.*224 px/);
  bigger.dispose();

  const fastai = buildModel({ arch: "vgg19_bn", head: "fastai", finalBN: true, numClasses: 2, inputSize: 32, width: 1 / 16 });
  const report = await loadTorchvisionWeights(fastai, writeSafetensors(vgg19bnStateDict({ mapSize: 1, classes: 5 })), { arch: "vgg19_bn" });
  assert.equal(report.loaded.length, 16 * 6);
  assert.ok(report.skipped.filter((s) => s.name.startsWith("classifier.")).every((s) => /fastai head/.test(s.reason)));
  assert.ok(report.missing.every((n) => n.startsWith("head/") || n.startsWith("final_bn/")));
  fastai.dispose();
  model.dispose();
});

// ---------- weights:fetch against a loopback server ----------

async function serve(body: Uint8Array): Promise<{ url: string; close: () => Promise<void> }> {
  const server = http.createServer((req, res) => {
    if (req.url === "/missing") {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "content-type": "application/octet-stream", "content-length": body.length }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

test("a body saved in torchvision's layout loads back into another model unchanged (vgg19_bn and resnet34)", async () => {
  const kernel = Float32Array.from({ length: 3 * 3 * 4 * 5 }, (_, i) => i);
  assert.deepEqual(Array.from(oihwToHwio(hwioToOihw(kernel, [3, 3, 4, 5]), [5, 4, 3, 3])), Array.from(kernel), "the layouts invert each other");
  for (const arch of ["vgg19_bn", "resnet34"] as const) {
    const config = { arch, head: "fastai" as const, finalBN: true, numClasses: 2, inputSize: 32, width: 1 / 16 };
    const trained = buildModel({ ...config, seed: 1 });
    // Running statistics are part of the body: give them values a fresh model does not have.
    for (const w of trained.weights.filter((w) => /moving_(mean|variance)$/.test(w.originalName))) w.write(tf.fill(w.shape as number[], 0.5));
    const tensors = torchvisionBodyTensors(trained);
    assert.ok(!Object.keys(tensors).some((n) => n.startsWith("classifier") || n.startsWith("fc.")), "the body only");
    const fresh = buildModel({ ...config, seed: 2 });
    const report = await loadTorchvisionWeights(fresh, writeSafetensors(tensors), { arch });
    const body = (m: tf.LayersModel) => m.weights.filter((w) => w.originalName.startsWith("body/"));
    assert.equal(report.loaded.length, body(trained).length, `${arch}: every body weight loaded`);
    assert.ok(report.missing.every((n) => !n.startsWith("body/")), `${arch}: the head keeps its own weights`);
    body(trained).forEach((w, i) => assert.deepEqual(body(fresh)[i].read().dataSync(), w.read().dataSync(), w.originalName));
    trained.dispose();
    fresh.dispose();
  }
});

test("weights:fetch downloads, checks the SHA-256, renames into place, and leaves nothing behind on failure", async () => {
  const body = writeSafetensors({ "fc.weight": { shape: [2, 3], data: [1, 2, 3, 4, 5, 6] } });
  const sha256 = createHash("sha256").update(body).digest("hex");
  const server = await serve(body);
  const out = await mkdtemp(path.join(os.tmpdir(), "finalbn-weights-"));
  try {
    const wrong = "0".repeat(64);
    await assert.rejects(downloadWeights({ model: "resnet34", out, url: `${server.url}/w`, sha256: wrong }), new RegExp(`SHA-256 is ${sha256}`));
    await assert.rejects(downloadWeights({ model: "resnet34", out, url: `${server.url}/missing` }), /HTTP 404/);
    assert.deepEqual(await readdir(out), [], "no partial file is left");

    // The command line itself, as `npm run weights:fetch` runs it.
    const cli = path.resolve(import.meta.dirname, "../src/cli/weights-fetch.ts");
    const run = promisify(execFile);
    const { stdout } = await run(process.execPath, ["--import", "tsx", cli, "--model", "resnet34", "--out", out, "--url", `${server.url}/w`, "--sha256", sha256], { timeout: 60_000 });
    assert.match(stdout, new RegExp(`sha256 ${sha256} \\(matches`));
    const file = path.join(out, "resnet34.safetensors");
    assert.deepEqual(await readFile(file), Buffer.from(body));
    assert.deepEqual(await readdir(out), ["resnet34.safetensors"]);

    const again = await downloadWeights({ model: "resnet34", out, url: `${server.url}/w` });
    assert.equal(again.downloaded, false);
    assert.equal(again.sha256, sha256);

    const bad = await run(process.execPath, ["--import", "tsx", cli, "--model", "vgg16", "--out", out], { timeout: 60_000 }).catch((e: { code: number; stderr: string }) => e);
    assert.equal((bad as { code: number }).code, 2);
    assert.match((bad as { stderr: string }).stderr, /^error: --model must be one of vgg19, vgg19_bn, resnet34/m);
  } finally {
    await server.close();
    await rm(out, { recursive: true, force: true });
  }
  assert.ok(!existsSync(out));
});
