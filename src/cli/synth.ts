// npm run synth -- --out DIR [--per-class N] [--size PX] [--seed S] [--format png|jpeg] [--lesion-scale X]
// Writes the synthetic leaf dataset in the PlantVillage folder layout, so that
// `npm run split -- --data DIR --crop Synthetic ...` can use it like the real photos.
import { stat } from "node:fs/promises";
import { numberFlag, parseFlags, runCli, UsageError, type FlagSpec } from "./args.ts";
import { writeSyntheticDataset } from "../data/synth.ts";

const spec = {
  out: { type: "string", help: "folder to write the two class folders into", required: true },
  "per-class": { type: "string", help: "images per class", default: "200" },
  size: { type: "string", help: "image width and height in pixels", default: "64" },
  seed: { type: "string", help: "random seed (same seed, same images)", default: "1" },
  format: { type: "string", help: "png (lossless) or jpeg", default: "png" },
  "lesion-scale": { type: "string", help: "lesion size relative to the default (bigger is easier to learn)", default: "1" },
} as const satisfies Record<string, FlagSpec>;

runCli(async () => {
  const flags = parseFlags("synth", "Write synthetic healthy and lesion-spotted leaf images (no download needed).", spec);
  const perClass = numberFlag("per-class", flags["per-class"], { integer: true, min: 1, max: 99999 })!;
  const size = numberFlag("size", flags.size, { integer: true, min: 8, max: 1024 })!;
  const seed = numberFlag("seed", flags.seed, { integer: true, min: 0, max: 0xffffffff })!;
  const lesionScale = numberFlag("lesion-scale", flags["lesion-scale"], { min: 0.25, max: 4 })!;
  const format = flags.format;
  if (format !== "png" && format !== "jpeg") throw new UsageError(`--format must be png or jpeg, got "${format}"`);
  const existing = await stat(flags.out).catch(() => undefined);
  if (existing && !existing.isDirectory()) throw new UsageError(`--out ${flags.out} exists and is not a folder`);

  // Progress on one rewritten line in a terminal; a few plain lines in a log.
  const tty = process.stderr.isTTY;
  let lastQuarter = 0;
  const onProgress = (done: number, total: number) => {
    if (tty) process.stderr.write(`\rwriting ${done}/${total}`);
    else if (Math.floor((4 * done) / total) > lastQuarter) {
      lastQuarter = Math.floor((4 * done) / total);
      console.error(`writing ${done}/${total}`);
    }
  };

  const result = await writeSyntheticDataset({ outDir: flags.out, perClass, size, seed, format, lesionScale, onProgress });
  if (tty) process.stderr.write("\n");
  for (const c of result.classes) console.log(`${c.dir}: ${c.files.length} images`);
  if (result.removed > 0) console.log(`removed ${result.removed} leftover images from an earlier run`);
  console.log(`wrote ${result.written} images (${size}x${size} ${format}, seed ${seed}) to ${result.outDir}`);
});
