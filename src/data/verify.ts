// Hashing image files and checking a folder against a manifest: the same split on two
// machines is only the same experiment if every file has the same bytes.
import { readFile } from "node:fs/promises";
import type { Manifest } from "./types.ts";
import { findClassFolders, mapLimit, resolveImagePath } from "./index.ts";
import { sha256File, sha256Hex } from "./files.ts";
import { decodeProblem } from "./images.ts";

export { sha256File };

export interface VerifyResult {
  /** Images in the manifest that were looked at (all of them). */
  checked: number;
  /** Manifest paths with no file on disk (or whose class folder is absent). */
  missing: string[];
  /** Files whose bytes differ from the manifest. */
  mismatched: { path: string; expected: string; actual: string }[];
  /** Files that exist but could not be read (permissions, a folder in the way, ...). */
  unreadable: { path: string; reason: string }[];
  /** Files with the right bytes that do not decode (truncated, corrupt, too many pixels); only looked for with `decode`. */
  undecodable: { path: string; reason: string }[];
}

export interface VerifyOptions {
  /** Called after each file with (done, total); the CLI draws its progress line from it. */
  onProgress?: (done: number, total: number) => void;
  /** Files hashed at once (default 16). */
  concurrency?: number;
  /** Also decode every file whose bytes match, as training will (the right bytes can still be a broken image). */
  decode?: boolean;
}

type Outcome =
  | { kind: "ok" | "missing" }
  | { kind: "mismatched"; actual: string }
  | { kind: "unreadable" | "undecodable"; reason: string };

/** One manifest image against its file on disk. */
async function checkFile(file: string | undefined, expected: string, decode: boolean): Promise<Outcome> {
  if (!file) return { kind: "missing" };
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    return code === "ENOENT" ? { kind: "missing" } : { kind: "unreadable", reason: code === "EISDIR" ? "a folder, not a file" : code };
  }
  const actual = sha256Hex(bytes);
  if (actual !== expected) return { kind: "mismatched", actual };
  if (!decode) return { kind: "ok" };
  const reason = await decodeProblem(bytes);
  return reason ? { kind: "undecodable", reason } : { kind: "ok" };
}

/**
 * Check every image of `manifest` against the files under `dataRoot` (either layout). Results
 * are in manifest order, so the report reads the same on every run.
 */
export async function verifyManifest(manifest: Manifest, dataRoot: string, options: VerifyOptions = {}): Promise<VerifyResult> {
  const folders = await findClassFolders(dataRoot);
  const total = manifest.images.length;
  let done = 0;
  const outcomes = await mapLimit(manifest.images, options.concurrency ?? 16, async (img) => {
    const outcome = await checkFile(resolveImagePath(folders, img.path), img.sha256, options.decode ?? false);
    options.onProgress?.(++done, total);
    return outcome;
  });

  const result: VerifyResult = { checked: total, missing: [], mismatched: [], unreadable: [], undecodable: [] };
  outcomes.forEach((o, i) => {
    const img = manifest.images[i];
    if (o.kind === "missing") result.missing.push(img.path);
    else if (o.kind === "mismatched") result.mismatched.push({ path: img.path, expected: img.sha256, actual: o.actual });
    else if (o.kind === "unreadable") result.unreadable.push({ path: img.path, reason: o.reason });
    else if (o.kind === "undecodable") result.undecodable.push({ path: img.path, reason: o.reason });
  });
  return result;
}
