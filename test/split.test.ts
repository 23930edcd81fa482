import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { classInfo } from "../src/data/classes.ts";
import { indexDataset, type DatasetIndex } from "../src/data/index.ts";
import { manifestText } from "../src/data/manifest.ts";
import { buildManifest, makeSplit, splitCounts, type Split } from "../src/data/split.ts";

const REPO = path.resolve(import.meta.dirname, "..");
const SHARED = path.resolve(import.meta.dirname, "../../shared/data/plantvillage");
const run = promisify(execFile);

/** An index held in memory: makeSplit is pure, so most tests need no files at all. */
function fakeIndex(counts: Record<string, number>): DatasetIndex {
  return {
    root: "/data",
    classes: Object.entries(counts).map(([folder, n]) => ({
      info: classInfo(folder)!,
      dir: path.join("/data", folder),
      files: Array.from({ length: n }, (_, i) => `img${String(i).padStart(4, "0")}.JPG`),
    })),
    problems: [],
  };
}

const PEPPER = fakeIndex({ "Pepper,_bell___Bacterial_spot": 997, "Pepper,_bell___healthy": 1478 });
const POTATO = fakeIndex({ Potato___Early_blight: 1000, Potato___Late_blight: 1000, Potato___healthy: 152 });

function check(split: Split) {
  const paths = split.images.map((i) => i.path);
  assert.equal(new Set(paths).size, paths.length, "no image is chosen twice (splits are disjoint)");
  for (const img of split.images) {
    const healthy = classInfo(img.class)!.healthy;
    const minoritySide = split.settings.minority === "healthy" ? healthy : !healthy;
    assert.equal(img.side, minoritySide ? "minority" : "majority", img.path);
    assert.ok(img.path.startsWith(`raw/color/${img.class}/`));
  }
  return splitCounts(split.images);
}

test("Pepper defaults: 99:1 training set, balanced test set of 20% of the smaller side", () => {
  const split = makeSplit(PEPPER, { crop: "Pepper" });
  assert.deepEqual(split.settings, {
    crop: "Pepper, bell",
    ratio: [99, 1],
    minority: "diseased",
    diseases: ["Pepper,_bell___Bacterial_spot"],
    seed: 1,
    testPerClass: 199,
    valPerClass: 0,
    trainMajority: 1279,
    trainMinority: 13,
  });
  assert.deepEqual(check(split), {
    train: { majority: 1279, minority: 13 },
    val: { majority: 0, minority: 0 },
    test: { majority: 199, minority: 199 },
  });
});

test("Potato with a healthy minority pools both blights as the majority", () => {
  const split = makeSplit(POTATO, { crop: "potato", minority: "healthy" });
  assert.deepEqual(split.settings.diseases, ["Potato___Early_blight", "Potato___Late_blight"]);
  assert.equal(split.settings.testPerClass, 30);
  assert.deepEqual(check(split), {
    train: { majority: 1970, minority: 20 },
    val: { majority: 0, minority: 0 },
    test: { majority: 30, minority: 30 },
  });
  const trainClasses = new Set(split.images.filter((i) => i.side === "majority").map((i) => i.class));
  assert.deepEqual([...trainClasses].sort(), ["Potato___Early_blight", "Potato___Late_blight"]);
});

test("explicit sizes, one disease, and validation at the training ratio", () => {
  const split = makeSplit(POTATO, { crop: "Potato", disease: "late", ratio: [9, 1], testPerClass: 10, valPerClass: 18, trainMajority: 90, seed: 7 });
  assert.deepEqual(split.settings.diseases, ["Potato___Late_blight"]);
  assert.deepEqual(check(split), {
    train: { majority: 90, minority: 10 },
    val: { majority: 18, minority: 2 },
    test: { majority: 10, minority: 10 },
  });
  assert.ok(split.images.every((i) => i.class !== "Potato___Early_blight"));
  assert.throws(() => makeSplit(POTATO, { crop: "Potato", disease: "blight" }), /matches several diseases; diseases present: "Early blight", "Late blight"/);
});

test("the default training set shrinks so the minority still fits", () => {
  // 1:1 with a healthy minority: 152 - 30 test = 122 healthy left, so 122 diseased too.
  const split = makeSplit(POTATO, { crop: "Potato", minority: "healthy", ratio: [1, 1] });
  assert.equal(split.settings.trainMajority, 122);
  assert.equal(split.settings.trainMinority, 122);
});

test("asking for more images than exist is an error with the counts", () => {
  assert.throws(
    () => makeSplit(POTATO, { crop: "Potato", minority: "healthy", trainMajority: 5000 }),
    { message: "Potato: need 5030 diseased (Early blight, Late blight) images for the majority side (test 30, train 5000), but only 2000 exist" },
  );
  assert.throws(
    () => makeSplit(POTATO, { crop: "Potato", minority: "healthy", testPerClass: 140, trainMajority: 1800 }),
    { message: "Potato: need 158 healthy images for the minority side (test 140, train 18), but only 152 exist" },
  );
  assert.throws(() => makeSplit(POTATO, { crop: "Tomato" }), /no crop matches "Tomato"; crops present: "Potato"/);
  assert.throws(() => makeSplit(POTATO, { crop: "Potato", trainMajority: 2.5 }), /trainMajority must be a whole number/);
});

test("the same seed gives the same split; another seed a different one", () => {
  const a = makeSplit(PEPPER, { crop: "Pepper", seed: 1 });
  const b = makeSplit(PEPPER, { crop: "Pepper", seed: 1 });
  const c = makeSplit(PEPPER, { crop: "Pepper", seed: 2 });
  assert.deepEqual(a, b);
  assert.notDeepEqual(a.images, c.images);
  // Fewer training images never move the test set.
  const small = makeSplit(PEPPER, { crop: "Pepper", seed: 1, trainMajority: 99 });
  const test = (s: Split) => s.images.filter((i) => i.split === "test").map((i) => i.path);
  assert.deepEqual(test(small), test(a));
});

test("the split does not depend on the order files or classes are listed in", () => {
  const reversed: DatasetIndex = {
    ...POTATO,
    classes: POTATO.classes.map((c) => ({ ...c, files: c.files.slice().reverse() })).reverse(),
  };
  const options = { crop: "Potato", minority: "healthy" as const, seed: 3 };
  assert.deepEqual(makeSplit(reversed, options), makeSplit(POTATO, options));
});

test("buildManifest hashes the chosen files into identical text for the same seed", async (t) => {
  const root = await mkdtemp(path.join(os.tmpdir(), "finalbn-split-"));
  t.after(() => rm(root, { recursive: true, force: true }));
  for (const folder of ["Synthetic_leaf___healthy", "Synthetic_leaf___Lesion_spot"]) {
    await mkdir(path.join(root, folder));
    for (let i = 0; i < 30; i++) {
      const bytes = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.from(`${folder} ${i}`)]);
      await writeFile(path.join(root, folder, `leaf${i}.png`), bytes);
    }
  }
  const index = await indexDataset(root);
  const options = { crop: "Synthetic", ratio: [4, 1] as [number, number], testPerClass: 5, valPerClass: 4 };
  const one = manifestText(await buildManifest(index, options));
  const two = manifestText(await buildManifest(index, options));
  const other = manifestText(await buildManifest(index, { ...options, seed: 2 }));
  assert.equal(one, two);
  assert.notEqual(one, other);
  const m = JSON.parse(one);
  assert.equal(m.settings.crop, "Synthetic leaf");
  assert.equal(m.settings.trainMajority, 21);
  assert.equal(m.settings.trainMinority, 5);
  assert.ok(m.images.every((i: { sha256: string }) => /^[0-9a-f]{64}$/.test(i.sha256)));
});

test("the committed manifests are exactly what the shared data gives", async (t) => {
  if (!existsSync(SHARED)) return t.skip(`shared data not found at ${SHARED}`);
  const index = await indexDataset(SHARED);
  const cases: [string, Parameters<typeof makeSplit>[1]][] = [
    ["pepper-bell-99to1-seed1.json", { crop: "Pepper", ratio: [99, 1], seed: 1 }],
    ["potato-99to1-healthy-minority-seed1.json", { crop: "Potato", minority: "healthy", ratio: [99, 1], seed: 1 }],
  ];
  for (const [file, options] of cases) {
    const committed = await readFile(path.join(REPO, "data-manifests", file), "utf8");
    assert.equal(manifestText(await buildManifest(index, options)), committed, file);
  }
});

test("split CLI: --help exits 0; a missing or bad flag exits 2 with one line", async () => {
  const cli = (...args: string[]) =>
    run(process.execPath, ["--import", "tsx", "src/cli/split.ts", ...args], { cwd: REPO }).then(
      (r) => ({ code: 0, ...r }),
      (e) => ({ code: e.code as number, stdout: e.stdout as string, stderr: e.stderr as string }),
    );
  const help = await cli("--help");
  assert.equal(help.code, 0);
  assert.match(help.stdout, /--test-per-class/);
  const missing = await cli("--crop", "Pepper");
  assert.equal(missing.code, 2);
  assert.equal(missing.stderr, "error: missing --data (see --help)\n");
  const ratio = await cli("--data", REPO, "--crop", "Pepper", "--ratio", "1:99");
  assert.equal(ratio.code, 2);
  assert.equal(ratio.stderr.trim().split("\n").length, 1);
  assert.doesNotMatch(ratio.stderr, /\n\s+at /);
});

/** Run the split command; the outcome, never a throw. */
function splitCli(...args: string[]) {
  return run(process.execPath, ["--import", "tsx", "src/cli/split.ts", ...args], { cwd: REPO }).then(
    (r) => ({ code: 0, ...r }),
    (e) => ({ code: e.code as number, stdout: e.stdout as string, stderr: e.stderr as string }),
  );
}

test("an impossible --ratio says the largest possible one; --test-per-class 0 is refused; neither writes a manifest", async (t) => {
  if (!existsSync(SHARED)) return t.skip(`shared data not found at ${SHARED}`);
  const dir = await mkdtemp(path.join(os.tmpdir(), "finalbn-split-cli-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const out = path.join(dir, "m.json");
  const [ratio, noTest] = await Promise.all([
    splitCli("--data", SHARED, "--crop", "Pepper", "--ratio", "100000:1", "--out", out),
    splitCli("--data", SHARED, "--crop", "Pepper", "--test-per-class", "0", "--out", out),
  ]);
  assert.equal(ratio.code, 2);
  assert.equal(
    ratio.stderr,
    "error: Pepper, bell: ratio 100000:1 is impossible: it needs at least 100000 healthy training images for one " +
      "diseased (Bacterial spot) image, but only 1279 are left after the test set; the largest possible ratio is 1279:1\n",
  );
  assert.equal(noTest.code, 2);
  assert.equal(noTest.stderr, "error: --test-per-class must be ≥ 1, got 0\n");
  assert.ok(!existsSync(out), "no manifest is written");
  // The largest possible ratio it names does build.
  assert.equal(makeSplit(PEPPER, { crop: "Pepper", ratio: [1279, 1] }).settings.trainMinority, 1);
  assert.throws(() => makeSplit(PEPPER, { crop: "Pepper", testPerClass: 0 }), /testPerClass must be a whole number of at least 1/);
  assert.throws(() => makeSplit(PEPPER, { crop: "Pepper", ratio: [99, 1], trainMajority: 50 }), /trainMajority is 50; the largest possible ratio is 50:1/);
});

test("split --out onto an existing manifest is refused without --force", async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), "finalbn-split-force-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  for (const folder of ["Synthetic_leaf___healthy", "Synthetic_leaf___Lesion_spot"]) {
    await mkdir(path.join(dir, "data", folder), { recursive: true });
    for (let i = 0; i < 12; i++) await writeFile(path.join(dir, "data", folder, `leaf${i}.png`), Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, i]));
  }
  const out = path.join(dir, "committed.json");
  await writeFile(out, "the committed manifest\n");
  const args = ["--data", path.join(dir, "data"), "--crop", "Synthetic", "--ratio", "4:1", "--test-per-class", "2", "--out", out];
  const refused = await splitCli(...args);
  assert.equal(refused.code, 2);
  assert.equal(refused.stderr, `error: --out ${out} already exists; pass --force to replace it, or choose another file\n`);
  assert.equal(await readFile(out, "utf8"), "the committed manifest\n", "left as it was");
  const forced = await splitCli(...args, "--force");
  assert.equal(forced.code, 0, forced.stderr);
  assert.equal(JSON.parse(await readFile(out, "utf8")).settings.trainMajority, 10);
});
