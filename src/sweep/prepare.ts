// Everything a sweep's runs share, made once before any of them starts: the imbalanced splits (and
// the synthetic leaves they draw on), the resized pixels of every image in the pixel cache, and
// each run's resolved config in its folder (run.json). On a cluster this runs where the sweep is
// submitted, so a hundred array tasks never race to generate the same leaves or decode the same
// photos; a task only reads.
import { access } from "node:fs/promises";
import path from "node:path";
import { prepareSplit } from "../data/prepare.ts";
import { loadPixels } from "../data/images.ts";
import { mapLimit } from "../data/index.ts";
import { writeFileAtomic } from "../data/files.ts";
import { resolveTrainConfig } from "../train/config.ts";
import { loadRunData } from "../train/data.ts";
import { trainSettings, type PlannedRun, type SweepPlan } from "./plan.ts";
import { RUN_FILE, type RunFile } from "./run-files.ts";

export interface PrepareOptions {
  log?: (line: string) => void;
  /** Images decoded at once while filling the pixel cache. */
  concurrency?: number;
}

/** Make the splits, fill the pixel cache and write every run's run.json; returns the runs' folders with their configs. */
export async function prepareSweep(plan: SweepPlan, opts: PrepareOptions = {}): Promise<Map<string, RunFile>> {
  const log = opts.log ?? (() => {});
  const at = (p: string) => path.resolve(plan.baseDir, p);
  const prepared = new Map<string, { manifest: string; data: string }>();
  for (const split of plan.splits) {
    const s = split.settings;
    const made = await prepareSplit({
      data: s.data ? at(s.data) : "",
      crop: s.crop ?? "",
      ratio: s.ratio!.split(":").map(Number) as [number, number],
      seed: s.splitSeed!,
      trainMajority: s.trainMajority!,
      testPerClass: s.testPerClass!,
      size: s.size ?? 224,
      lesionScale: s.lesionScale!,
      leafSeed: s.leafSeed!,
      cacheDir: plan.leafCache,
      manifestDir: path.join(plan.out, "splits"),
      manifestName: `${split.key}.json`,
      log,
    });
    const { train, test } = made.counts;
    log(`split ${split.key}: train ${train.majority} + ${train.minority}, test ${test.majority} + ${test.minority}`);
    prepared.set(split.key, { manifest: made.manifestFile, data: made.data });
  }

  const runFiles = new Map<string, RunFile>();
  for (const run of plan.runs) runFiles.set(run.id, runFile(plan, run, run.split ? prepared.get(run.split)! : { manifest: at(run.settings.manifest!), data: at(run.settings.data) }));

  // The pixels of every image at every size a run reads it at, decoded once.
  const reads = new Map<string, { manifest: string; data: string; size: number }>();
  for (const f of runFiles.values()) reads.set(`${f.config.manifest}|${f.config.size}`, { manifest: f.config.manifest, data: f.config.data, size: f.config.size });
  for (const r of reads.values()) {
    const data = await loadRunData(r.manifest, r.data);
    const items = [...data.train, ...data.val, ...data.test];
    let decoded = 0;
    await mapLimit(items, opts.concurrency ?? 4, (item) => loadPixels(item.path, r.size, { cacheDir: plan.pixelCache, sha256: item.sha256, onDecode: () => decoded++ }));
    if (decoded) log(`pixel cache: ${decoded} of ${items.length} images of ${path.basename(r.manifest)} decoded at ${r.size} px into ${plan.pixelCache}`);
  }

  for (const run of plan.runs) await writeFileAtomic(path.join(run.dir, RUN_FILE), JSON.stringify(runFiles.get(run.id), null, 2) + "\n");
  return runFiles;
}

function runFile(plan: SweepPlan, run: PlannedRun, paths: { manifest: string; data: string }): RunFile {
  const pretrained = run.settings.pretrained ? path.resolve(plan.baseDir, run.settings.pretrained) : undefined;
  const config = resolveTrainConfig({ ...trainSettings(run.settings, { ...paths, pretrained, cacheDir: plan.pixelCache }), runsDir: path.join(plan.out, "runs") });
  return { sweep: plan.name, id: run.id, backend: plan.backend, settings: run.settings, config };
}

/** Whether prepareSweep has written this run's run.json. */
export const isPrepared = (run: PlannedRun) => access(path.join(run.dir, RUN_FILE)).then(() => true, () => false);
