import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { chmod, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { imageKind, indexDataset, resolveImagePath } from "../src/data/index.ts";
import { byCodeUnit } from "../src/data/rng.ts";

const SHARED = path.resolve(import.meta.dirname, "../../shared/data/plantvillage");
const JPEG = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46]);
const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13]);
const isRoot = process.getuid?.() === 0;

async function tempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "finalbn-index-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test("imageKind reads JPEG and PNG magic bytes only", () => {
  assert.equal(imageKind(JPEG), "jpeg");
  assert.equal(imageKind(PNG), "png");
  assert.equal(imageKind(Buffer.from("hello, world")), undefined);
  assert.equal(imageKind(Buffer.from([0xff, 0xd8])), undefined);
});

test("the shared data (mirror layout) indexes completely and without problems", async (t) => {
  if (!existsSync(SHARED)) return t.skip(`shared data not found at ${SHARED}`);
  const index = await indexDataset(SHARED);
  assert.equal(index.root, SHARED);
  assert.deepEqual(
    index.classes.map((c) => [c.info.name, path.basename(c.dir), c.files.length]),
    [
      ["Pepper,_bell___Bacterial_spot", "Pepper__bell___Bacterial_spot", 997],
      ["Pepper,_bell___healthy", "Pepper__bell___healthy", 1478],
      ["Potato___Early_blight", "Potato___Early_blight", 1000],
      ["Potato___Late_blight", "Potato___Late_blight", 1000],
      ["Potato___healthy", "Potato___healthy", 152],
    ],
  );
  assert.deepEqual(index.problems, []);
  for (const c of index.classes) assert.deepEqual(c.files, c.files.slice().sort(byCodeUnit));
  // The odd ones out in the original data are real images too: a PNG and a lower-case .jpg.
  const healthy = index.classes[1].files;
  assert.ok(healthy.some((f) => f.endsWith(".png")));
  assert.ok(healthy.some((f) => f.endsWith(".jpg")));
  const file = healthy[0];
  assert.equal(resolveImagePath(index, `raw/color/Pepper,_bell___healthy/${file}`), path.join(SHARED, "Pepper__bell___healthy", file));
});

test("the original layout (raw/color) and the mirror layout give the same classes and files", async (t) => {
  const root = await tempDir(t);
  const original = path.join(root, "original");
  const mirror = path.join(root, "mirror");
  const layouts: [string, string[]][] = [
    [path.join(original, "raw", "color"), ["Pepper,_bell___healthy", "Tomato___Target_Spot", "Tomato___healthy"]],
    [mirror, ["Pepper__bell___healthy", "Tomato__Target_Spot", "Tomato_healthy"]],
  ];
  for (const [base, folders] of layouts) {
    for (const folder of folders) {
      await mkdir(path.join(base, folder), { recursive: true });
      for (const name of ["b.JPG", "a.JPG", "c.png"]) await writeFile(path.join(base, folder, name), name.endsWith("png") ? PNG : JPEG);
    }
  }
  // Beside the class folders: quietly skipped (hidden, plain files) or reported (unknown folder).
  await writeFile(path.join(mirror, "README.txt"), "not a class");
  await writeFile(path.join(mirror, "Tomato_healthy", ".DS_Store"), "mac");
  await mkdir(path.join(mirror, "notes"));

  const a = await indexDataset(original);
  const b = await indexDataset(mirror);
  const summary = (i: typeof a) => i.classes.map((c) => [c.info.name, c.files]);
  assert.deepEqual(summary(a), [
    ["Pepper,_bell___healthy", ["a.JPG", "b.JPG", "c.png"]],
    ["Tomato___Target_Spot", ["a.JPG", "b.JPG", "c.png"]],
    ["Tomato___healthy", ["a.JPG", "b.JPG", "c.png"]],
  ]);
  assert.deepEqual(summary(b), summary(a));
  assert.equal(a.classes[0].dir, path.join(original, "raw", "color", "Pepper,_bell___healthy"));
  assert.deepEqual(a.problems, []);
  assert.deepEqual(b.problems.map((p) => path.relative(mirror, p.path)), ["notes"]);

  const manifestPath = "raw/color/Tomato___Target_Spot/a.JPG";
  assert.equal(resolveImagePath(a, manifestPath), path.join(original, "raw", "color", "Tomato___Target_Spot", "a.JPG"));
  assert.equal(resolveImagePath(b, manifestPath), path.join(mirror, "Tomato__Target_Spot", "a.JPG"));
  assert.equal(resolveImagePath(b, "raw/color/Potato___healthy/a.JPG"), undefined);
  assert.equal(resolveImagePath(b, "raw/color/Tomato___healthy/.."), undefined);
  assert.equal(resolveImagePath(b, "Tomato___healthy/a.JPG"), undefined);
});

test("bad files land in problems with a reason, never in files, never a crash", async (t) => {
  const root = await tempDir(t);
  const dir = path.join(root, "Potato___healthy");
  await mkdir(dir);
  await writeFile(path.join(dir, "good.JPG"), JPEG);
  await writeFile(path.join(dir, "empty.JPG"), "");
  await writeFile(path.join(dir, "text.jpg"), "this is not a picture\n");
  await writeFile(path.join(dir, "short.JPG"), Buffer.from([0xff, 0xd8]));
  await mkdir(path.join(dir, "folder.jpg"));
  await writeFile(path.join(dir, "locked.JPG"), JPEG);
  await chmod(path.join(dir, "locked.JPG"), 0o000); // removing it later needs only the folder's permission

  const index = await indexDataset(root);
  const reasons = Object.fromEntries(index.problems.map((p) => [path.basename(p.path), p.reason]));
  assert.equal(reasons["empty.JPG"], "empty file");
  assert.match(reasons["text.jpg"], /not a JPEG or PNG/);
  assert.match(reasons["short.JPG"], /not a JPEG or PNG/);
  assert.match(reasons["folder.jpg"], /folder/);
  assert.ok(index.problems.every((p) => p.path.startsWith(dir)));
  // chmod 000 blocks reads only for ordinary users; root reads the file anyway, and then it is
  // (correctly) a good image. The folder named folder.jpg above covers "cannot read" as root.
  if (isRoot) {
    assert.deepEqual(index.classes[0].files, ["good.JPG", "locked.JPG"]);
    t.diagnostic("running as root: chmod 000 does not block reads, so the unreadable-file case is covered by folder.jpg only");
  } else {
    assert.match(reasons["locked.JPG"], /unreadable \(EACCES\)/);
    assert.deepEqual(index.classes[0].files, ["good.JPG"]);
  }
});

test("files are sorted by code unit, whatever the listing order", async (t) => {
  const root = await tempDir(t);
  const dir = path.join(root, "Synthetic_leaf___healthy");
  await mkdir(dir);
  const names = ["b.png", "B.png", "a.png", "é.png", "_z.png", "10.png", "9.png"];
  for (const n of names) await writeFile(path.join(dir, n), PNG);
  const index = await indexDataset(root);
  assert.deepEqual(index.classes[0].files, ["10.png", "9.png", "B.png", "_z.png", "a.png", "b.png", "é.png"]);
  assert.equal(index.classes[0].info.crop, "Synthetic leaf");
});

test("a missing data folder is a clear error", async () => {
  const missing = path.join(os.tmpdir(), "finalbn-no-such-folder-here");
  await assert.rejects(indexDataset(missing), new RegExp(`data folder ${missing.replace(/[\\^$.*+?()[\]{}|]/g, "\\$&")} does not exist`));
});
