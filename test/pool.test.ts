// Runs trained side by side in worker processes (trainInWorkers, through runExperiment) give the
// very runs that one process trains one after another, and a run that fails in a worker fails
// the experiment with its own message.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { tinyExperimentOptions, writeTinyPepperManifest } from "./train-suite.ts";
import { startBackend } from "../src/backends/index.ts";
import { runExperiment, type ExperimentOptions } from "../src/train/experiment.ts";
import type { BatchProgress, EpochRecord, TrainCallbacks } from "../src/train/learner.ts";
import { terminalProgressBoard } from "../src/train/progress.ts";
import { workerEnv } from "../src/train/pool.ts";

const SHARED = path.resolve(import.meta.dirname, "../../shared/data/plantvillage");
const INFO = { backend: "cpu", device: "test", versions: {} };
let dir = "";
let manifest = "";

before(async () => {
  if (!existsSync(SHARED)) return;
  await startBackend({ prefer: "cpu", log: () => {} });
  dir = await mkdtemp(path.join(os.tmpdir(), "finalbn-pool-"));
  manifest = await writeTinyPepperManifest(dir);
});
after(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

const options = (outDir: string, over: Partial<ExperimentOptions> = {}): ExperimentOptions =>
  tinyExperimentOptions({ manifest, dir, outDir }, { seeds: [1, 2], ...over });
const untimed = (h: EpochRecord[]) => h.map(({ seconds: _s, imagesPerSec: _i, ...rest }) => rest);

test("two worker processes train the same runs as one process, with progress from every run", async (t) => {
  if (!dir) return t.skip(`shared data not found at ${SHARED}`);
  const epochs: string[] = [];
  const callbacksFor = (label: string): TrainCallbacks => ({ onEpoch: (r) => epochs.push(`${label}:${r.epoch}`) });
  const one = await runExperiment(options("one"), { info: INFO, log: () => {} });
  const two = await runExperiment(options("two"), { info: INFO, log: () => {}, workers: 2, callbacksFor });
  assert.deepEqual(
    two.runs.map((r) => r.label),
    one.runs.map((r) => r.label),
  );
  assert.equal(two.runs.length, 4);
  for (let i = 0; i < 4; i++) assert.deepEqual(untimed(two.runs[i].history), untimed(one.runs[i].history), two.runs[i].label);
  assert.deepEqual(two.paired.pairs, one.paired.pairs);
  assert.equal(epochs.length, 8, "every epoch of the four runs reported back from the workers");
  assert.deepEqual(new Set(epochs.map((e) => e.split(":")[0])), new Set(one.runs.map((r) => r.label)));
});

test("a run that fails in a worker fails the experiment with its own message", async (t) => {
  if (!dir) return t.skip(`shared data not found at ${SHARED}`);
  const empty = await mkdtemp(path.join(dir, "no-images-"));
  await assert.rejects(runExperiment(options("fails", { data: empty }), { info: INFO, log: () => {}, workers: 2 }), /missing under/);
});

test("the progress board shows concurrent runs on one terminal line, and only epoch lines in a log file", () => {
  const written: string[] = [];
  const stream = (isTTY: boolean) => ({ isTTY, columns: 200, write: (s: string) => written.push(s) }) as unknown as NodeJS.WriteStream;
  const batch = (epoch: number, b: number): BatchProgress => ({ epoch, epochs: 2, batch: b, batches: 3, loss: 0.5, lr: 1e-3, imagesPerSec: 10 });
  const epoch = { epoch: 2, trainLoss: 0.1, testLoss: 0.2, accuracy: 0.9, precision: 1, recall: 0.5, f1: 0.667, seconds: 1 } as EpochRecord;

  const board = terminalProgressBoard(stream(true));
  const [a, b] = [board("run-a"), board("run-b")];
  a.onBatch!(batch(1, 1));
  b.onBatch!(batch(2, 3));
  assert.match(written.at(-1)!, /^\r\x1b\[Krun-a 1\/2:1\/3 loss 0\.500 \| run-b 2\/2:3\/3 loss 0\.500$/);
  b.onEpoch!(epoch);
  assert.match(written.at(-2)!, /run-b epoch 2: .*minority F1 0\.667/, "a finished epoch gets its own line");
  assert.match(written.at(-1)!, /^\r\x1b\[Krun-a epoch 1\/2 batch 1\/3/, "run-b's last epoch is done: run-a alone, in full");

  written.length = 0;
  const log = terminalProgressBoard(stream(false))("run-c");
  log.onBatch!(batch(1, 1));
  log.onEpoch!(epoch);
  assert.deepEqual(written.length, 1);
  assert.match(written[0], /^run-c epoch 2: /);
});

test("worker processes share the cores out between their thread pools, unless FINALBN_THREADS is set", () => {
  const cores = os.availableParallelism();
  assert.equal(workerEnv(cores, {}).FINALBN_THREADS, "1");
  assert.equal(workerEnv(1, {}).FINALBN_THREADS, String(cores));
  assert.equal(workerEnv(2 * cores, {}).FINALBN_THREADS, "1", "never fewer than one");
  assert.equal(workerEnv(2, { FINALBN_THREADS: "3" }).FINALBN_THREADS, "3");
});
