// npm run experiment: train a network with and without the final BN for several seeds on one
// manifest, print the summary table (per variant and paired by seed) and the verdict, and write
// runs/<...>/report.html.
import { existingPath, numberFlag, parseFlags, runCli, UsageError } from "./args.ts";
import { runExperiment, summaryTable, type FinalBNChoice } from "../train/experiment.ts";
import { resolveTrainConfig } from "../train/config.ts";
import { decodeRunData, loadRunData } from "../train/data.ts";
import { readManifest } from "../data/manifest.ts";
import { readSafetensorsHeader } from "../models/safetensors.ts";
import { verdict } from "../train/stats.ts";
import { writeExperimentReport } from "../viz/report.ts";
import { defaultWorkers } from "../train/pool.ts";
import { terminalProgressBoard } from "../train/progress.ts";
import { startRun } from "./start-run.ts";

const spec = {
  manifest: { type: "string", help: "split manifest (data-manifests/*.json)", required: true },
  data: { type: "string", help: "folder with the images (either PlantVillage layout)", required: true },
  model: { type: "string", help: "vgg19 | vgg19_bn | resnet34", default: "vgg19_bn" },
  head: { type: "string", help: "fastai | classic", default: "fastai" },
  "final-bn": { type: "string", help: "with | without | both", default: "both" },
  seeds: { type: "string", help: "comma-separated seeds", default: "1" },
  epochs: { type: "string", help: "epochs per run", default: "10" },
  size: { type: "string", help: "image size in pixels", default: "224" },
  batch: { type: "string", help: "batch size", default: "32" },
  width: { type: "string", help: "channel width multiplier, 1 = the real network (e.g. 0.125)", default: "1" },
  lr: { type: "string", help: "peak learning rate of the one-cycle schedule", default: "0.001" },
  "weight-decay": { type: "string", help: "AdamW decoupled weight decay", default: "0.01" },
  "no-flip": { type: "boolean", help: "no horizontal flip augmentation" },
  pretrained: { type: "string", help: "torchvision-layout .safetensors weights for the body" },
  "freeze-epochs": { type: "string", help: "epochs with the body frozen first (needs --pretrained)", default: "0" },
  backend: { type: "string", help: "auto | cuda | webgpu | cpu (or env FINALBN_BACKEND)", default: "auto" },
  workers: { type: "string", help: "runs trained at once in worker processes (default: one per core on cpu, 1 on a GPU)" },
  out: { type: "string", help: "output folder (default: runs/<manifest>-<model>-<head>-<hash>; rerunning resumes)" },
} as const;

function parseExperimentFlags(argv?: string[]) {
  const f = parseFlags("experiment", "Train with and without the final BN layer and compare minority F1.", spec, argv);
  const oneOf = <T extends string>(name: string, value: string, allowed: readonly T[]): T => {
    if (!allowed.includes(value as T)) throw new UsageError(`--${name} must be one of ${allowed.join(", ")}, got "${value}"`);
    return value as T;
  };
  const seeds = f.seeds!.split(",").map((s, i) => numberFlag(`seeds (item ${i + 1})`, s.trim(), { integer: true, min: 0 })!);
  return {
    manifest: f.manifest,
    data: f.data,
    arch: oneOf("model", f.model!, ["vgg19", "vgg19_bn", "resnet34"] as const),
    head: oneOf("head", f.head!, ["fastai", "classic"] as const),
    finalBN: oneOf<FinalBNChoice>("final-bn", f["final-bn"]!, ["with", "without", "both"]),
    seeds,
    epochs: numberFlag("epochs", f.epochs, { integer: true, min: 1 })!,
    size: numberFlag("size", f.size, { integer: true, min: 32 })!,
    batchSize: numberFlag("batch", f.batch, { integer: true, min: 2 })!,
    width: numberFlag("width", f.width, { min: 1 / 64, max: 1 })!,
    lr: numberFlag("lr", f.lr, { min: 0 })!,
    weightDecay: numberFlag("weight-decay", f["weight-decay"], { min: 0 })!,
    flip: !f["no-flip"],
    pretrained: f.pretrained,
    freezeEpochs: numberFlag("freeze-epochs", f["freeze-epochs"], { integer: true, min: 0 })!,
    backend: oneOf("backend", f.backend!, ["auto", "cuda", "webgpu", "cpu"] as const),
    outDir: f.out,
    workers: numberFlag("workers", f.workers, { integer: true, min: 1 }),
  };
}

/**
 * Every check a flag's value allows, before the backend starts (which takes seconds): the files
 * exist, the manifest parses, the weights are safetensors, the settings make a training config.
 */
async function checkFlagValues(o: ReturnType<typeof parseExperimentFlags>): Promise<void> {
  existingPath("data", o.data, "folder");
  existingPath("manifest", o.manifest, "file");
  await readManifest(o.manifest).catch((err: Error) => {
    throw new UsageError(err.message);
  });
  if (o.freezeEpochs > 0 && !o.pretrained) throw new UsageError("--freeze-epochs needs --pretrained (there is no pretrained body to freeze)");
  if (o.pretrained !== undefined) {
    existingPath("pretrained", o.pretrained, "file");
    await readSafetensorsHeader(o.pretrained).catch((err: Error) => {
      throw new UsageError(`--pretrained: ${err.message}`);
    });
  }
  const { backend: _b, workers: _w, seeds, finalBN: _f, outDir: _o, ...settings } = o;
  try {
    resolveTrainConfig({ ...settings, seed: seeds[0] });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

runCli(async () => {
  const flags = parseExperimentFlags();
  await checkFlagValues(flags);
  const { backend, workers, ...options } = flags;
  // Every image there and decodable, all listed at once, before the backend starts; this also
  // fills the pixel cache that training reads.
  await decodeRunData(await loadRunData(options.manifest, options.data), { size: options.size });
  const info = await startRun(backend);
  const result = await runExperiment(options, { info, callbacksFor: terminalProgressBoard(), workers: workers ?? defaultWorkers(info.backend) });
  const reportFile = await writeExperimentReport(result);
  // A single variant (--final-bn with or without) has nothing to pair: the per-variant table only.
  const paired = result.paired.pairs.length ? result.paired : undefined;
  console.log(`\n${summaryTable(result.summary, paired)}\n`);
  if (paired) console.log(`${verdict(paired)}\n`);
  console.log(`runs, summary.csv, summary-paired.csv and report: ${result.outDir}`);
  console.log(`open ${reportFile}`);
});
