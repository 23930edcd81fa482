// Reading and writing manifests. Writing is byte-stable (fixed key order, sorted images, no
// timestamps) so that building the same split twice gives identical files.
import { readFile } from "node:fs/promises";
import type { Manifest, ManifestImage } from "./types.ts";
import { byCodeUnit } from "./rng.ts";
import { writeFileAtomic } from "./files.ts";

export const MANIFEST_FORMAT = "finalbn-manifest/1";
const SPLIT_ORDER = { train: 0, val: 1, test: 2 } as const;

/** Images in a canonical order: by split, then by path. */
export function sortImages(images: readonly ManifestImage[]): ManifestImage[] {
  return images.slice().sort((a, b) => SPLIT_ORDER[a.split] - SPLIT_ORDER[b.split] || byCodeUnit(a.path, b.path));
}

/** The manifest as stable text: one image per line keeps diffs readable. */
export function manifestText(m: Manifest): string {
  const s = m.settings;
  const settings = {
    crop: s.crop,
    ratio: s.ratio,
    minority: s.minority,
    diseases: s.diseases,
    seed: s.seed,
    testPerClass: s.testPerClass,
    valPerClass: s.valPerClass,
    trainMajority: s.trainMajority,
    trainMinority: s.trainMinority,
  };
  const lines = sortImages(m.images).map((i) =>
    "    " + JSON.stringify({ path: i.path, class: i.class, side: i.side, split: i.split, sha256: i.sha256 }),
  );
  return `{\n  "format": ${JSON.stringify(MANIFEST_FORMAT)},\n  "settings": ${JSON.stringify(settings)},\n  "images": [\n${lines.join(",\n")}\n  ]\n}\n`;
}

/** Write atomically: a crash never leaves a half-written manifest under the final name. */
export async function writeManifest(file: string, m: Manifest): Promise<void> {
  await writeFileAtomic(file, manifestText(m));
}

/** Read and validate a manifest; errors name the file and what is wrong. */
export async function readManifest(file: string): Promise<Manifest> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    throw new Error(`cannot read manifest ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  let m: Manifest;
  try {
    m = JSON.parse(text);
  } catch (err) {
    throw new Error(`manifest ${file} is not valid JSON: ${(err as Error).message}`);
  }
  const problem = validateManifest(m);
  if (problem) throw new Error(`manifest ${file} is not a finalbn manifest: ${problem}`);
  return m;
}

function validateManifest(m: Manifest): string | undefined {
  if (!m || typeof m !== "object") return "not an object";
  if (m.format !== MANIFEST_FORMAT) return `format is ${JSON.stringify(m.format)}, expected "${MANIFEST_FORMAT}"`;
  if (!m.settings || typeof m.settings !== "object") return "missing settings";
  if (!Array.isArray(m.images)) return "missing images";
  for (const [k, img] of m.images.entries()) {
    if (typeof img?.path !== "string" || !img.path.startsWith("raw/color/") || img.path.split("/").length !== 4)
      return `image ${k}: path must look like raw/color/<class>/<file>`;
    if (img.path.split("/").includes("..")) return `image ${k}: path must not contain ".."`;
    if (!/^[0-9a-f]{64}$/.test(img.sha256 ?? "")) return `image ${k} (${img.path}): sha256 must be 64 hex digits`;
    if (img.side !== "majority" && img.side !== "minority") return `image ${k} (${img.path}): side must be majority or minority`;
    if (img.split !== "train" && img.split !== "val" && img.split !== "test") return `image ${k} (${img.path}): bad split`;
  }
  return undefined;
}
