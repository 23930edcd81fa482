// Stopping training (Ctrl-C, Kernel → Interrupt): it ends after the current batch with one line
// saying where, writes nothing of the unfinished epoch, and the same call again resumes to the
// very runs an uninterrupted call trains; in this process or in worker processes. And one trainer
// per run folder: a second one is refused while the first lives, a dead one's lock is taken over.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { spawn } from "node:child_process";
import os from "node:os";
import path from "node:path";
import { inspect } from "node:util";
import { tinyExperimentOptions, writeTinyPepperManifest } from "./train-suite.ts";
import { startBackend } from "../src/backends/index.ts";
import { runExperiment, type ExperimentOptions } from "../src/train/experiment.ts";
import type { EpochRecord, TrainCallbacks } from "../src/train/learner.ts";
import { Interrupted, isInterrupted, onInterrupt } from "../src/train/interrupt.ts";
import { LOCK_FILE, lockRun, RunLockedError } from "../src/train/run-lock.ts";

const SHARED = path.resolve(import.meta.dirname, "../../shared/data/plantvillage");
const INFO = { backend: "cpu", device: "test", versions: {} };
let dir = "";
let manifest = "";

before(async () => {
  if (!existsSync(SHARED)) return;
  await startBackend({ prefer: "cpu", log: () => {} });
  dir = await mkdtemp(path.join(os.tmpdir(), "finalbn-interrupt-"));
  manifest = await writeTinyPepperManifest(dir);
});
after(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

const options = (outDir: string, over: Partial<ExperimentOptions> = {}): ExperimentOptions =>
  tinyExperimentOptions({ manifest, dir, outDir }, { epochs: 3, ...over });
const untimed = (h: EpochRecord[]) => h.map(({ seconds: _s, imagesPerSec: _i, ...rest }) => rest);
const savedEpochs = async (runDir: string) =>
  (await readFile(path.join(runDir, "metrics.jsonl"), "utf8")).trim().split("\n").length;

/** Abort `controller` when any run reaches epoch 2, batch 2; counts batches reported after that. */
function stopInEpoch2(controller: AbortController) {
  const after = { batches: 0 };
  const callbacksFor = (): TrainCallbacks => ({
    onBatch: (p) => {
      if (controller.signal.aborted) after.batches++;
      else if (p.epoch === 2 && p.batch === 2) controller.abort();
    },
  });
  return { callbacksFor, after };
}

for (const workers of [1, 2]) {
  test(`interrupted in epoch 2 (${workers === 1 ? "in this process" : "two worker processes"}): one line, epoch 1 kept, and running again resumes to the uninterrupted result`, async (t) => {
    if (!dir) return t.skip(`shared data not found at ${SHARED}`);
    const reference = await runExperiment(options(`reference-${workers}`), { info: INFO, log: () => {} });

    const controller = new AbortController();
    const stop = stopInEpoch2(controller);
    const started = Date.now();
    const error = await runExperiment(options(`stopped-${workers}`), {
      info: INFO, log: () => {}, workers, signal: controller.signal, callbacksFor: stop.callbacksFor,
    }).then(() => undefined, (e: unknown) => e);
    assert.ok(isInterrupted(error), `interrupted, got ${String(error)}`);
    const text = inspect(error);
    assert.equal(text.split("\n").length, 1, `printed as one line: ${text}`);
    assert.match(text, /^Interrupted: training stopped \(.*finalbn-seed1 in epoch \d, batch \d of 3, epochs 1-\d saved.*\)\. Run it again to resume/);
    assert.ok(Date.now() - started < 120_000);
    const stops = (error as Interrupted).stops;
    assert.equal(stops.length, workers, "every run that was training says where it stopped");
    for (const s of stops) {
      const runDir = path.join(dir, `stopped-${workers}`, s.label);
      // A worker learns of the stop a moment later: it may finish the batch it is in, and if that
      // was the epoch's last, the epoch; never the whole run.
      assert.ok(s.epoch >= 2 && s.epoch <= 3 && s.saved === s.epoch - 1, JSON.stringify(s));
      assert.equal(await savedEpochs(runDir), s.saved, `${s.label}: only finished epochs are on disk`);
      assert.equal(existsSync(path.join(runDir, LOCK_FILE)), false, "the lock is released");
    }
    assert.ok(stop.after.batches <= 2 * workers, `${stop.after.batches} batches reported after the stop`);

    const resumed = await runExperiment(options(`stopped-${workers}`), { info: INFO, log: () => {}, workers });
    for (const [i, run] of resumed.runs.entries()) {
      assert.deepEqual(untimed(run.history), untimed(reference.runs[i].history), `${run.label} after resuming`);
    }
  });
}

test("onInterrupt() stops a training in this process (what the notebook kernel calls on SIGINT), and says whether one ran", async (t) => {
  if (!dir) return t.skip(`shared data not found at ${SHARED}`);
  assert.equal(onInterrupt(), false, "nothing to stop");
  let asked = false;
  const error = await runExperiment(options("kernel", { finalBN: "with" }), {
    info: INFO,
    log: () => {},
    callbacksFor: () => ({ onBatch: (p) => void (p.epoch === 1 && p.batch === 1 && (asked = onInterrupt())) }),
  }).then(() => undefined, (e: unknown) => e);
  assert.equal(asked, true);
  assert.ok(error instanceof Interrupted, String(error));
  assert.match(error.message, /in epoch 1, batch 1 of 3, no epoch saved yet/);
});

test("a run folder has one trainer: a second is refused naming the holder, a dead holder's lock is taken over", async (t) => {
  const root = await mkdtemp(path.join(os.tmpdir(), "finalbn-lock-"));
  t.after(() => rm(root, { recursive: true, force: true }));
  const runDir = path.join(root, "run");
  const release = await lockRun(runDir);
  await assert.rejects(lockRun(runDir), (e: unknown) => e instanceof RunLockedError && e.message.includes(`process ${process.pid}`));
  await release();
  assert.equal(existsSync(path.join(runDir, LOCK_FILE)), false);

  // A live process of someone else.
  const other = spawn(process.execPath, ["-e", "setTimeout(() => {}, 60000)"]);
  t.after(() => other.kill());
  await writeFile(path.join(runDir, LOCK_FILE), JSON.stringify({ pid: other.pid, host: os.hostname(), since: "2026-01-01T00:00:00Z" }));
  await assert.rejects(lockRun(runDir), new RegExp(`being trained by process ${other.pid} since 2026-01-01.*Kernel → Interrupt`));

  // That process gone: its lock is stale.
  other.kill();
  await new Promise((resolve) => other.once("exit", resolve));
  await (await lockRun(runDir))();

  // An unreadable lock (a crash while writing it) is stale too.
  await mkdir(runDir, { recursive: true });
  await writeFile(path.join(runDir, LOCK_FILE), "{");
  await (await lockRun(runDir))();
});

test("an experiment whose run folder is being trained elsewhere stops before training, with that message", async (t) => {
  if (!dir) return t.skip(`shared data not found at ${SHARED}`);
  const opts = options("locked", { finalBN: "with" });
  const runDir = path.join(opts.outDir!, "vgg19_bn-fastai-finalbn-seed1");
  const release = await lockRun(runDir);
  try {
    await assert.rejects(runExperiment(opts, { info: INFO, log: () => {} }), RunLockedError);
    assert.equal(existsSync(path.join(runDir, "metrics.jsonl")), false, "nothing trained");
  } finally {
    await release();
  }
});

test("Ctrl-C in npm run experiment: one line, exit code 130, and the same command again resumes", { timeout: 600_000 }, async (t) => {
  if (!dir) return t.skip(`shared data not found at ${SHARED}`);
  const out = path.join(dir, "cli");
  const args = ["--import", "tsx", "src/cli/experiment.ts", "--manifest", manifest, "--data", SHARED, "--seeds", "1", "--epochs", "6",
    "--size", "32", "--width", "0.0625", "--batch", "10", "--backend", "cpu", "--out", out];
  const run = (onStderr?: (text: string, child: ReturnType<typeof spawn>) => void) =>
    new Promise<{ code: number | null; stderr: string; stdout: string }>((resolve) => {
      const child = spawn(process.execPath, args, { cwd: path.resolve(import.meta.dirname, "..") });
      let stderr = "";
      let stdout = "";
      child.stdout.on("data", (d) => (stdout += d));
      child.stderr.on("data", (d) => {
        stderr += d;
        onStderr?.(stderr, child);
      });
      child.on("exit", (code) => resolve({ code, stderr, stdout }));
    });
  // Not a terminal, so progress comes as a line per epoch: Ctrl-C once the first epoch is saved.
  let sent = false;
  const first = await run((text, child) => {
    if (!sent && /epoch 1: train loss/.test(text)) {
      sent = true;
      child.kill("SIGINT");
    }
  });
  assert.equal(first.code, 130, first.stderr);
  const last = first.stderr.trim().split("\n").at(-1)!;
  assert.match(last, /^Interrupted: training stopped \(.*epochs 1-\d saved.*\)\. Run it again to resume/);
  assert.doesNotMatch(first.stderr, /^\s+at /m, "no stack trace");
  const second = await run();
  assert.equal(second.code, 0, second.stderr);
  assert.match(second.stdout + second.stderr, /resum(ing|ed) after epoch [1-5]/);
});
