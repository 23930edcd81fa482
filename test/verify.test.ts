import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { appendFile, copyFile, mkdir, mkdtemp, readdir, rm, unlink } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { indexDataset } from "../src/data/index.ts";
import { readManifest, writeManifest } from "../src/data/manifest.ts";
import { buildManifest } from "../src/data/split.ts";
import { verifyManifest } from "../src/data/verify.ts";

const REPO = path.resolve(import.meta.dirname, "..");
const SHARED = path.resolve(import.meta.dirname, "../../shared/data/plantvillage");
const COMMITTED = ["pepper-bell-99to1-seed1.json", "potato-99to1-healthy-minority-seed1.json"];
const run = promisify(execFile);

function cli(...args: string[]) {
  return run(process.execPath, ["--import", "tsx", "src/cli/verify.ts", ...args], { cwd: REPO }).then(
    (r) => ({ code: 0, ...r }),
    (e) => ({ code: e.code as number, stdout: e.stdout as string, stderr: e.stderr as string }),
  );
}

/** Copy the first `n` real images of each Pepper class into `root/raw/color/<original class>/`. */
async function copyPepper(root: string, n: number): Promise<void> {
  const classes: [string, string][] = [
    ["Pepper__bell___healthy", "Pepper,_bell___healthy"],
    ["Pepper__bell___Bacterial_spot", "Pepper,_bell___Bacterial_spot"],
  ];
  for (const [mirror, original] of classes) {
    const to = path.join(root, "raw", "color", original);
    await mkdir(to, { recursive: true });
    const names = (await readdir(path.join(SHARED, mirror))).sort().slice(0, n);
    for (const name of names) await copyFile(path.join(SHARED, mirror, name), path.join(to, name));
  }
}

test("a clean copy verifies; a missing and a modified file are reported", async (t) => {
  if (!existsSync(SHARED)) return t.skip(`shared data not found at ${SHARED}`);
  const root = await mkdtemp(path.join(os.tmpdir(), "finalbn-verify-"));
  t.after(() => rm(root, { recursive: true, force: true }));
  await copyPepper(root, 20);
  const manifest = await buildManifest(await indexDataset(root), { crop: "Pepper", ratio: [9, 1], testPerClass: 5, trainMajority: 9 });
  assert.equal(manifest.images.length, 20);

  // The manifest, built from the original layout, verifies against the mirror layout too.
  const progress: number[] = [];
  const clean = await verifyManifest(manifest, root, { onProgress: (done) => progress.push(done) });
  assert.deepEqual(clean, { checked: 20, missing: [], mismatched: [], unreadable: [], undecodable: [] });
  assert.equal(progress.length, 20);
  assert.equal(progress.at(-1), 20);
  assert.deepEqual(await verifyManifest(manifest, SHARED), { checked: 20, missing: [], mismatched: [], unreadable: [], undecodable: [] });

  const [gone, changed] = [manifest.images[0], manifest.images[manifest.images.length - 1]];
  await unlink(path.join(root, ...gone.path.split("/")));
  await appendFile(path.join(root, ...changed.path.split("/")), "x");
  const result = await verifyManifest(manifest, root);
  assert.equal(result.checked, 20);
  assert.deepEqual(result.missing, [gone.path]);
  assert.equal(result.mismatched.length, 1);
  assert.equal(result.mismatched[0].path, changed.path);
  assert.equal(result.mismatched[0].expected, changed.sha256);
  assert.notEqual(result.mismatched[0].actual, changed.sha256);

  // A whole class folder gone: each of its images is missing.
  await rm(path.join(root, "raw", "color", "Pepper,_bell___Bacterial_spot"), { recursive: true });
  const noClass = await verifyManifest(manifest, root);
  const expected = manifest.images.filter((i) => i.class === "Pepper,_bell___Bacterial_spot" || i === gone).map((i) => i.path);
  assert.deepEqual(noClass.missing, expected);
});

test("the committed manifests verify against the shared data", async (t) => {
  if (!existsSync(SHARED)) return t.skip(`shared data not found at ${SHARED}`);
  for (const file of COMMITTED) {
    const manifest = await readManifest(path.join(REPO, "data-manifests", file));
    const result = await verifyManifest(manifest, SHARED);
    assert.deepEqual(result, { checked: manifest.images.length, missing: [], mismatched: [], unreadable: [], undecodable: [] }, file);
  }
});

test("verify CLI: exit 0 when clean, 1 with every problem listed, 2 on a missing flag", async (t) => {
  const help = await cli("--help");
  assert.equal(help.code, 0);
  assert.match(help.stdout, /--manifest/);
  const missing = await cli("--data", REPO);
  assert.equal(missing.code, 2);
  assert.equal(missing.stderr, "error: missing --manifest (see --help)\n");

  if (!existsSync(SHARED)) return t.skip(`shared data not found at ${SHARED}`);
  const root = await mkdtemp(path.join(os.tmpdir(), "finalbn-verify-cli-"));
  t.after(() => rm(root, { recursive: true, force: true }));
  await copyPepper(root, 12);
  const manifest = await buildManifest(await indexDataset(root), { crop: "Pepper", ratio: [4, 1], testPerClass: 2, trainMajority: 8 });
  const file = path.join(root, "m.json");
  await writeManifest(file, manifest);

  const ok = await cli("--manifest", file, "--data", root);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /^checked 14 images: 0 missing, 0 mismatched, 0 unreadable - all match$/m);

  const [a, b, c] = manifest.images;
  await unlink(path.join(root, ...a.path.split("/")));
  await unlink(path.join(root, ...b.path.split("/")));
  await appendFile(path.join(root, ...c.path.split("/")), "x");
  const bad = await cli("--manifest", file, "--data", root);
  assert.equal(bad.code, 1);
  const lines = bad.stdout.trim().split("\n");
  assert.deepEqual(lines.slice(0, 3).map((l) => l.split(/\s+/)[0]), ["missing", "missing", "mismatch"]);
  assert.ok(lines[0].includes(a.path) && lines[1].includes(b.path) && lines[2].includes(c.path));
  assert.equal(lines.at(-1), "checked 14 images: 2 missing, 1 mismatched, 0 unreadable");
});
