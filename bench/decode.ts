// How long does it take to turn the Pepper training set into 224x224 batches: once cold (every
// JPEG decoded and resized, into an empty cache) and once from the pixel cache?
//   npx tsx bench/decode.ts [--data DIR] [--manifest FILE] [--size PX] [--batch N] [--concurrency N]
// Uses the train split of the manifest when it exists, else all healthy + 15 Bacterial spot
// images of the data folder. Timings depend on the machine and on whoever else is using it.
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { numberFlag, parseFlags, runCli } from "../src/cli/args.ts";
import { imageBatches, type ImageItem } from "../src/data/images.ts";
import { findClassFolders, indexDataset, resolveImagePath } from "../src/data/index.ts";
import { readManifest } from "../src/data/manifest.ts";

const HEALTHY = "Pepper,_bell___healthy";
const SPOT = "Pepper,_bell___Bacterial_spot";

async function trainingItems(data: string, manifestFile: string): Promise<{ items: ImageItem[]; from: string }> {
  const folders = await findClassFolders(data);
  if (existsSync(manifestFile)) {
    const manifest = await readManifest(manifestFile);
    const items = manifest.images
      .filter((image) => image.split === "train")
      .map((image) => {
        const file = resolveImagePath(folders, image.path);
        if (!file) throw new Error(`${image.path} has no class folder in ${data}`);
        return { path: file, label: image.side === "minority" ? 1 : 0, sha256: image.sha256 };
      });
    return { items, from: `train split of ${manifestFile}` };
  }
  const index = await indexDataset(data);
  const files = (name: string) => {
    const cls = index.classes.find((c) => c.info.name === name);
    if (!cls) throw new Error(`no ${name} folder in ${data}`);
    return cls.files.map((f) => path.join(cls.dir, f));
  };
  const items = [
    ...files(HEALTHY).map((p) => ({ path: p, label: 0 })),
    ...files(SPOT).slice(0, 15).map((p) => ({ path: p, label: 1 })),
  ];
  return { items, from: `all ${HEALTHY} + first 15 ${SPOT} in ${data} (no manifest, so files are hashed)` };
}

async function timePass(items: ImageItem[], opts: { size: number; batchSize: number; cacheDir: string; concurrency?: number }) {
  let decodes = 0;
  let images = 0;
  const start = process.hrtime.bigint();
  for await (const batch of imageBatches(items, { ...opts, onDecode: () => decodes++ })) images += batch.shape[0];
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  return { seconds, images, decodes };
}

runCli(async () => {
  const flags = parseFlags("bench:decode", "Time decoding the Pepper training set cold and from the pixel cache.", {
    data: { type: "string", help: "PlantVillage folder", default: path.resolve(import.meta.dirname, "../../shared/data/plantvillage") },
    manifest: { type: "string", help: "manifest whose train split to use", default: "data-manifests/pepper-bell-99to1-seed1.json" },
    size: { type: "string", help: "square size in pixels", default: "224" },
    batch: { type: "string", help: "batch size", default: "32" },
    concurrency: { type: "string", help: "images decoded at once (default: the library's)" },
  });
  const size = numberFlag("size", flags.size, { integer: true, min: 1 })!;
  const batchSize = numberFlag("batch", flags.batch, { integer: true, min: 1 })!;
  const concurrency = numberFlag("concurrency", flags.concurrency, { integer: true, min: 1 });

  const { items, from } = await trainingItems(flags.data!, flags.manifest!);
  console.log(`${items.length} images: ${from}`);
  console.log(`size ${size}, batch ${batchSize}, ${os.availableParallelism()} cores (shared machine: timings are rough)`);
  const cacheDir = await mkdtemp(path.join(os.tmpdir(), "finalbn-bench-cache-"));
  try {
    for (const pass of ["cold (decode + write cache)", "warm (read cache)"]) {
      const r = await timePass(items, { size, batchSize, cacheDir, concurrency });
      console.log(
        `${pass.padEnd(28)} ${r.seconds.toFixed(2)} s  ${(r.images / r.seconds).toFixed(0)} images/s  (${r.decodes} decodes)`,
      );
    }
  } finally {
    await rm(cacheDir, { recursive: true, force: true });
  }
});
