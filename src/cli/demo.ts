// npm run demo: the paper's experiment end to end on the embedded synthetic leaves, at a scale a
// 2-core laptop finishes in minutes: generate leaves, build a 99:1 split with a balanced test set,
// train VGG19-BN with and without the final BN, print the F1 table and write the HTML report.
import { numberFlag, parseFlags, runCli } from "./args.ts";
import { prepareSplit } from "../data/prepare.ts";
import { runExperiment, summaryTable } from "../train/experiment.ts";
import { verdict } from "../train/stats.ts";
import { writeExperimentReport } from "../viz/report.ts";
import { terminalProgress } from "../train/progress.ts";
import { startRun } from "./start-run.ts";

/** The classroom scale, one place to change it. */
export const DEMO = {
  trainMajority: 990,
  testPerClass: 100,
  ratio: [99, 1] as [number, number],
  size: 32,
  width: 1 / 8,
  epochs: 6,
  batchSize: 32,
  lr: 3e-3,
  seeds: [1],
};

const spec = {
  out: { type: "string", help: "output folder", default: "runs/demo" },
  epochs: { type: "string", help: "epochs per run", default: String(DEMO.epochs) },
  seeds: { type: "string", help: "comma-separated seeds", default: DEMO.seeds.join(",") },
  size: { type: "string", help: "image size in pixels", default: String(DEMO.size) },
  backend: { type: "string", help: "auto | cuda | webgpu | cpu", default: "auto" },
} as const;

runCli(async () => {
  const f = parseFlags("demo", "The final-BN experiment on synthetic leaves, at classroom scale.", spec);
  const epochs = numberFlag("epochs", f.epochs, { integer: true, min: 1 })!;
  const size = numberFlag("size", f.size, { integer: true, min: 32, max: 256 })!;
  const seeds = f.seeds!.split(",").map((s) => numberFlag("seeds", s.trim(), { integer: true, min: 0 })!);
  const out = f.out!;
  const started = performance.now();

  // 1-2. Synthetic leaves (generated once per size) and the 99:1 split: 990 healthy and 10
  // diseased leaves to train on, 100 + 100 to test on.
  const { data: dataDir, manifestFile, counts } = await prepareSplit({
    data: "",
    ratio: DEMO.ratio,
    seed: 1,
    trainMajority: DEMO.trainMajority,
    testPerClass: DEMO.testPerClass,
    size,
    manifestDir: out,
    manifestName: "manifest.json",
    log: console.log,
  });
  console.log(
    `split ${DEMO.ratio.join(":")}: train ${counts.train.majority} healthy + ${counts.train.minority} diseased, ` +
      `test ${counts.test.majority} + ${counts.test.minority}`,
  );

  // 3. Both variants of the same network, same seeds, same data.
  const info = await startRun(f.backend as "auto");
  const result = await runExperiment(
    {
      manifest: manifestFile,
      data: dataDir,
      arch: "vgg19_bn",
      head: "fastai",
      finalBN: "both",
      seeds,
      epochs,
      size,
      width: DEMO.width,
      batchSize: DEMO.batchSize,
      lr: DEMO.lr,
      outDir: out,
      title: "finalbn demo: synthetic leaves, 99:1",
    },
    { info, callbacksFor: (label) => terminalProgress(label) },
  );

  const reportFile = await writeExperimentReport(result);
  console.log(`\n${summaryTable(result.summary, result.paired)}\n`);
  console.log(verdict(result.paired));
  console.log(`\ntook ${((performance.now() - started) / 1000).toFixed(0)} s; report: ${reportFile}`);
});
