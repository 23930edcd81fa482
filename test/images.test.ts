import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm, stat, truncate, unlink, writeFile, copyFile } from "node:fs/promises";
import os from "node:os";
import { existsSync } from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import sharp from "sharp";
import {
  IMAGENET_MEAN,
  IMAGENET_STD,
  cachePath,
  decodeProblem,
  defaultCacheDir,
  denormalize,
  flipHorizontal,
  imageBatches,
  loadImage,
  loadPixels,
  type Batch,
  type BatchOptions,
  type ImageItem,
} from "../src/data/images.ts";
import { sha256Hex } from "../src/data/files.ts";

const DATA = path.resolve(import.meta.dirname, "../../shared/data/plantvillage");
// These tests read real PlantVillage images from ../shared beside the checkout; without them they skip.
const NO_DATA = existsSync(DATA) ? undefined : `shared data not found at ${DATA}`;
const SIZE = 16;

let tmp: string;
let items: ImageItem[]; // 6 healthy (label 0) + 2 bacterial spot (label 1), real JPEGs

async function firstFiles(folder: string, n: number): Promise<string[]> {
  const names = (await readdir(path.join(DATA, folder))).sort().slice(0, n);
  return names.map((name) => path.join(DATA, folder, name));
}

async function collect(list: readonly ImageItem[], options: BatchOptions): Promise<Batch[]> {
  const out: Batch[] = [];
  for await (const batch of imageBatches(list, options)) out.push(batch);
  return out;
}

/** Image i of a batch as a float array. */
function imageAt(batch: Batch, i: number): Float32Array {
  const n = SIZE * SIZE * 3;
  return batch.x.subarray(i * n, (i + 1) * n);
}

let cacheCount = 0;
const freshCache = () => path.join(tmp, `cache-${cacheCount++}`);

before(async () => {
  if (NO_DATA) return;
  tmp = await mkdtemp(path.join(os.tmpdir(), "finalbn-images-"));
  const healthy = await firstFiles("Pepper__bell___healthy", 6);
  const spot = await firstFiles("Pepper__bell___Bacterial_spot", 2);
  items = [...healthy.map((p) => ({ path: p, label: 0 })), ...spot.map((p) => ({ path: p, label: 1 }))];
});

after(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe("imageBatches", { skip: NO_DATA }, () => {
  test("yields NHWC float32 batches of the right shape, labels and range; the last one smaller", async () => {
    const batches = await collect(items, { size: SIZE, batchSize: 3, cacheDir: freshCache() });
    assert.deepEqual(batches.map((b) => b.shape), [
      [3, SIZE, SIZE, 3],
      [3, SIZE, SIZE, 3],
      [2, SIZE, SIZE, 3],
    ]);
    assert.deepEqual(batches.flatMap((b) => b.paths), items.map((i) => i.path)); // no seed: order kept
    assert.deepEqual(batches.flatMap((b) => [...b.labels]), items.map((i) => i.label));
    for (const b of batches) {
      assert.ok(b.x instanceof Float32Array);
      assert.ok(b.labels instanceof Int32Array);
      assert.equal(b.x.length, b.shape[0] * SIZE * SIZE * 3);
      for (let i = 0; i < b.x.length; i++) {
        const c = i % 3;
        const lo = (0 - IMAGENET_MEAN[c]) / IMAGENET_STD[c];
        const hi = (1 - IMAGENET_MEAN[c]) / IMAGENET_STD[c];
        assert.ok(b.x[i] >= lo - 1e-6 && b.x[i] <= hi + 1e-6, `value ${b.x[i]} out of range`);
      }
      // Real leaves: not a constant image.
      assert.ok(Math.max(...b.x) - Math.min(...b.x) > 1);
    }
  });

  test("same seed gives the same order and flips, another seed a different order", async () => {
    const cacheDir = freshCache();
    const run = (seed: number) => collect(items, { size: SIZE, batchSize: 4, shuffleSeed: seed, flip: true, cacheDir });
    const a = await run(1);
    const b = await run(1);
    const c = await run(2);
    assert.deepEqual(a.flatMap((x) => x.paths), b.flatMap((x) => x.paths));
    assert.deepEqual(a.map((x) => x.x), b.map((x) => x.x)); // same flips, so the same floats
    assert.notDeepEqual(a.flatMap((x) => x.paths), c.flatMap((x) => x.paths));
    assert.notDeepEqual(a.flatMap((x) => x.paths), items.map((i) => i.path));
  });

  test("every item comes exactly once per epoch", async () => {
    const cacheDir = freshCache();
    for (const seed of [3, 4]) {
      const batches = await collect(items, { size: SIZE, batchSize: 3, shuffleSeed: seed, cacheDir });
      const seen = batches.flatMap((b) => b.paths);
      assert.equal(seen.length, items.length);
      assert.deepEqual([...seen].sort(), items.map((i) => i.path).sort());
      // Labels travel with their image.
      const labelOf = new Map(items.map((i) => [i.path, i.label]));
      for (const b of batches) b.paths.forEach((p, k) => assert.equal(b.labels[k], labelOf.get(p)));
    }
  });

  test("flip: each image is either itself or its exact mirror, and both happen", async () => {
    const cacheDir = freshCache();
    const [plain] = await collect(items, { size: SIZE, batchSize: items.length, cacheDir });
    const [flipped] = await collect(items, { size: SIZE, batchSize: items.length, flip: true, flipSeed: 7, cacheDir });
    let mirrored = 0;
    for (let i = 0; i < items.length; i++) {
      const a = imageAt(plain, i);
      const b = imageAt(flipped, i);
      let same = true;
      let mirror = true;
      for (let r = 0; r < SIZE; r++)
        for (let col = 0; col < SIZE; col++)
          for (let ch = 0; ch < 3; ch++) {
            const v = b[(r * SIZE + col) * 3 + ch];
            if (v !== a[(r * SIZE + col) * 3 + ch]) same = false;
            if (v !== a[(r * SIZE + (SIZE - 1 - col)) * 3 + ch]) mirror = false;
          }
      assert.ok(same || mirror, `image ${i} is neither itself nor its mirror`);
      if (mirror && !same) mirrored++;
    }
    assert.ok(mirrored > 0 && mirrored < items.length, `mirrored ${mirrored} of ${items.length}`);
  });

  test("cache: the second epoch and a second run decode nothing; a bad entry is rebuilt", async () => {
    const cacheDir = freshCache();
    const decoded: string[] = [];
    const options = { size: SIZE, batchSize: 3, cacheDir, onDecode: (f: string) => decoded.push(f) };
    const first = await collect(items, { ...options, shuffleSeed: 1 });
    assert.equal(decoded.length, items.length);
    await collect(items, { ...options, shuffleSeed: 2 }); // next epoch
    assert.equal(decoded.length, items.length);

    // The entries are raw RGB bytes under <cacheDir>/<size>/<sha[0:2]>/<sha>.rgb, no temp files left.
    const shas = await Promise.all(items.map(async (i) => sha256Hex(await readFile(i.path))));
    for (const sha of shas) assert.equal((await stat(cachePath(cacheDir, sha, SIZE))).size, SIZE * SIZE * 3);
    const files = await readdir(cacheDir, { recursive: true });
    assert.ok(!files.some((f) => f.endsWith(".tmp")));

    // A truncated entry (e.g. written by something else, or a disk problem) is ignored and rewritten.
    const bad = cachePath(cacheDir, shas[2], SIZE);
    await truncate(bad, 100);
    const again = await collect(items, { ...options, shuffleSeed: 1 });
    assert.deepEqual(decoded.slice(items.length), [items[2].path]);
    assert.equal((await stat(bad)).size, SIZE * SIZE * 3);
    assert.deepEqual(again.map((b) => b.x), first.map((b) => b.x));
  });

  test("cache: with a known sha256 a hit does not even read the source file", async () => {
    const cacheDir = freshCache();
    const copy = path.join(tmp, "copy.jpg");
    await copyFile(items[0].path, copy);
    const sha = sha256Hex(await readFile(copy));
    const one = [{ path: copy, label: 0, sha256: sha }];
    const [before] = await collect(one, { size: SIZE, batchSize: 1, cacheDir });
    await unlink(copy);
    const [afterDelete] = await collect(one, { size: SIZE, batchSize: 1, cacheDir });
    assert.deepEqual(afterDelete.x, before.x);
  });

  test("a wrong sha256 is refused rather than cached", async () => {
    const one = [{ path: items[0].path, label: 0, sha256: "0".repeat(64) }];
    await assert.rejects(collect(one, { size: SIZE, batchSize: 1, cacheDir: freshCache() }), /sha256 mismatch for .*JPG/);
  });

  test("a corrupt or missing image is an error naming the file", async () => {
    const jpeg = await readFile(items[0].path);
    const truncated = path.join(tmp, "truncated leaf.jpg");
    const garbage = path.join(tmp, "garbage.jpg");
    await writeFile(truncated, jpeg.subarray(0, Math.floor(jpeg.length / 2)));
    await writeFile(garbage, Buffer.from("this is not an image at all"));
    for (const file of [truncated, garbage]) {
      const list = [items[1], { path: file, label: 0 }];
      await assert.rejects(collect(list, { size: SIZE, batchSize: 2, cacheDir: freshCache() }), (err: Error) => {
        assert.ok(err.message.startsWith(`cannot decode ${file}: `), err.message);
        return true;
      });
    }
    const missing = path.join(tmp, "no-such.jpg");
    await assert.rejects(loadImage(missing, SIZE, { cacheDir: freshCache() }), new RegExp(`cannot read ${missing}: ENOENT`));
  });

  test("bad options are refused", async () => {
    await assert.rejects(collect(items, { size: 0, batchSize: 2 }), /size must be a positive integer/);
    await assert.rejects(collect(items, { size: SIZE, batchSize: 1.5 }), /batchSize must be a positive integer/);
  });
});

describe("loadImage and pixels", { skip: NO_DATA }, () => {
  test("normalisation is exact against sharp's own raw output", async () => {
    const file = items[0].path;
    const raw = await sharp(file).resize(SIZE, SIZE, { fit: "fill" }).raw().toBuffer();
    const image = await loadImage(file, SIZE, { cacheDir: freshCache() });
    assert.deepEqual(image.shape, [1, SIZE, SIZE, 3]);
    assert.deepEqual([...image.pixels], [...raw]);
    for (const i of [0, 1, 2, 3 * (5 * SIZE + 7) + 1, raw.length - 1]) {
      const c = i % 3;
      assert.equal(image.x[i], Math.fround((raw[i] / 255 - IMAGENET_MEAN[c]) / IMAGENET_STD[c]));
    }
    assert.deepEqual(denormalize(image.x), image.pixels);
  });

  test("flipHorizontal mirrors: pixel (r, c) becomes pixel (r, size-1-c)", async () => {
    const { pixels } = await loadImage(items[3].path, SIZE, { cacheDir: freshCache() });
    const flipped = flipHorizontal(pixels, SIZE);
    for (let r = 0; r < SIZE; r++)
      for (let c = 0; c < SIZE; c++)
        for (let ch = 0; ch < 3; ch++)
          assert.equal(flipped[(r * SIZE + c) * 3 + ch], pixels[(r * SIZE + SIZE - 1 - c) * 3 + ch]);
    assert.deepEqual(flipHorizontal(flipped, SIZE), pixels);
  });

  test("non-square PNG with alpha: centre crop, RGB only", async () => {
    // 30x10: red | green | blue thirds, with an alpha channel. Covering a 10x10 square keeps the green middle.
    const w = 30;
    const h = 10;
    const rgba = Buffer.alloc(w * h * 4);
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        const o = (y * w + x) * 4;
        rgba[o + Math.floor(x / 10)] = 255;
        rgba[o + 3] = 255;
      }
    const file = path.join(tmp, "wide.png");
    await sharp(rgba, { raw: { width: w, height: h, channels: 4 } }).png().toFile(file);
    const pixels = await loadPixels(file, 10, { cacheDir: freshCache() });
    assert.equal(pixels.length, 10 * 10 * 3);
    for (let i = 0; i < 100; i++) assert.deepEqual([...pixels.subarray(i * 3, i * 3 + 3)], [0, 255, 0]);
  });

  test("default cache folder: FINALBN_CACHE, else .cache/pixels here", () => {
    const saved = process.env.FINALBN_CACHE;
    try {
      delete process.env.FINALBN_CACHE;
      assert.equal(defaultCacheDir(), path.resolve(".cache/pixels"));
      process.env.FINALBN_CACHE = path.join(tmp, "env-cache");
      assert.equal(defaultCacheDir(), path.join(tmp, "env-cache"));
    } finally {
      if (saved === undefined) delete process.env.FINALBN_CACHE;
      else process.env.FINALBN_CACHE = saved;
    }
  });
});

describe("broken image files", { skip: NO_DATA }, () => {
  test("a truncated JPEG and a decompression-bomb PNG are refused, named, and never cached", async () => {
    const [photo] = await firstFiles("Pepper__bell___healthy", 1);
    const truncated = path.join(tmp, "truncated.JPG");
    await writeFile(truncated, (await readFile(photo)).subarray(0, 6000)); // a copy cut short
    // Under half a megabyte on disk, 12000 x 12000 pixels declared: 432 MB once decoded.
    const bomb = path.join(tmp, "bomb.png");
    await sharp({ create: { width: 12000, height: 12000, channels: 3, background: "#3a7d2c" } }).png({ compressionLevel: 9 }).toFile(bomb);
    assert.ok((await stat(bomb)).size < 500_000);

    assert.equal(await decodeProblem(await readFile(photo)), undefined);
    assert.match((await decodeProblem(await readFile(truncated)))!, /premature end of JPEG|corrupt or truncated image data/);
    assert.equal(await decodeProblem(await readFile(bomb)), "a decompression bomb: it declares 12000x12000 pixels, more than the 100 million allowed");

    const cacheDir = freshCache();
    await assert.rejects(loadPixels(truncated, SIZE, { cacheDir }), { message: new RegExp(`^cannot decode ${truncated}: .*(premature end of JPEG|corrupt or truncated image data)`) });
    await assert.rejects(loadPixels(bomb, SIZE, { cacheDir }), { message: `cannot decode ${bomb}: a decompression bomb: it declares 12000x12000 pixels, more than the 100 million allowed` });
    assert.ok(!existsSync(cacheDir), "nothing is cached for a file that does not decode");
  });
});
