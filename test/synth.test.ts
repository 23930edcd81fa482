// The synthetic dataset: deterministic, laid out like PlantVillage, and honest about its cue.
// The last tests check that the class is NOT visible in the mean colour of an image, and that a
// small hand-written lesion detector (a dark core inside a yellow halo, on a leaf) does see it.
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import sharp from "sharp";
import { generateLeaf, imageSeed, sampleLeaf, SYNTH_CLASSES, writeSyntheticDataset } from "../src/data/synth.ts";
import { indexDataset } from "../src/data/index.ts";

const repo = path.resolve(import.meta.dirname, "..");

let tmp = "";
before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), "finalbn-synth-"));
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** Fraction of bytes that differ between two images. */
function changed(a: Uint8Array, b: Uint8Array): number {
  let n = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) n++;
  return n / a.length;
}

describe("generateLeaf", () => {
  test("same options give the same bytes; another seed gives another image", () => {
    const a = generateLeaf({ seed: 7, size: 48, diseased: true });
    const b = generateLeaf({ seed: 7, size: 48, diseased: true });
    assert.equal(a.length, 48 * 48 * 3);
    assert.deepEqual(a, b);
    assert.ok(changed(a, generateLeaf({ seed: 8, size: 48, diseased: true })) > 0.5);
  });

  test("the diseased version of a seed is the same leaf plus a few local lesions", () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const healthy = generateLeaf({ seed, size: 64, diseased: false });
      const diseased = generateLeaf({ seed, size: 64, diseased: true });
      const f = changed(healthy, diseased);
      assert.ok(f > 0.002 && f < 0.08, `seed ${seed}: ${(100 * f).toFixed(1)}% of bytes changed`);
    }
  });

  test("lesions: 1 to 5 per diseased leaf, none on healthy ones, a few percent of the leaf", () => {
    for (let seed = 0; seed < 300; seed++) {
      assert.equal(sampleLeaf({ seed, diseased: false }).spots.filter((s) => s.kind === "lesion").length, 0);
      const scene = sampleLeaf({ seed, diseased: true });
      const lesions = scene.spots.filter((s) => s.kind === "lesion");
      assert.ok(lesions.length >= 1 && lesions.length <= 5, `seed ${seed}: ${lesions.length} lesions`);
      const core = lesions.reduce((a, s) => a + Math.PI * s.radius ** 2, 0) / scene.leafArea;
      const withHalo = lesions.reduce((a, s) => a + Math.PI * s.halo ** 2, 0) / scene.leafArea;
      assert.ok(core <= 0.03 && withHalo <= 0.1, `seed ${seed}: cores ${core}, with halos ${withHalo}`);
    }
  });

  test("rejects a size it cannot draw", () => {
    assert.throws(() => generateLeaf({ seed: 1, size: 4, diseased: false }), RangeError);
    assert.throws(() => generateLeaf({ seed: 1, size: 32.5, diseased: false }), RangeError);
  });
});

describe("writeSyntheticDataset", () => {
  test("PlantVillage layout, counts, sizes, lossless pixels, deterministic reruns", async () => {
    const out = path.join(tmp, "png");
    const progress: number[] = [];
    const r = await writeSyntheticDataset({ outDir: out, perClass: 5, size: 40, seed: 3, onProgress: (d) => progress.push(d) });
    assert.equal(r.written, 10);
    assert.equal(progress.length, 10);
    assert.equal(Math.max(...progress), 10);
    assert.deepEqual((await readdir(out)).sort(), [SYNTH_CLASSES.diseased, SYNTH_CLASSES.healthy].sort());
    for (const c of r.classes) {
      const names = (await readdir(c.dir)).sort();
      assert.deepEqual(names, ["leaf_00000.png", "leaf_00001.png", "leaf_00002.png", "leaf_00003.png", "leaf_00004.png"]);
      assert.deepEqual(c.files, names.map((n) => path.join(out, c.name, n)));
    }
    // PNG is lossless: the decoded file is exactly what generateLeaf draws.
    const file = path.join(out, SYNTH_CLASSES.diseased, "leaf_00002.png");
    const { data, info } = await sharp(file).raw().toBuffer({ resolveWithObject: true });
    assert.deepEqual([info.width, info.height, info.channels], [40, 40, 3]);
    assert.deepEqual(new Uint8Array(data), generateLeaf({ seed: imageSeed(3, SYNTH_CLASSES.diseased, 2), size: 40, diseased: true }));

    // Fewer images: the first ones are byte-identical and the rest are removed.
    const before = await readFile(file);
    const fewer = await writeSyntheticDataset({ outDir: out, perClass: 3, size: 40, seed: 3 });
    assert.equal(fewer.removed, 4);
    assert.deepEqual(await readFile(file), before);
    assert.equal((await readdir(path.join(out, SYNTH_CLASSES.healthy))).length, 3);
  });

  test("JPEG output decodes at the requested size and replaces PNGs", async () => {
    const out = path.join(tmp, "jpeg");
    await writeSyntheticDataset({ outDir: out, perClass: 2, size: 32, seed: 1 });
    const r = await writeSyntheticDataset({ outDir: out, perClass: 2, size: 32, seed: 1, format: "jpeg" });
    assert.equal(r.removed, 4);
    for (const c of r.classes) {
      assert.deepEqual((await readdir(c.dir)).sort(), ["leaf_00000.jpg", "leaf_00001.jpg"]);
      const meta = await sharp(c.files[0]).metadata();
      assert.deepEqual([meta.format, meta.width, meta.height], ["jpeg", 32, 32]);
    }
  });
});

describe("npm run synth", () => {
  const run = (args: string[]) =>
    promisify(execFile)(process.execPath, ["--import", "tsx", "src/cli/synth.ts", ...args], { cwd: repo }).then(
      (r) => ({ code: 0, ...r }),
      (e: { code: number; stdout: string; stderr: string }) => e,
    );

  test("writes the dataset", async () => {
    const out = path.join(tmp, "cli");
    const r = await run(["--out", out, "--per-class", "3", "--size", "16", "--seed", "9"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /wrote 6 images/);
    assert.equal((await readdir(path.join(out, SYNTH_CLASSES.diseased))).length, 3);
  });

  test("an interrupted run leaves no half set: a new folder does not appear, an old set stays whole", async () => {
    const fresh = path.join(tmp, "killed-fresh");
    const old = path.join(tmp, "killed-old");
    await writeSyntheticDataset({ outDir: old, perClass: 3, size: 16, seed: 9 });
    await writeFile(path.join(old, SYNTH_CLASSES.healthy, "notes.txt"), "a student's notes");
    const before = await readFile(path.join(old, SYNTH_CLASSES.diseased, "leaf_00002.png"));

    /** Start `npm run synth` into `out` and kill it (as Ctrl-C or a closed laptop would) once it has written some images. */
    const killMidway = async (out: string) => {
      const child = spawn(process.execPath, ["--import", "tsx", "src/cli/synth.ts", "--out", out, "--per-class", "2000"], { cwd: repo, stdio: "ignore" });
      const staging = path.join(tmp, `.${path.basename(out)}.synth-${child.pid}`, SYNTH_CLASSES.healthy);
      const exited = new Promise((resolve) => child.on("exit", resolve));
      while (((await readdir(staging).catch(() => [])) as string[]).length < 20) await new Promise((r) => setTimeout(r, 50));
      child.kill("SIGKILL");
      await exited;
    };
    await Promise.all([killMidway(fresh), killMidway(old)]);

    assert.ok(!existsSync(fresh), "no dataset folder until the set is complete");
    const index = await indexDataset(old);
    assert.deepEqual(index.classes.map((c) => c.files.length), [3, 3], "the earlier set, whole");
    assert.deepEqual(await readFile(path.join(old, SYNTH_CLASSES.diseased, "leaf_00002.png")), before);
    assert.ok((await readdir(tmp)).some((e) => e.startsWith(".killed-old.synth-")), "the killed run's staging folder is there");

    // The next run finishes, keeps the user's file and clears the dead run's leftovers.
    const r = await run(["--out", old, "--per-class", "4", "--size", "16", "--seed", "9"]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual((await indexDataset(old)).classes.map((c) => c.files.length), [4, 4]);
    assert.equal(await readFile(path.join(old, SYNTH_CLASSES.healthy, "notes.txt"), "utf8"), "a student's notes");
    assert.ok(!(await readdir(tmp)).some((e) => e.startsWith(".killed-old.synth-")), "leftovers of the killed run are gone");
  });

  test("a bad or missing flag is one line and exit 2", async () => {
    for (const args of [["--out", tmp, "--size", "abc"], ["--per-class", "3"], ["--out", tmp, "--format", "gif"]]) {
      const r = await run(args);
      assert.equal(r.code, 2, args.join(" "));
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
      assert.match(r.stderr, /^error: /);
    }
  });
});

// ---- the cue is local, not global -----------------------------------------------------------

/** Best accuracy of any single threshold (either direction) on one number per image. */
function bestThresholdAccuracy(values: number[], diseased: boolean[]): number {
  const order = values.map((_, i) => i).sort((a, b) => values[a] - values[b]);
  const pos = diseased.filter(Boolean).length;
  const neg = diseased.length - pos;
  let best = Math.max(pos, neg) / diseased.length;
  let posBelow = 0;
  let negBelow = 0;
  for (let k = 0; k < order.length; k++) {
    if (diseased[order[k]]) posBelow++;
    else negBelow++;
    if (k + 1 < order.length && values[order[k + 1]] === values[order[k]]) continue;
    best = Math.max(best, (posBelow + neg - negBelow) / diseased.length, (negBelow + pos - posBelow) / diseased.length);
  }
  return best;
}

/**
 * Count lesion-like spots: a pixel darker than its 3x3 neighbours and clearly darker than the
 * ring around it, sitting on leaf (most of the outer ring is green), with `halo` requiring that
 * the ring just around it is warmer (more red than green) than the leaf further out.
 */
function countSpots(p: Uint8Array, size: number, halo: boolean): number {
  const lum = (i: number) => (p[i] + p[i + 1] + p[i + 2]) / 3;
  const warm = (i: number) => p[i] - p[i + 1];
  const green = (i: number) => (p[i + 1] > p[i + 2] + 15 ? 1 : 0);
  // Square ring of pixels at Chebyshev distance r around (x, y): min or mean of f.
  const ring = (x: number, y: number, r: number, f: (i: number) => number, how: "min" | "mean") => {
    let acc = how === "min" ? Infinity : 0;
    let n = 0;
    for (let dy = -r; dy <= r; dy++)
      for (let dx = -r; dx <= r; dx++) {
        if (Math.max(Math.abs(dx), Math.abs(dy)) !== r) continue;
        const v = f(3 * ((y + dy) * size + x + dx));
        acc = how === "min" ? Math.min(acc, v) : acc + v;
        n++;
      }
    return how === "min" ? acc : acc / n;
  };
  const r = Math.max(2, Math.round(size / 21)); // about the halo's radius
  let count = 0;
  for (let y = r + 1; y < size - r - 1; y++)
    for (let x = r + 1; x < size - r - 1; x++) {
      const c = lum(3 * (y * size + x));
      if (ring(x, y, 1, lum, "min") < c) continue;
      if (ring(x, y, r, lum, "mean") - c < 20) continue;
      if (ring(x, y, r + 1, green, "mean") < 0.5) continue;
      if (halo && ring(x, y, r - 1, warm, "mean") - ring(x, y, r + 1, warm, "mean") < 10) continue;
      count++;
    }
  return count;
}

describe("the disease cue", () => {
  const size = 64;
  const perClass = 200;
  const images: Uint8Array[] = [];
  const diseased: boolean[] = [];
  before(() => {
    for (const d of [false, true])
      for (let i = 0; i < perClass; i++) {
        const name = d ? SYNTH_CLASSES.diseased : SYNTH_CLASSES.healthy;
        images.push(generateLeaf({ seed: imageSeed(1, name, i), size, diseased: d }));
        diseased.push(d);
      }
  });

  test("the mean colour of an image hardly tells the classes apart", () => {
    for (let c = 0; c < 3; c++) {
      const means = images.map((p) => {
        let s = 0;
        for (let i = c; i < p.length; i += 3) s += p[i];
        return s / (size * size);
      });
      const acc = bestThresholdAccuracy(means, diseased);
      assert.ok(acc <= 0.65, `channel ${"RGB"[c]}: a threshold on the mean gets ${acc}`);
    }
  });

  test("dark spots alone do not either: healthy leaves have specks, veins and crumbs too", () => {
    const acc = bestThresholdAccuracy(images.map((p) => countSpots(p, size, false)), diseased);
    assert.ok(acc <= 0.7, `dark-spot count gets ${acc}`);
  });

  test("a dark core inside a yellow halo does", () => {
    const counts = images.map((p) => countSpots(p, size, true));
    const acc = counts.reduce((a, n, i) => a + ((n > 0) === diseased[i] ? 1 : 0), 0) / counts.length;
    assert.ok(acc >= 0.9, `lesion detector gets ${acc}`);
  });
});

test("lesionScale grows the lesions and leaves the leaf itself and healthy leaves unchanged", () => {
  for (const seed of [1, 2, 3, 4, 5]) {
    const small = sampleLeaf({ seed, diseased: true });
    const big = sampleLeaf({ seed, diseased: true, lesionScale: 2 });
    const lesions = (s: typeof small) => s.spots.filter((p) => p.kind === "lesion");
    assert.deepEqual(big.shape, small.shape, "same leaf");
    assert.ok(lesions(big).length >= 1);
    for (const l of lesions(big)) assert.ok(l.radius >= 0.04 - 1e-12 && l.radius <= 0.06 + 1e-12, `radius ${l.radius} is twice 2-3%`);
    assert.deepEqual(sampleLeaf({ seed, diseased: false, lesionScale: 2 }), sampleLeaf({ seed, diseased: false }), "healthy leaves have no lesions to scale");
  }
});
