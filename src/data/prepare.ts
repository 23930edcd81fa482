// From "which data, which crop, which ratio" to a manifest on disk, in one call: the demo and the
// notebooks both start here. With no data folder the embedded synthetic leaves are generated
// (once: they are a pure function of the seed, so a cached copy is as good as a new one).
import { access } from "node:fs/promises";
import path from "node:path";
import type { Manifest, SplitName, Side } from "./types.ts";
import { indexDataset } from "./index.ts";
import { buildManifest, splitCounts } from "./split.ts";
import { writeManifest } from "./manifest.ts";
import { SYNTH_CLASSES, writeSyntheticDataset } from "./synth.ts";

export interface SyntheticLeavesOptions {
  /** Image side in pixels. */
  size: number;
  /** Images per class. */
  perClass: number;
  /** Folder the dataset folder goes into; default .cache/demo. */
  cacheDir?: string;
  seed?: number;
  /** Lesion size relative to the default (see src/data/synth.ts); default 2, visible at 32 px. */
  lesionScale?: number;
  /** Told when generation starts (it takes a while); not called when the leaves exist. */
  log?: (line: string) => void;
}

/** The synthetic leaves at one size and count, generated into the cache when missing; returns their folder. */
export async function syntheticLeaves(o: SyntheticLeavesOptions): Promise<string> {
  const seed = o.seed ?? 1;
  // At the classroom's 32 px a default lesion core is one pixel, which a small network trained from
  // scratch does not learn even on balanced data; twice the size it learns within two epochs.
  const lesionScale = o.lesionScale ?? 2;
  const name = `synthetic-leaves-${o.size}px-${o.perClass}-lesions${lesionScale}x${seed === 1 ? "" : `-seed${seed}`}`;
  const dir = path.resolve(o.cacheDir ?? path.join(".cache", "demo"), name);
  // The diseased class is written second, in index order: its last leaf marks a finished set.
  const last = path.join(dir, SYNTH_CLASSES.diseased, `leaf_${String(o.perClass - 1).padStart(5, "0")}.png`);
  if (!(await access(last).then(() => true, () => false))) {
    o.log?.(`generating ${2 * o.perClass} synthetic leaves at ${o.size}px in ${dir} ...`);
    await writeSyntheticDataset({ outDir: dir, perClass: o.perClass, size: o.size, seed, lesionScale });
  }
  return dir;
}

export interface PrepareSplitOptions {
  /** A PlantVillage folder (either layout), or "" for the synthetic leaves. */
  data: string;
  /** The crop; "" means "Synthetic" for the synthetic leaves and "Pepper" otherwise. */
  crop?: string;
  /** Majority:minority in training. Default [99, 1]. */
  ratio?: [number, number];
  seed?: number;
  /** Majority images in training. */
  trainMajority: number;
  /** Test images per side (a balanced test set). */
  testPerClass: number;
  /** Size the synthetic leaves are drawn at (real photos are resized when read). */
  size: number;
  /** Folder for the manifest file. */
  manifestDir: string;
  /** Its file name; default named after the crop, ratio, seed and counts. */
  manifestName?: string;
  /** Where the synthetic leaves are cached (see syntheticLeaves). */
  cacheDir?: string;
  /** Lesion size of the synthetic leaves (see syntheticLeaves). */
  lesionScale?: number;
  /** Seed the synthetic leaves are drawn from (default 1); another seed gives other leaves. */
  leafSeed?: number;
  log?: (line: string) => void;
}

export interface PreparedSplit {
  /** Absolute path of the image folder. */
  data: string;
  crop: string;
  manifestFile: string;
  manifest: Manifest;
  counts: Record<SplitName, Record<Side, number>>;
}

/** Build (or rebuild: same inputs, same bytes) the imbalanced split and write its manifest. */
export async function prepareSplit(o: PrepareSplitOptions): Promise<PreparedSplit> {
  const ratio = o.ratio ?? [99, 1];
  const seed = o.seed ?? 1;
  const synthetic = o.data === "";
  const crop = o.crop || (synthetic ? "Synthetic" : "Pepper");
  // Enough synthetic leaves per class for either side of any ratio up to 50:50.
  const data = synthetic
    ? await syntheticLeaves({ size: o.size, perClass: o.trainMajority + o.testPerClass, cacheDir: o.cacheDir, lesionScale: o.lesionScale, seed: o.leafSeed, log: o.log })
    : path.resolve(o.data);
  const manifest = await buildManifest(await indexDataset(data), {
    crop,
    ratio,
    seed,
    testPerClass: o.testPerClass,
    trainMajority: o.trainMajority,
  });
  const name = o.manifestName ?? `${crop.toLowerCase().replace(/[^a-z0-9]+/g, "-")}-${ratio[0]}to${ratio[1]}-seed${seed}-${o.trainMajority}-${o.testPerClass}.json`;
  const manifestFile = path.resolve(o.manifestDir, name);
  await writeManifest(manifestFile, manifest);
  return { data, crop, manifestFile, manifest, counts: splitCounts(manifest.images) };
}
