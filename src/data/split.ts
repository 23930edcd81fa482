// The paper's imbalanced split for one crop: a training set of, say, 99 healthy images to every
// diseased one, and a balanced test set that the training set never sees.
//
// Two sides: "healthy" (the crop's healthy class) and "diseased" (its disease classes, pooled, or
// one of them). One side is the majority, the other the scarce minority. Per side:
//   test   testPerClass images (the same number on both sides: a balanced test set),
//   val    valPerClass majority images and as many minority images as the TRAINING ratio gives
//          (validation mirrors training, so early stopping sees the imbalance the model learns on),
//   train  trainMajority majority images and round(trainMajority * minority / majority) minority.
// Candidates are sorted by path, shuffled with a seeded generator per side, then cut into test,
// val, train in that order: the same seed gives the same files on every OS, and asking for
// fewer training images never changes the test set.
import path from "node:path";
import type { ClassInfo, Manifest, ManifestImage, Side, SplitName, SplitSettings } from "./types.ts";
import type { DatasetIndex } from "./index.ts";
import { mapLimit } from "./index.ts";
import { matchCrop, normalKey } from "./classes.ts";
import { byCodeUnit, makeRng, shuffled, subSeed } from "./rng.ts";
import { MANIFEST_FORMAT } from "./manifest.ts";
import { sha256File } from "./files.ts";

export interface SplitOptions {
  /** A crop as a person types it: "Pepper", "potato", "Synthetic". */
  crop: string;
  /** Majority:minority in training (and validation). Default [99, 1]. */
  ratio?: [number, number];
  /** Which side is scarce. Default "diseased" (the paper's setting). */
  minority?: "diseased" | "healthy";
  /** One disease (condition or class name, e.g. "Late blight") or "all" pooled (default). */
  disease?: string;
  /** Default 1. */
  seed?: number;
  /** Test images per side. Default: 20% of the smaller side's images, floored (at least 1). */
  testPerClass?: number;
  /** Majority images in validation. Default 0 (no validation set). */
  valPerClass?: number;
  /** Majority images in training. Default: as many as the crop allows after test and val. */
  trainMajority?: number;
}

/** A chosen image before hashing: the manifest fields plus where it lies on this machine. */
export interface SplitImage extends Omit<ManifestImage, "sha256"> {
  file: string;
}

export interface Split {
  settings: SplitSettings;
  images: SplitImage[];
}

interface Candidate {
  path: string;
  class: string;
  file: string;
}

/** Keep `n` when it is a whole number >= min, otherwise say which option is wrong. */
function count(name: string, n: number, min: number): number {
  if (!Number.isInteger(n) || n < min) throw new Error(`${name} must be a whole number of at least ${min}, got ${n}`);
  return n;
}

/** The disease classes `query` names among `diseased`: all of them, or the one it matches. */
function pickDiseases(crop: string, diseased: readonly ClassInfo[], query: string): ClassInfo[] {
  const q = normalKey(query);
  if (q === "all") return diseased.slice();
  if (!q) throw new Error(`${crop}: no disease given (a disease name or "all")`);
  const exact = diseased.filter((c) => normalKey(c.condition) === q || normalKey(c.name) === q);
  // Otherwise any part of the condition will do ("late" -> "Late blight"), as long as it names one.
  const hits = exact.length ? exact : diseased.filter((c) => normalKey(c.condition).includes(q));
  const present = diseased.map((c) => JSON.stringify(c.condition)).join(", ");
  if (hits.length === 1) return hits;
  if (hits.length === 0) throw new Error(`${crop}: no disease matches "${query}"; diseases present: ${present} (or "all")`);
  throw new Error(`${crop}: "${query}" matches several diseases; diseases present: ${present} (or "all")`);
}

/** Images the crop's classes offer for one side, sorted by manifest path. */
function candidates(index: DatasetIndex, classes: readonly ClassInfo[]): Candidate[] {
  const out: Candidate[] = [];
  for (const info of classes) {
    const cls = index.classes.find((c) => c.info.name === info.name)!;
    for (const f of cls.files) out.push({ path: `raw/color/${info.name}/${f}`, class: info.name, file: path.join(cls.dir, f) });
  }
  return out.sort((a, b) => byCodeUnit(a.path, b.path));
}

/** Minority images that go with `majority` majority images at ratio a:b (at least 1). */
function minorityFor(majority: number, [a, b]: [number, number]): number {
  return Math.max(1, Math.round((majority * b) / a));
}

/**
 * Choose the images of an imbalanced split. Pure: the result depends only on the index (its
 * files, not their listing order) and the options.
 */
export function makeSplit(index: DatasetIndex, options: SplitOptions): Split {
  const crop = matchCrop(index.classes.map((c) => c.info), options.crop);
  const ratio = options.ratio ?? [99, 1];
  const [a, b] = ratio;
  if (!(a > 0 && b > 0 && Number.isFinite(a) && Number.isFinite(b) && a >= b))
    throw new Error(`ratio must be two positive numbers, majority first (e.g. 99:1), got ${a}:${b}`);
  const minority = options.minority ?? "diseased";
  if (minority !== "diseased" && minority !== "healthy") throw new Error(`minority must be "diseased" or "healthy", got "${minority}"`);
  const seed = count("seed", options.seed ?? 1, -(2 ** 31));

  const infos = index.classes.map((c) => c.info).filter((i) => i.crop === crop);
  const healthyClasses = infos.filter((i) => i.healthy);
  const diseasedAll = infos.filter((i) => !i.healthy);
  if (healthyClasses.length === 0) throw new Error(`${crop}: no healthy class folder found`);
  if (diseasedAll.length === 0) throw new Error(`${crop}: no diseased class folder found`);
  const diseases = pickDiseases(crop, diseasedAll, options.disease ?? "all");

  const pool = { healthy: candidates(index, healthyClasses), diseased: candidates(index, diseases) };
  const minorityKind = minority;
  const majorityKind = minority === "diseased" ? "healthy" : "diseased";
  const label = {
    healthy: "healthy",
    diseased: `diseased (${diseases.map((d) => d.condition).join(", ")})`,
  };

  const testPerClass = count(
    "testPerClass",
    options.testPerClass ?? Math.max(1, Math.floor(0.2 * Math.min(pool.healthy.length, pool.diseased.length))),
    1, // no test images would be a manifest that no experiment can score
  );
  const valPerClass = count("valPerClass", options.valPerClass ?? 0, 0);
  const valMinority = valPerClass > 0 ? minorityFor(valPerClass, ratio) : 0;

  // Default: the largest training set whose minority still fits beside test and val.
  const majorityLeft = pool[majorityKind].length - testPerClass - valPerClass;
  const minorityLeft = pool[minorityKind].length - testPerClass - valMinority;
  let trainMajority = options.trainMajority;
  if (trainMajority === undefined) {
    trainMajority = Math.max(1, majorityLeft);
    while (trainMajority > 1 && minorityFor(trainMajority, ratio) > minorityLeft) trainMajority--;
  }
  count("trainMajority", trainMajority, 1);
  const trainMinority = minorityFor(trainMajority, ratio);

  const need = { [majorityKind]: { val: valPerClass, train: trainMajority }, [minorityKind]: { val: valMinority, train: trainMinority } };
  for (const kind of [majorityKind, minorityKind] as const) {
    const { val, train } = need[kind];
    const total = testPerClass + val + train;
    if (total > pool[kind].length) {
      const side = kind === majorityKind ? "majority" : "minority";
      const parts = [`test ${testPerClass}`, ...(val ? [`val ${val}`] : []), `train ${train}`].join(", ");
      throw new Error(`${crop}: need ${total} ${label[kind]} images for the ${side} side (${parts}), but only ${pool[kind].length} exist`);
    }
  }
  // Fewer than a:b majority images per minority image would round up to one minority image and
  // quietly build another ratio (100000:1 built as 1279:1): say what the data allows instead.
  if (trainMajority * b < a) {
    const why = options.trainMajority === undefined ? `only ${trainMajority} are left after the test${valPerClass ? " and validation" : ""} set` : `trainMajority is ${trainMajority}`;
    throw new Error(
      `${crop}: ratio ${a}:${b} is impossible: it needs at least ${Math.ceil(a / b)} ${label[majorityKind]} training images ` +
        `for one ${label[minorityKind]} image, but ${why}; the largest possible ratio is ${trainMajority}:1`,
    );
  }

  const images: SplitImage[] = [];
  for (const kind of ["healthy", "diseased"] as const) {
    const side: Side = kind === majorityKind ? "majority" : "minority";
    const { val, train } = need[kind];
    const order = shuffled(pool[kind], makeRng(subSeed(seed, kind)));
    const cuts: [SplitName, number][] = [["test", testPerClass], ["val", val], ["train", train]];
    let at = 0;
    for (const [split, n] of cuts) {
      for (const c of order.slice(at, at + n)) images.push({ path: c.path, class: c.class, side, split, file: c.file });
      at += n;
    }
  }

  const settings: SplitSettings = {
    crop,
    ratio: [a, b],
    minority,
    diseases: diseases.map((d) => d.name).sort(byCodeUnit),
    seed,
    testPerClass,
    valPerClass,
    trainMajority,
    trainMinority,
  };
  // The manifest's canonical order (manifest.ts): by split, then by path.
  const splitOrder = { train: 0, val: 1, test: 2 };
  images.sort((x, y) => splitOrder[x.split] - splitOrder[y.split] || byCodeUnit(x.path, y.path));
  return { settings, images };
}

/** Hash a split's files (and only those) into a manifest. */
export async function hashSplit(split: Split, hashing: { concurrency?: number } = {}): Promise<Manifest> {
  const hashes = await mapLimit(split.images, hashing.concurrency ?? 16, (img) => sha256File(img.file));
  const images: ManifestImage[] = split.images.map((img, i) => ({ path: img.path, class: img.class, side: img.side, split: img.split, sha256: hashes[i] }));
  return { format: MANIFEST_FORMAT, settings: split.settings, images };
}

/** Choose a split and hash it into a manifest: makeSplit, then hashSplit. */
export async function buildManifest(index: DatasetIndex, options: SplitOptions, hashing: { concurrency?: number } = {}): Promise<Manifest> {
  return hashSplit(makeSplit(index, options), hashing);
}

/** Counts per split and side, for summaries: { train: { majority, minority }, ... }. */
export function splitCounts(images: readonly { split: SplitName; side: Side }[]): Record<SplitName, Record<Side, number>> {
  const out: Record<SplitName, Record<Side, number>> = {
    train: { majority: 0, minority: 0 },
    val: { majority: 0, minority: 0 },
    test: { majority: 0, minority: 0 },
  };
  for (const img of images) out[img.split][img.side]++;
  return out;
}
