// The training loop on real Pepper leaves at a tiny scale: it logs, a killed run resumes to the
// same result, a diverging run stops cleanly, and no tensors leak. One suite, run on the cpu
// backend (train.test.ts) and on webgpu (train-webgpu.test.ts), each in its own process.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { spawn } from "node:child_process";
import os from "node:os";
import path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { indexDataset } from "../src/data/index.ts";
import { buildManifest } from "../src/data/split.ts";
import { writeManifest } from "../src/data/manifest.ts";
import { startBackend } from "../src/backends/index.ts";
import { resolveTrainConfig, type TrainConfig } from "../src/train/config.ts";
import { train, NanLossError, type EpochRecord } from "../src/train/learner.ts";
import { CHECKPOINT_FILE } from "../src/train/checkpoint.ts";
import type { ExperimentOptions } from "../src/train/experiment.ts";

const REPO = path.resolve(import.meta.dirname, "..");
const SHARED = path.resolve(import.meta.dirname, "../../shared/data/plantvillage");

/** 27 healthy + 3 diseased real Pepper leaves to train on (9:1), 8 + 8 to test on: a manifest in `dir`. */
export async function writeTinyPepperManifest(dir: string): Promise<string> {
  const file = path.join(dir, "pepper-tiny.json");
  await writeManifest(file, await buildManifest(await indexDataset(SHARED), { crop: "Pepper", ratio: [9, 1], seed: 3, testPerClass: 8, trainMajority: 27 }));
  return file;
}

/** The tiny experiment of the pool and interrupt tests: that manifest, width 1/16, 32 px, batches of 10, both variants. */
export function tinyExperimentOptions(o: { manifest: string; dir: string; outDir: string }, over: Partial<ExperimentOptions> = {}): ExperimentOptions {
  return {
    manifest: o.manifest,
    data: SHARED,
    arch: "vgg19_bn",
    head: "fastai",
    finalBN: "both",
    seeds: [1],
    width: 1 / 16,
    size: 32,
    epochs: 2,
    batchSize: 10,
    lr: 3e-3,
    cacheDir: path.join(o.dir, "cache"),
    outDir: path.join(o.dir, o.outDir),
    ...over,
  };
}

export function trainSuite(backend: "cpu" | "webgpu", skipReason?: string): void {
  const INFO = { backend, device: "test", versions: {} };
  let dir = "";
  let manifest = "";

  before(async () => {
    if (!existsSync(SHARED) || skipReason) return;
    const started = await startBackend({ prefer: backend, log: () => {} });
    assert.equal(started.name, backend, `the ${backend} backend starts (${started.reason})`);
    dir = await mkdtemp(path.join(os.tmpdir(), "finalbn-train-"));
    manifest = await writeTinyPepperManifest(dir);
  });
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  function config(over: Partial<TrainConfig> = {}): TrainConfig {
    return resolveTrainConfig({
      manifest,
      data: SHARED,
      arch: "vgg19_bn",
      head: "fastai",
      finalBN: true,
      width: 1 / 16,
      size: 32,
      epochs: 3,
      batchSize: 10,
      lr: 3e-3,
      cacheDir: path.join(dir, "cache"),
      ...over,
    });
  }

  /** Everything of an epoch record but its timings, which differ between runs. */
  const untimed = (h: EpochRecord[]) => h.map(({ seconds: _s, imagesPerSec: _i, ...rest }) => rest);

  test("a run writes its config, per-epoch metrics as JSON lines and CSV, predictions and a checkpoint", async (t) => {
    if (!dir) return t.skip(skipReason ?? `shared data not found at ${SHARED}`);
    const runDir = path.join(dir, "run-files");
    const batches: number[] = [];
    const result = await train(config({ epochs: 2 }), { runDir, info: INFO, callbacks: { onBatch: (p) => batches.push(p.batch) } });
    result.model.dispose();
    assert.equal(result.history.length, 2);
    assert.deepEqual(batches, [1, 2, 3, 1, 2, 3], "30 training images in batches of 10, every epoch");
    const lines = (await readFile(path.join(runDir, "metrics.jsonl"), "utf8")).trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(untimed(lines), untimed(result.history));
    const csv = (await readFile(path.join(runDir, "metrics.csv"), "utf8")).trim().split("\n");
    assert.equal(csv.length, 3);
    assert.match(csv[0], /^epoch,trainLoss,testLoss,accuracy,precision,recall,f1,tn,fp,fn,tp/);
    const saved = JSON.parse(await readFile(path.join(runDir, "config.json"), "utf8"));
    assert.equal(saved.config.seed, 1);
    assert.equal(saved.backend, backend);
    const preds = JSON.parse(await readFile(path.join(runDir, "predictions.json"), "utf8"));
    assert.equal(preds.labels.length, 16, "8 + 8 test images");
    assert.equal(preds.probs.length, 32);
    for (const r of result.history) {
      const [[tn, fp], [fn, tp]] = r.confusion;
      assert.equal(tn + fp + fn + tp, 16);
      assert.ok(Number.isFinite(r.trainLoss) && Number.isFinite(r.testLoss), "finite losses");
    }
    assert.ok(existsSync(path.join(runDir, CHECKPOINT_FILE)), "checkpoint written");
  });

  test("a run stopped after epoch 1 resumes from its checkpoint to the same result as an uninterrupted run", async (t) => {
    if (!dir) return t.skip(skipReason ?? `shared data not found at ${SHARED}`);
    const whole = await train(config(), { runDir: path.join(dir, "whole"), info: INFO });
    const interrupted = path.join(dir, "interrupted");
    const first = await train(config(), { runDir: interrupted, info: INFO, callbacks: { stopAfterEpoch: 1 } });
    assert.equal(first.history.length, 1);
    first.model.dispose();
    const resumed = await train(config(), { runDir: interrupted, info: INFO });
    assert.equal(resumed.resumedAfter, 1);
    assert.deepEqual(untimed(resumed.history), untimed(whole.history));
    const a = await Promise.all(whole.model.weights.map((w) => w.read().data()));
    const b = await Promise.all(resumed.model.weights.map((w) => w.read().data()));
    a.forEach((wa, i) => assert.deepEqual(b[i], wa, `weight ${whole.model.weights[i].originalName} identical`));
    whole.model.dispose();
    resumed.model.dispose();
  });

  test("a checkpoint of other settings is refused, not mixed in", async (t) => {
    if (!dir) return t.skip(skipReason ?? `shared data not found at ${SHARED}`);
    const runDir = path.join(dir, "other-settings");
    (await train(config({ epochs: 1 }), { runDir, info: INFO })).model.dispose();
    await assert.rejects(train(config({ epochs: 1, lr: 1e-2 }), { runDir, info: INFO }), /other settings/);
  });

  test("a diverging run stops with a clear message and keeps the last good checkpoint", async (t) => {
    if (!dir) return t.skip(skipReason ?? `shared data not found at ${SHARED}`);
    const runDir = path.join(dir, "nan");
    (await train(config({ epochs: 1 }), { runDir, info: INFO })).model.dispose();
    const good = await readFile(path.join(runDir, CHECKPOINT_FILE));
    // Same run continued for more epochs would be "other settings"; a fresh folder with a learning
    // rate that overflows AdamW's update makes the loss non-finite within an epoch.
    const bad = path.join(dir, "nan-fresh");
    await assert.rejects(train(config({ epochs: 2, lr: 1e38, weightDecay: 0 }), { runDir: bad, info: INFO }), (err: Error) => {
      assert.ok(err instanceof NanLossError, `NanLossError, got ${err}`);
      assert.match(err.message, /loss became (NaN|Infinity|-Infinity) at epoch 1, batch \d/);
      return true;
    });
    assert.ok(!existsSync(path.join(bad, CHECKPOINT_FILE)), "no checkpoint of a diverged epoch");
    assert.deepEqual(await readFile(path.join(runDir, CHECKPOINT_FILE)), good, "the good run's checkpoint is untouched");
  });

  test("no tensor leaks: as many live tensors after epoch 10 as after epoch 2", async (t) => {
    if (!dir) return t.skip(skipReason ?? `shared data not found at ${SHARED}`);
    const counts: number[] = [];
    const result = await train(config({ epochs: 10 }), {
      runDir: path.join(dir, "leak"),
      info: INFO,
      callbacks: { onEpoch: () => counts.push(tf.memory().numTensors) },
    });
    result.model.dispose();
    assert.equal(counts.length, 10);
    assert.equal(counts[9], counts[1], `live tensors per epoch: ${counts.join(", ")}`);
  });

  test("a run killed mid-training with SIGKILL resumes from its checkpoint to the uninterrupted result", async (t) => {
    if (!dir) return t.skip(skipReason ?? `shared data not found at ${SHARED}`);
    const args = (out: string) => [
      "--import", "tsx", "src/cli/experiment.ts", "--manifest", manifest, "--data", SHARED, "--model", "vgg19_bn",
      "--final-bn", "with", "--epochs", "3", "--size", "32", "--batch", "10", "--width", "0.0625", "--lr", "0.003",
      "--backend", backend, "--out", out,
    ];
    const env = { ...process.env, FINALBN_CACHE: path.join(dir, "cache") };
    const run = (out: string, killWhen?: () => boolean) =>
      new Promise<number | null>((resolve) => {
        const child = spawn(process.execPath, args(out), { cwd: REPO, env, stdio: "ignore" });
        const timer = killWhen && setInterval(() => killWhen() && child.kill("SIGKILL"), 50);
        child.on("exit", (code) => {
          if (timer) clearInterval(timer);
          resolve(code);
        });
      });
    const whole = path.join(dir, "cli-whole");
    const killed = path.join(dir, "cli-killed");
    const variant = "vgg19_bn-fastai-finalbn-seed1";
    assert.equal(await run(whole), 0);
    // metrics.jsonl is written right after the checkpoint: waiting for it (not the checkpoint) keeps a
    // slow, loaded machine from killing the run between the two writes.
    assert.equal(await run(killed, () => existsSync(path.join(killed, variant, "metrics.jsonl"))), null, "killed by the signal");
    assert.ok(existsSync(path.join(killed, variant, CHECKPOINT_FILE)), "a checkpoint was there to resume from");
    const metrics = (out: string) => readFile(path.join(out, variant, "metrics.jsonl"), "utf8").then((s) => untimed(s.trim().split("\n").map((l) => JSON.parse(l))));
    assert.ok((await metrics(killed)).length < 3, "the kill came before the run finished");
    assert.equal(await run(killed), 0, "rerunning the same command resumes");
    assert.deepEqual(await metrics(killed), await metrics(whole));
    assert.ok(existsSync(path.join(killed, "report.html")));
  });
}
