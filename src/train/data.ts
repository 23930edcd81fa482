// From a manifest to the items a training run reads: absolute paths, labels (minority = 1, the
// positive class of the F1 score) and hashes (so the pixel cache never rereads a file).
import { access } from "node:fs/promises";
import { readManifest } from "../data/manifest.ts";
import { findClassFolders, resolveImagePath, mapLimit } from "../data/index.ts";
import { loadPixels, type ImageItem } from "../data/images.ts";
import type { Manifest, SplitName } from "../data/types.ts";

export const CLASS_NAMES = ["majority", "minority"] as const;

export interface RunData {
  manifest: Manifest;
  train: ImageItem[];
  val: ImageItem[];
  test: ImageItem[];
}

export async function loadRunData(manifestFile: string, dataDir: string): Promise<RunData> {
  const manifest = await readManifest(manifestFile);
  const folders = await findClassFolders(dataDir);
  const items = manifest.images.map((img) => ({
    split: img.split,
    item: { path: resolveImagePath(folders, img.path) ?? "", label: img.side === "minority" ? 1 : 0, sha256: img.sha256 },
    manifestPath: img.path,
  }));
  const missing = (
    await mapLimit(items, 16, async ({ item, manifestPath }) =>
      item.path && (await access(item.path).then(() => true, () => false)) ? undefined : manifestPath,
    )
  ).filter((p): p is string => p !== undefined);
  // A wrong --data misses every image: the first few say enough, data:verify lists them all.
  const shown = missing.slice(0, 10).map((p) => `  ${p}\n`).join("") + (missing.length > 10 ? `  ... and ${missing.length - 10} more\n` : "");
  if (missing.length)
    throw new Error(
      `${missing.length} of ${items.length} images of ${manifestFile} are missing under ${dataDir}:\n${shown}` +
        `check --data, or download them: npm run data:fetch -- --manifest ${manifestFile} --out ${dataDir}`,
    );
  const of = (split: SplitName) => items.filter((i) => i.split === split).map((i) => i.item);
  const data = { manifest, train: of("train"), val: of("val"), test: of("test") };
  if (!data.train.length || !data.test.length) throw new Error(`${manifestFile} has no training or no test images`);
  return data;
}

/**
 * Decode every image of a run into the pixel cache, and fail listing every file that does not
 * decode (truncated, corrupt, a decompression bomb): one attempt finds them all, before any
 * training starts. Cached images are not read again, so a second call costs next to nothing.
 */
export async function decodeRunData(data: RunData, opts: { size: number; cacheDir?: string; concurrency?: number }): Promise<void> {
  const items = [...data.train, ...data.val, ...data.test];
  const failures = await mapLimit(items, opts.concurrency ?? 4, (item) =>
    loadPixels(item.path, opts.size, { cacheDir: opts.cacheDir, sha256: item.sha256 }).then(
      () => undefined,
      (err: Error) => err.message,
    ),
  );
  const bad = failures.filter((f): f is string => f !== undefined);
  if (bad.length)
    throw new Error(
      `${bad.length} of ${items.length} images cannot be used for training; replace or remove them (and rebuild the split):\n` +
        bad.map((m) => `  ${m}`).join("\n"),
    );
}
