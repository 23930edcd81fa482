// npm run split -- --data DIR --crop Pepper --ratio 99:1 --seed 1 --out data-manifests/FILE.json
// Index a PlantVillage folder, choose an imbalanced split of one crop, hash the chosen files and
// write the manifest. Without --out it only prints what it would choose; an existing manifest is
// only replaced with --force (committed manifests define the published splits).
import { existsSync } from "node:fs";
import path from "node:path";
import { existingPath, numberFlag, parseFlags, runCli, UsageError } from "./args.ts";
import { classInfo } from "../data/classes.ts";
import { indexDataset } from "../data/index.ts";
import { hashSplit, makeSplit, splitCounts, type SplitOptions } from "../data/split.ts";
import { writeManifest } from "../data/manifest.ts";
import type { SplitSettings } from "../data/types.ts";

const SPEC = {
  data: { type: "string", help: "PlantVillage folder (class folders directly or under raw/color)", required: true },
  crop: { type: "string", help: "crop, e.g. Pepper, Potato, Synthetic", required: true },
  ratio: { type: "string", help: "majority:minority in training", default: "99:1" },
  minority: { type: "string", help: "the scarce side: diseased or healthy", default: "diseased" },
  disease: { type: "string", help: "one disease (e.g. \"Late blight\") or all, pooled", default: "all" },
  seed: { type: "string", help: "seed for choosing files", default: "1" },
  "test-per-class": { type: "string", help: "test images per side (default: 20% of the smaller side)" },
  "val-per-class": { type: "string", help: "majority images in validation; minority follows the ratio", default: "0" },
  "train-majority": { type: "string", help: "majority images in training (default: all that are left)" },
  out: { type: "string", help: "manifest to write, e.g. data-manifests/pepper.json (omit for a dry run)" },
  force: { type: "boolean", help: "replace the --out manifest if it exists" },
} as const;

function parseRatio(text: string): [number, number] {
  const m = /^\s*(\d+)\s*:\s*(\d+)\s*$/.exec(text);
  const [a, b] = m ? [Number(m[1]), Number(m[2])] : [NaN, NaN];
  if (!(a > 0 && b > 0 && a >= b)) throw new UsageError(`--ratio must look like 99:1 (two positive whole numbers, majority first), got "${text}"`);
  return [a, b];
}

function describe(s: SplitSettings): string {
  const scarce = s.minority === "diseased" ? "diseased minority" : "healthy minority";
  const plenty = s.minority === "diseased" ? "healthy majority" : "diseased majority";
  const diseases = s.diseases.map((d) => classInfo(d)?.condition ?? d).join(" + ");
  return `${s.crop}: ${plenty}, ${scarce}; diseases ${diseases}; ratio ${s.ratio.join(":")}, seed ${s.seed}`;
}

runCli(async () => {
  const flags = parseFlags("split", "Choose an imbalanced train/val/test split of one crop and write its manifest.", SPEC);
  existingPath("data", flags.data, "folder");
  if (flags.out && existsSync(flags.out) && !flags.force)
    throw new UsageError(`--out ${flags.out} already exists; pass --force to replace it, or choose another file`);
  if (flags.minority !== "diseased" && flags.minority !== "healthy")
    throw new UsageError(`--minority must be diseased or healthy, got "${flags.minority}"`);
  const options: SplitOptions = {
    crop: flags.crop,
    ratio: parseRatio(flags.ratio!),
    minority: flags.minority,
    disease: flags.disease,
    seed: numberFlag("seed", flags.seed, { integer: true, min: 0, max: 2 ** 32 - 1 }),
    testPerClass: numberFlag("test-per-class", flags["test-per-class"], { integer: true, min: 1 }),
    valPerClass: numberFlag("val-per-class", flags["val-per-class"], { integer: true, min: 0 }),
    trainMajority: numberFlag("train-majority", flags["train-majority"], { integer: true, min: 1 }),
  };

  const index = await indexDataset(flags.data);
  // A crop, disease or count that the data cannot satisfy is the user's flag, not a crash.
  let split;
  try {
    split = makeSplit(index, options);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }

  console.log(describe(split.settings));
  const counts = splitCounts(split.images);
  console.log("  split      majority  minority     total");
  for (const name of ["train", "val", "test"] as const) {
    const c = counts[name];
    console.log(`  ${name.padEnd(8)} ${String(c.majority).padStart(9)} ${String(c.minority).padStart(9)} ${String(c.majority + c.minority).padStart(9)}`);
  }

  if (index.problems.length) {
    console.log(`problems in ${index.root} (${index.problems.length}, skipped):`);
    for (const p of index.problems.slice(0, 20)) console.log(`  ${path.relative(index.root, p.path)}: ${p.reason}`);
    if (index.problems.length > 20) console.log(`  ... and ${index.problems.length - 20} more`);
  } else {
    console.log(`problems in the data folder: none`);
  }

  if (!flags.out) {
    console.log("dry run: no --out given, nothing written");
    return 0;
  }
  const manifest = await hashSplit(split);
  await writeManifest(flags.out, manifest);
  console.log(`wrote ${flags.out} (${manifest.images.length} images)`);
  return 0;
});
