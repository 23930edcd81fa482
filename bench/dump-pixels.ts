// The exact pixels a finalbn run trains and tests on (decoded and resized by sharp, through the
// pixel cache), written as raw bytes for bench/torch_twin.py, so a PyTorch run sees the same data.
//
//   npx tsx bench/dump-pixels.ts --out FILE [--manifest M --data DIR] [--size 32]
//       [--train-majority 990 --test-per-class 100 --split-seed 1 --lesion-scale 2]   (synthetic leaves)
//
// Writes FILE.json (counts, labels, size) and FILE.bin (train then test, NHWC uint8 RGB).
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { parseArgs } from "node:util";
import { loadPixels } from "../src/data/images.ts";
import { prepareSplit } from "../src/data/prepare.ts";
import { loadRunData } from "../src/train/data.ts";

const { values: f } = parseArgs({
  options: {
    out: { type: "string" },
    manifest: { type: "string" },
    data: { type: "string", default: "" },
    size: { type: "string", default: "32" },
    "train-majority": { type: "string", default: "990" },
    "test-per-class": { type: "string", default: "100" },
    "split-seed": { type: "string", default: "1" },
    "lesion-scale": { type: "string", default: "2" },
    crop: { type: "string", default: "" },
    "leaf-seed": { type: "string", default: "1" },
    ratio: { type: "string", default: "99:1" },
  },
});
if (!f.out) throw new Error("--out FILE is required");
const size = Number(f.size);
let manifest = f.manifest;
let data = f.data!;
if (!manifest) {
  const split = await prepareSplit({
    data,
    crop: f.crop,
    lesionScale: Number(f["lesion-scale"]),
    leafSeed: Number(f["leaf-seed"]),
    ratio: f.ratio!.split(":").map(Number) as [number, number],
    seed: Number(f["split-seed"]),
    trainMajority: Number(f["train-majority"]),
    testPerClass: Number(f["test-per-class"]),
    size,
    manifestDir: path.dirname(path.resolve(f.out)),
    manifestName: `${path.basename(f.out)}.manifest.json`,
    log: console.log,
  });
  manifest = split.manifestFile;
  data = split.data;
}
const run = await loadRunData(manifest, data);
const parts = [];
for (const split of ["train", "test"] as const) {
  for (const item of run[split]) parts.push(await loadPixels(item.path, size, { sha256: item.sha256 }));
}
await writeFile(`${f.out}.bin`, Buffer.concat(parts));
await writeFile(
  `${f.out}.json`,
  JSON.stringify({
    manifest,
    size,
    train: run.train.map((i) => i.label),
    test: run.test.map((i) => i.label),
  }),
);
console.log(`wrote ${parts.length} images of ${size}px to ${f.out}.bin (${run.train.length} train, ${run.test.length} test)`);
