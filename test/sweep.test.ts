// Sweeps without a scheduler: a spec expands to stable, unique run folders and a bad spec is refused
// naming its key; the local pool runs N at a time and reports a failing run while the others
// finish; a partly finished sweep collects into a table (done, failed and pending rows) and is
// re-submitted for exactly what is missing; the Slurm executor's script and queue bookkeeping
// (with sbatch and squeue stood in for; test/sweep-slurm.test.ts runs a real cluster).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { planSweep, planTable } from "../src/sweep/plan.ts";
import { SpecError, validateSpec } from "../src/sweep/spec.ts";
import { runLocal, type LocalEvent } from "../src/sweep/local.ts";
import { runSweep, sweepStatus } from "../src/sweep/run.ts";
import { collectSweep, sweepCsv, writeSweepResults } from "../src/sweep/collect.ts";
import { missingRuns, statusCounts, statusText } from "../src/sweep/status.ts";
import { queueStates, sbatchScript, submitSlurm, type Exec } from "../src/sweep/slurm.ts";
import { readAttempts, readJson, type RunFile } from "../src/sweep/run-files.ts";
import { sweepAxisFigure } from "../src/viz/sweep-charts.ts";
import { writeTinyPepperManifest } from "./train-suite.ts";

const REPO = path.resolve(import.meta.dirname, "..");
const SHARED = path.resolve(import.meta.dirname, "../../shared/data/plantvillage");
let tmp = "";
before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), "finalbn-sweep-"));
});
after(() => rm(tmp, { recursive: true, force: true }));

const GRID = {
  name: "grid",
  fixed: { size: 32, width: 0.0625, epochs: 2 },
  axes: { ratio: ["99:1", "90:10"], batchSize: [16, 32], seed: [1, 2], finalBN: ["without", "with"] },
};

test("a spec expands to every combination, seed and final BN varying fastest, in stable and unique folders", () => {
  const plan = planSweep(GRID, { baseDir: "/work" });
  assert.equal(plan.runs.length, 16);
  assert.deepEqual(plan.axes, ["ratio", "batchSize", "seed", "finalBN"]);
  assert.deepEqual(
    plan.runs.slice(0, 4).map((r) => [r.settings.ratio, r.settings.batchSize, r.settings.seed, r.settings.finalBN]),
    [["99:1", 16, 1, false], ["99:1", 16, 1, true], ["99:1", 16, 2, false], ["99:1", 16, 2, true]],
  );
  assert.equal(new Set(plan.runs.map((r) => r.dir)).size, 16, "one folder per run");
  assert.equal(plan.out, "/work/runs/sweeps/grid");
  assert.ok(plan.runs.every((r) => r.dir.startsWith("/work/runs/sweeps/grid/runs/")));
  assert.match(plan.runs[1].id, /^synthetic-99to1-vgg19_bn-fastai-b16-finalbn-seed1-[0-9a-f]{8}$/);
  assert.equal(plan.splits.length, 2, "one split per ratio, shared by batch sizes, seeds and variants");

  // Planning again, with the keys in another order, "with" written as true and a default spelled out: the same folders.
  const again = planSweep({
    axes: { finalBN: [false, true], seed: [1, 2], batchSize: [16, 32], ratio: [[99, 1], [90, 10]] },
    fixed: { epochs: 2, width: 0.0625, size: 32, model: "vgg19_bn", lr: 0.001 },
    name: "grid",
  }, { baseDir: "/work" });
  assert.deepEqual(new Set(again.runs.map((r) => r.id)), new Set(plan.runs.map((r) => r.id)));
  // A run's folder is its settings': the same run in a smaller sweep has the same folder.
  const one = planSweep({ name: "grid", fixed: { size: 32, width: 0.0625, epochs: 2, ratio: "90:10", batchSize: 32, seed: 2, finalBN: "with" }, axes: {} });
  assert.equal(one.runs.length, 1);
  assert.equal(one.runs[0].id, plan.runs.find((r) => r.settings.ratio === "90:10" && r.settings.batchSize === 32 && r.settings.seed === 2 && r.settings.finalBN)!.id);
  // Another setting, another folder.
  const other = planSweep({ ...GRID, fixed: { ...GRID.fixed, epochs: 3 } }, { baseDir: "/work" });
  assert.equal(other.runs.filter((r) => plan.runs.some((p) => p.id === r.id)).length, 0);

  const table = planTable(plan).split("\n");
  assert.deepEqual(table[0].split(/\s+/), ["#", "ratio", "batchSize", "seed", "finalBN", "folder"]);
  assert.equal(table.length, 18);
});

test("a bad spec is refused with the offending key named", () => {
  const bad = (spec: unknown, message: RegExp) => assert.throws(() => validateSpec(spec), (e: unknown) => e instanceof SpecError && message.test((e as Error).message), message.source);
  bad({ ...GRID, axes: { batch: [16] } }, /^axes\.batch: unknown key \(known: .*batchSize/);
  bad({ ...GRID, fixed: { ratio: "99-1" } }, /^fixed\.ratio: must be "majority:minority"/);
  bad({ ...GRID, axes: { batchSize: [16, 1] } }, /^axes\.batchSize\[1\]: must be an integer of at least 2, got 1/);
  bad({ ...GRID, axes: { seed: [1, 2, 1] } }, /^axes\.seed\[2\]: 1 is listed twice/);
  bad({ ...GRID, axes: { finalBN: ["with", true] } }, /^axes\.finalBN\[1\]: true is listed twice/);
  bad({ ...GRID, axes: { finalBN: ["yes"] } }, /^axes\.finalBN\[0\]: must be "with" or "without"/);
  bad({ ...GRID, axes: { lr: [] } }, /^axes\.lr: must be a non-empty list/);
  bad({ ...GRID, fixed: { seed: 1 }, axes: { seed: [1, 2] } }, /^axes\.seed: also in fixed/);
  bad({ ...GRID, fixed: { manifest: "m.json" }, axes: { ratio: ["99:1"] } }, /^axes\.ratio: not with a manifest/);
  bad({ ...GRID, slurm: { mem: 16 } }, /^slurm\.mem: must be a string/);
  bad({ ...GRID, slurm: { gpus: 1 } }, /^slurm\.gpus: unknown key/);
  bad({ ...GRID, sweep: 1 }, /^sweep: unknown key/);
  bad({ ...GRID, name: "a/b" }, /^name: must be a folder-safe name/);
  bad({ ...GRID, fixed: { model: "vgg16" } }, /^fixed\.model: must be one of vgg19, vgg19_bn, resnet34/);
  // A combination the training config refuses names the grid point.
  assert.throws(() => planSweep({ name: "x", fixed: { epochs: 2 }, axes: { freezeEpochs: [0, 1] } }), /freezeEpochs only makes sense with pretrained weights at freezeEpochs=1/);
});

test("npm run sweep: a bad spec is a one-line usage error, exit code 2", async () => {
  const spec = path.join(tmp, "bad.json");
  await writeFile(spec, JSON.stringify({ ...GRID, axes: { ...GRID.axes, batchsize: [16] } }));
  const r = await new Promise<{ code: number; stderr: string }>((resolve) =>
    execFile(process.execPath, ["--import", "tsx", "src/cli/sweep.ts", "plan", spec], { cwd: REPO }, (err, _out, stderr) => resolve({ code: err ? (err.code as number) : 0, stderr })),
  );
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^error: axes\.batchsize: unknown key/);
  assert.equal(r.stderr.trim().split("\n").length, 1);
});

test("the local pool runs N at a time and reports a failing run while the others finish", async () => {
  const runs = ["a", "b", "c", "d", "e"].map((id) => ({ id, dir: path.join(tmp, "pool", id) }));
  // Each "run" takes 400 ms, but c fails at once, writing its error where a task does.
  const script = `const fs = require("fs"), p = require("path"); const dir = process.argv[1];
    if (p.basename(dir) === "c") { fs.writeFileSync(p.join(dir, "error.json"), JSON.stringify({ message: "c went wrong" })); process.exit(1); }
    setTimeout(() => {}, 400);`;
  const events: LocalEvent[] = [];
  let running = 0;
  let most = 0;
  const result = await runLocal(runs, {
    jobs: 2,
    command: (run) => ({ file: process.execPath, args: ["-e", script, run.dir] }),
    onEvent: (e) => {
      events.push(e);
      running += e.type === "start" ? 1 : -1;
      most = Math.max(most, running);
    },
  });
  assert.equal(most, 2, "two at a time, never more");
  assert.deepEqual(result.done.sort(), ["a", "b", "d", "e"]);
  assert.deepEqual(result.failed, [{ id: "c", message: "c went wrong" }]);
  assert.equal(events.filter((e) => e.type === "start").length, 5, "the failure did not stop the pool");
  assert.ok(events.findIndex((e) => e.type === "failed") < events.findIndex((e) => e.type === "start" && e.run.id === "e"), "e took c's slot when c failed, while d still ran");
});

test("stopping the local pool starts nothing more and stops the running runs, which count as interrupted, not failed", async () => {
  const runs = ["x", "y", "z"].map((id) => ({ id, dir: path.join(tmp, "stop", id) }));
  const controller = new AbortController();
  const events: string[] = [];
  const result = await runLocal(runs, {
    jobs: 2,
    signal: controller.signal,
    command: () => ({ file: process.execPath, args: ["-e", "setTimeout(() => {}, 20000)"] }),
    onEvent: (e) => {
      events.push(`${e.type} ${e.run.id}`);
      if (events.length === 2) setTimeout(() => controller.abort(), 300);
    },
  });
  assert.deepEqual({ ...result, interrupted: result.interrupted.sort() }, { done: [], failed: [], interrupted: ["x", "y"] });
  assert.deepEqual(events.sort(), ["interrupted x", "interrupted y", "start x", "start y"], "z never started");
});

test("the sweep chart: one dot per finished seed and each group's mean with its 95% t-interval, per value and variant", () => {
  const row = (ratio: string, finalBN: boolean, seed: number, finalF1: number | null) => ({ ratio, finalBN, seed, finalF1 });
  const rows = [row("99:1", false, 1, 0), row("99:1", false, 2, 0.2), row("99:1", true, 1, 0.6), row("99:1", true, 2, 0.8), row("50:50", true, 1, 0.9), row("50:50", true, 2, null)];
  const fig = sweepAxisFigure(rows, { axis: "ratio" });
  const [dotsWithout, meanWithout, dotsWith, meanWith] = fig.data as { x: number[]; y: number[]; error_y: { array: number[]; arrayminus: number[] } }[];
  assert.deepEqual(dotsWithout.y, [0, 0.2]);
  assert.deepEqual(dotsWith.y, [0.6, 0.8, 0.9], "the unfinished run has no dot");
  assert.deepEqual(meanWithout.y.map((y) => +y.toFixed(6)), [0.1]);
  assert.deepEqual(meanWith.y.map((y) => +y.toFixed(6)), [0.7, 0.9]);
  // Two seeds 0.2 apart: sd 0.1414, t(0.975, 1) = 12.706, half width 12.706 * 0.1414 / sqrt(2) = 1.2706.
  assert.ok(Math.abs(meanWith.error_y.array[0] - 1.27062) < 1e-4 && Math.abs(meanWith.error_y.arrayminus[0] - 1.27062) < 1e-4);
  assert.deepEqual(meanWith.error_y.array[1], 0, "one seed: no interval");
  assert.deepEqual((fig.layout.xaxis as { ticktext: string[] }).ticktext, ["99:1", "50:50"]);
  assert.ok(meanWith.x[0] > meanWithout.x[0], "with the final BN to the right of without, at each value");
});

test("the Slurm executor writes one job array with the resources passed through, and maps the queue back to runs", async () => {
  const plan = planSweep({ ...GRID, out: path.join(tmp, "slurm-plan"), slurm: { partition: "gpu", gres: "gpu:1", mem: "8G", maxParallel: 2 } });
  const script = sbatchScript({ plan, listFile: "/x/list.txt", count: 16, slurm: { ...plan.slurm, cpusPerTask: 4, time: "01:00:00" } });
  for (const line of ["#SBATCH --array=0-15%2", "#SBATCH --partition=gpu", "#SBATCH --gres=gpu:1", "#SBATCH --cpus-per-task=4", "#SBATCH --mem=8G", "#SBATCH --time=01:00:00", "#SBATCH --requeue", "#SBATCH --open-mode=append"])
    assert.ok(script.split("\n").includes(line), line);
  assert.match(script, /sweep\.ts' task "\$RUN_DIR"$/m);
  assert.ok(!sbatchScript({ plan, listFile: "/x", count: 1, slurm: { requeue: false } }).includes("--requeue\n"));

  const calls: string[][] = [];
  const fake: Exec = async (file, args) => {
    calls.push([file, ...args]);
    if (file === "sbatch") return { code: 0, stdout: "4242\n", stderr: "" };
    if (file === "sacct") return { code: 1, stdout: "", stderr: "Slurm accounting storage is disabled" };
    return { code: 0, stdout: "4242_0|RUNNING|None\n4242_1|PENDING|JobArrayTaskLimit\n4242_2|TIMEOUT|None\n4242_3|COMPLETED|None\n", stderr: "" };
  };
  const todo = plan.runs.slice(4, 8);
  const { jobId } = await submitSlurm(plan, todo, { slurm: plan.slurm, exec: fake });
  assert.equal(jobId, "4242");
  const list = (await readFile(calls[0][2].replace(/\.sbatch$/, ".txt"), "utf8")).trim().split("\n");
  assert.deepEqual(list, todo.map((r) => r.dir), "array index i runs the i-th listed folder");

  const queue = await queueStates(plan, fake);
  assert.deepEqual([...queue].map(([id, q]) => [id, q.state]), todo.map((r, i) => [r.id, ["RUNNING", "PENDING", "TIMEOUT", "COMPLETED"][i]]));
  const statuses = await sweepStatus(plan, { exec: fake });
  assert.deepEqual(statuses.slice(4, 8).map((s) => s.state), ["running", "pending", "failed", "pending"]);
  assert.match(statuses[6].detail, /Slurm task 4242_2 ended TIMEOUT/);
  // Re-submission: not the running one, not the queued one.
  assert.deepEqual(missingRuns(statuses).map((r) => r.index), [0, 1, 2, 3, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
});

// Real runs, real (synthetic) leaves: 1 epoch on 99 + 1 leaves at 32 px, a 1/16-wide VGG19-BN.
test("a partly finished sweep: failed runs keep their error, collect tables done, failed and pending runs, a re-run trains only what is missing", async () => {
  const base = {
    name: "partly",
    out: path.join(tmp, "partly"),
    backend: "cpu",
    pixelCache: path.join(tmp, "cache", "pixels"),
    leafCache: path.join(tmp, "cache", "leaves"),
    fixed: { size: 32, width: 0.0625, epochs: 1, lr: 0.003, trainMajority: 99, testPerClass: 10 },
  };
  // Batch 400 is more than the 100 training leaves: those runs fail, right after loading the data.
  const first = planSweep({ ...base, axes: { batchSize: [16, 400], seed: [1], finalBN: ["without", "with"] } });
  const ran = await runSweep(first, { executor: "local", jobs: 2 });
  assert.deepEqual(ran.local!.done.sort(), first.runs.filter((r) => r.settings.batchSize === 16).map((r) => r.id).sort());
  assert.equal(ran.local!.failed.length, 2);
  for (const f of ran.local!.failed) assert.match(f.message, /batch size 400 is larger than the 100 training images/);
  const failedRun = first.runs.find((r) => r.settings.batchSize === 400)!;
  assert.ok(existsSync(path.join(failedRun.dir, "error.json")), "the error is kept in the run's folder");
  assert.equal(readAttempts(failedRun.dir).at(-1)!.outcome, "failed");

  // The same grid with a second seed: the first seed's runs are found where they were.
  const grown = planSweep({ ...base, axes: { batchSize: [16, 400], seed: [1, 2], finalBN: ["without", "with"] } });
  const statuses = await sweepStatus(grown);
  assert.deepEqual(statusCounts(statuses), { done: 2, running: 0, pending: 4, failed: 2 });
  const text = statusText(grown, statuses);
  assert.match(text, /^partly: 8 runs: 2 done, 0 running, 4 pending, 2 failed/);
  assert.match(text, /failed   synthetic-99to1-vgg19_bn-fastai-b400-nofinalbn-seed1-\w+: batch size 400 is larger/);

  const collected = await collectSweep(grown);
  assert.deepEqual(collected.rows.map((r) => [r.batchSize, r.seed, r.finalBN, r.status]), [
    [16, 1, false, "done"], [16, 1, true, "done"], [16, 2, false, "pending"], [16, 2, true, "pending"],
    [400, 1, false, "failed"], [400, 1, true, "failed"], [400, 2, false, "pending"], [400, 2, true, "pending"],
  ]);
  for (const r of collected.rows) {
    assert.equal(r.finalF1 === null, r.status !== "done", r.run);
    if (r.status === "done") assert.ok(r.finalF1! >= 0 && r.finalF1! <= 1 && r.finalTrainLoss! > 0 && r.epochsDone === 1 && r.bestEpoch === 1);
  }
  assert.deepEqual(collected.columns.slice(0, 6), ["run", "status", "batchSize", "seed", "finalBN", "epochsDone"]);
  const files = await writeSweepResults(collected);
  const csv = (await readFile(files.csv, "utf8")).trim().split("\n");
  assert.equal(csv.length, 9);
  assert.equal(csv[0], collected.columns.join(","));
  assert.match(csv[3], /,pending,16,2,false,0,,,,/, "a pending run's metrics are empty cells");
  assert.deepEqual(JSON.parse(await readFile(files.json, "utf8")), collected.rows);
  assert.equal(sweepCsv(collected.rows, collected.columns), await readFile(files.csv, "utf8"));
  const html = await readFile(files.html, "utf8");
  assert.match(html, /Final minority F1 by batchSize/);
  assert.match(html, /<h2>Not finished<\/h2>/);
  assert.match(html, /batch size 400 is larger/);

  // Re-running trains exactly the failed and pending runs, never the finished ones.
  const again = await runSweep(grown, { executor: "local", jobs: 2 });
  assert.deepEqual(again.started.map((r) => r.index), [2, 3, 4, 5, 6, 7]);
  assert.deepEqual(statusCounts(await sweepStatus(grown)), { done: 4, running: 0, pending: 0, failed: 4 });
  assert.equal(readAttempts(grown.runs[0].dir).length, 1, "the finished run was not started again");
  assert.equal(readAttempts(failedRun.dir).length, 2, "the failed run was tried again");
});

test("a sweep over a committed-style manifest of real Pepper photos: no split is made, every run reads the manifest", async (t) => {
  if (!existsSync(SHARED)) return t.skip(`shared data not found at ${SHARED}`);
  const manifest = await writeTinyPepperManifest(tmp);
  const plan = planSweep({
    name: "pepper",
    out: path.join(tmp, "pepper"),
    backend: "cpu",
    pixelCache: path.join(tmp, "cache", "pixels"),
    fixed: { manifest, data: SHARED, size: 32, width: 0.0625, epochs: 1, batchSize: 10, lr: 0.003 },
    axes: { finalBN: ["without", "with"] },
  });
  assert.equal(plan.splits.length, 0);
  assert.match(plan.runs[0].id, /^pepper-tiny-vgg19_bn-fastai-b10-nofinalbn-seed1-[0-9a-f]{8}$/);
  const ran = await runSweep(plan, { executor: "local", jobs: 2 });
  assert.deepEqual(ran.local!.failed, []);
  const run = (await readJson<RunFile>(path.join(plan.runs[1].dir, "run.json")))!;
  assert.equal(run.config.manifest, manifest);
  assert.equal(run.config.data, SHARED);
  const { rows } = await collectSweep(plan);
  assert.deepEqual(rows.map((r) => [r.status, r.manifest, r.ratio, r.finalBN]), [["done", manifest, null, false], ["done", manifest, null, true]]);
});
