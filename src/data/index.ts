// Finding the images of a PlantVillage folder. Every file is checked by its first bytes (JPEG or
// PNG), so an empty, truncated-to-nothing or mislabelled file is reported instead of crashing a
// training run an hour later. Everything is sorted by code unit, never left in listing order,
// so the same folder gives the same index on every OS.
import { open, readdir, stat } from "node:fs/promises";
import path from "node:path";
import type { ClassInfo } from "./types.ts";
import { classInfo } from "./classes.ts";
import { byCodeUnit } from "./rng.ts";

export interface IndexedClass {
  info: ClassInfo;
  /** Absolute path of the class folder on this machine (either layout). */
  dir: string;
  /** Names of the good image files in `dir`, sorted by code unit. */
  files: string[];
}

export interface Problem {
  /** Absolute path of the file or folder. */
  path: string;
  reason: string;
}

export interface DatasetIndex {
  /** Absolute path of the folder that was indexed. */
  root: string;
  /** One entry per class folder found, sorted by original class name. */
  classes: IndexedClass[];
  /** Files and folders that were skipped, with why. */
  problems: Problem[];
}

const JPEG_MAGIC = [0xff, 0xd8, 0xff];
const PNG_MAGIC = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** "jpeg" or "png" from a file's first bytes; undefined for anything else. */
export function imageKind(header: Uint8Array): "jpeg" | "png" | undefined {
  const starts = (magic: number[]) => header.length >= magic.length && magic.every((b, i) => header[i] === b);
  return starts(JPEG_MAGIC) ? "jpeg" : starts(PNG_MAGIC) ? "png" : undefined;
}

/** Run `fn` over `items` with at most `limit` calls in flight; results keep the input order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

function errorCode(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? (err as Error).message;
}

async function isDirectory(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isDirectory();
  } catch {
    return false;
  }
}

/**
 * The class folders of a data folder, without looking inside them. They may sit directly under
 * `root` or under `root/raw/color` (the original repository's layout). Hidden entries and plain
 * files beside the class folders (a README, a licence) are skipped quietly; other folders are
 * reported, so a typo in a folder name does not silently drop a class.
 */
export async function findClassFolders(root: string): Promise<{ root: string; classes: { info: ClassInfo; dir: string }[]; problems: Problem[] }> {
  const absRoot = path.resolve(root);
  let rootStat;
  try {
    rootStat = await stat(absRoot);
  } catch (err) {
    const code = errorCode(err);
    throw new Error(code === "ENOENT" ? `data folder ${absRoot} does not exist` : `cannot read data folder ${absRoot}: ${code}`);
  }
  if (!rootStat.isDirectory()) throw new Error(`data folder ${absRoot} is not a folder`);

  const nested = path.join(absRoot, "raw", "color");
  const classRoot = (await isDirectory(nested)) ? nested : absRoot;
  const entries = (await readdir(classRoot, { withFileTypes: true })).sort((a, b) => byCodeUnit(a.name, b.name));

  const classes: { info: ClassInfo; dir: string }[] = [];
  const problems: Problem[] = [];
  const seen = new Map<string, string>();
  for (const e of entries) {
    const dir = path.join(classRoot, e.name);
    if (e.name.startsWith(".")) continue;
    if (!(e.isDirectory() || (e.isSymbolicLink() && (await isDirectory(dir))))) continue;
    const info = classInfo(e.name);
    if (!info) {
      problems.push({ path: dir, reason: "not a PlantVillage class folder (expected Crop___Condition); skipped" });
      continue;
    }
    const earlier = seen.get(info.name);
    if (earlier) {
      problems.push({ path: dir, reason: `same class as ${earlier} (${info.name}); skipped` });
      continue;
    }
    seen.set(info.name, dir);
    classes.push({ info, dir });
  }
  classes.sort((a, b) => byCodeUnit(a.info.name, b.info.name));
  return { root: absRoot, classes, problems };
}

/** Read a file's first bytes and say why it is not a usable image, or undefined when it is. */
async function checkImage(file: string): Promise<string | undefined> {
  let handle;
  try {
    handle = await open(file, "r");
    const header = new Uint8Array(PNG_MAGIC.length);
    const { bytesRead } = await handle.read(header, 0, header.length, 0);
    if (bytesRead === 0) return "empty file";
    if (!imageKind(header.subarray(0, bytesRead))) return "not a JPEG or PNG image (wrong first bytes)";
    return undefined;
  } catch (err) {
    const code = errorCode(err);
    return code === "EISDIR" ? "a folder, not an image file" : `unreadable (${code})`;
  } finally {
    await handle?.close();
  }
}

/**
 * Index a PlantVillage folder (either layout, class folders directly under `root` or under
 * `root/raw/color`). Only the first bytes of each file are read, a few dozen files at a time.
 */
export async function indexDataset(root: string, options: { concurrency?: number } = {}): Promise<DatasetIndex> {
  const found = await findClassFolders(root);
  const problems = [...found.problems];
  const classes: IndexedClass[] = [];
  for (const { info, dir } of found.classes) {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      problems.push({ path: dir, reason: `unreadable class folder (${errorCode(err)}); skipped` });
      continue;
    }
    // Hidden files (.DS_Store and friends) are not images and not worth a warning.
    const names = entries.filter((e) => !e.name.startsWith(".")).map((e) => e.name).sort(byCodeUnit);
    const reasons = await mapLimit(names, options.concurrency ?? 32, (name) => checkImage(path.join(dir, name)));
    const files: string[] = [];
    names.forEach((name, i) => {
      const reason = reasons[i];
      if (reason) problems.push({ path: path.join(dir, name), reason });
      else files.push(name);
    });
    classes.push({ info, dir, files });
  }
  problems.sort((a, b) => byCodeUnit(a.path, b.path));
  return { root: found.root, classes, problems };
}

/**
 * The local file for a manifest path "raw/color/<class>/<file>", whichever layout the indexed
 * folder uses; undefined when the path is malformed or the class is not in the index. Whether
 * the file itself exists is left to the caller.
 */
export function resolveImagePath(index: { classes: readonly { info: ClassInfo; dir: string }[] }, manifestPath: string): string | undefined {
  const parts = manifestPath.split("/");
  if (parts.length !== 4 || parts[0] !== "raw" || parts[1] !== "color") return undefined;
  const [, , className, file] = parts;
  if (!file || file === "." || file === ".." || file.includes("\\")) return undefined;
  const wanted = classInfo(className)?.name ?? className;
  const cls = index.classes.find((c) => c.info.name === wanted);
  return cls ? path.join(cls.dir, file) : undefined;
}
