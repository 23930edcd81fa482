// npm run demo: the paper's experiment end to end on the embedded synthetic leaves, at a scale a
// 2-core laptop finishes in minutes: generate leaves, build a 99:1 split with a balanced test set,
// pretrain the body on other leaves, fine-tune VGG19-BN with and without the final BN for two
// seeds (one worker process per core), print per-seed F1, the paired difference with its 95%
// interval and the verdict, and write the HTML report.
import path from "node:path";
import { numberFlag, parseFlags, runCli, UsageError } from "./args.ts";
import { prepareSplit } from "../data/prepare.ts";
import { runExperiment, summaryTable } from "../train/experiment.ts";
import { defaultWorkers } from "../train/pool.ts";
import { pretrainOnOtherLeaves } from "../train/pretrain.ts";
import { CLASSROOM } from "../train/presets.ts";
import { terminalProgressBoard } from "../train/progress.ts";
import { verdict } from "../train/stats.ts";
import { writeExperimentReport } from "../viz/report.ts";
import { startRun } from "./start-run.ts";
import { BACKEND_CHOICES } from "../backends/index.ts";

const C = CLASSROOM;
const spec = {
  out: { type: "string", help: "output folder", default: "runs/demo" },
  epochs: { type: "string", help: "epochs per run", default: String(C.epochs) },
  seeds: { type: "string", help: "comma-separated seeds", default: C.seeds.join(",") },
  "split-seed": { type: "string", help: "seed of the 99:1 split (which leaves train and test)", default: "1" },
  "no-pretrain": { type: "boolean", help: "train from scratch instead of from the pretrained body" },
  workers: { type: "string", help: "runs trained at once (default: one per core on the cpu backend)" },
  backend: { type: "string", help: "auto | cuda | webgpu | cpu", default: "auto" },
} as const;

runCli(async () => {
  const f = parseFlags("demo", "The final-BN experiment on synthetic leaves, at classroom scale.", spec);
  const epochs = numberFlag("epochs", f.epochs, { integer: true, min: 1 })!;
  const seeds = f.seeds!.split(",").map((s) => numberFlag("seeds", s.trim(), { integer: true, min: 0 })!);
  const splitSeed = numberFlag("split-seed", f["split-seed"], { integer: true, min: 0 })!;
  const workersFlag = numberFlag("workers", f.workers, { integer: true, min: 1 });
  const backend = BACKEND_CHOICES.find((b) => b === f.backend);
  if (!backend) throw new UsageError(`--backend must be one of ${BACKEND_CHOICES.join(", ")}, got "${f.backend}"`);
  const out = path.join(f.out!, `split${splitSeed}`);
  const started = performance.now();
  const log = console.log;

  // 1. Synthetic leaves (generated once) and the 99:1 split: 990 healthy and 10 diseased
  // leaves to train on, 100 + 100 to test on.
  const split = await prepareSplit({
    data: "",
    seed: splitSeed,
    trainMajority: C.trainMajority,
    testPerClass: C.testPerClass,
    size: C.size,
    lesionScale: C.lesionScale,
    manifestDir: out,
    manifestName: "manifest.json",
    log,
  });
  const { train, test } = split.counts;
  log(`split 99:1 (seed ${splitSeed}): train ${train.majority} healthy + ${train.minority} diseased, test ${test.majority} + ${test.minority}`);

  const info = await startRun(backend);
  const workers = workersFlag ?? defaultWorkers(info.backend);
  const progress = terminalProgressBoard();

  // 2. The body, pretrained once on other leaves (another leaf seed, balanced): the classroom's
  // ImageNet. The 99:1 experiment's leaves are never among them.
  let pretrained: string | undefined;
  if (C.pretrain && !f["no-pretrain"]) {
    const body = await pretrainOnOtherLeaves(
      { pretrain: C.pretrain, size: C.size, width: C.width, lesionScale: C.lesionScale, runDir: f.out! },
      { info, callbacks: progress("pretrain"), log },
    );
    const last = body.history[body.history.length - 1];
    log(`pretrained body: minority F1 ${last.f1.toFixed(2)} on its own balanced test set -> ${body.file}`);
    pretrained = body.file;
  }

  // 3. Both variants of the same network, same seeds, same data, same starting body.
  const result = await runExperiment(
    {
      manifest: split.manifestFile,
      data: split.data,
      arch: "vgg19_bn",
      head: "fastai",
      finalBN: "both",
      seeds,
      epochs,
      size: C.size,
      width: C.width,
      batchSize: C.batchSize,
      lr: C.lr,
      pretrained,
      outDir: out,
      title: `finalbn demo: synthetic leaves, 99:1, split seed ${splitSeed}`,
    },
    { info, callbacksFor: progress, workers },
  );

  const reportFile = await writeExperimentReport(result);
  log(`\n${summaryTable(result.summary, result.paired)}\n`);
  log(verdict(result.paired));
  log(`\ntook ${((performance.now() - started) / 1000).toFixed(0)} s; report: ${reportFile}`);
});
