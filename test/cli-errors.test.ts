// The commands' answers to the bad inputs a first lesson meets (issue 10): usage errors exit 2,
// failures exit 1, each message names the flag or the file and what to do, nothing half-written
// stays behind, and flag checks come before the compute backend starts.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, truncate, writeFile } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import sharp from "sharp";
import { indexDataset } from "../src/data/index.ts";
import { writeManifest } from "../src/data/manifest.ts";
import { buildManifest } from "../src/data/split.ts";
import { sha256Hex } from "../src/data/files.ts";
import { writeSafetensors } from "../src/models/safetensors.ts";

const REPO = path.resolve(import.meta.dirname, "..");
const SHARED = path.resolve(import.meta.dirname, "../../shared/data/plantvillage");
const NO_DATA = existsSync(SHARED) ? undefined : `shared data not found at ${SHARED}`;
const MANIFEST = path.join(REPO, "data-manifests", "pepper-bell-99to1-seed1.json");

let tmp: string;
before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), "finalbn-cli-errors-"));
});
after(() => rm(tmp, { recursive: true, force: true }));

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run a command as `npm run` does (tsx), without blocking this process (servers live here). */
function cli(script: string, args: string[], opts: { env?: Record<string, string>; preload?: string } = {}): Promise<Outcome> {
  const node = ["--import", "tsx", ...(opts.preload ? ["--import", opts.preload] : []), path.join("src/cli", script), ...args];
  return new Promise((resolve) => {
    execFile(process.execPath, node, { cwd: REPO, env: { ...process.env, ...opts.env }, timeout: 120_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

/** The error line(s), without the FINALBN_DEBUG hint a failure adds. */
function errorText(r: Outcome): string {
  return r.stderr.replace(/\(set FINALBN_DEBUG=1 to see the stack trace\)\n?/, "").trim();
}

function assertNoStack(r: Outcome): void {
  assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
}

// ---------- weights:fetch ----------

test("weights:fetch offline names the host, the cause and --from, and leaves no folder", async () => {
  // Offline as a classroom without internet is: every host name lookup fails (ENOTFOUND).
  const offline = path.join(tmp, "offline.mjs");
  await writeFile(
    offline,
    `import dns from "node:dns";
dns.lookup = (hostname, options, callback) => {
  const cb = typeof options === "function" ? options : callback;
  process.nextTick(cb, Object.assign(new Error("getaddrinfo ENOTFOUND " + hostname), { code: "ENOTFOUND", syscall: "getaddrinfo", hostname }));
};
`,
  );
  // A port nobody listens on: a server that has been closed.
  const closed = http.createServer();
  await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
  const { port } = closed.address() as AddressInfo;
  await new Promise((resolve) => closed.close(resolve));

  const out = path.join(tmp, "weights", "nested");
  const [noDns, refused] = await Promise.all([
    cli("weights-fetch.ts", ["--model", "vgg19_bn", "--out", out], { preload: offline }),
    cli("weights-fetch.ts", ["--model", "vgg19_bn", "--out", out, "--url", `http://127.0.0.1:${port}/model.safetensors`]),
  ]);
  assert.equal(noDns.code, 1, noDns.stderr);
  assert.match(errorText(noDns), /^error: cannot download the vgg19_bn weights from huggingface\.co: host not found .*\(ENOTFOUND\)/);
  assert.match(errorText(noDns), /download https:\/\/huggingface\.co\/\S+ elsewhere and pass the file with --from FILE/);
  assert.equal(refused.code, 1, refused.stderr);
  assert.match(errorText(refused), new RegExp(`from 127\\.0\\.0\\.1:${port}: connection refused \\(ECONNREFUSED\\).*--from FILE`));
  for (const r of [noDns, refused]) assertNoStack(r);
  assert.ok(!existsSync(path.join(tmp, "weights")), "no empty folder is left");
});

test("weights:fetch --from FILE installs a file fetched elsewhere, with the same checks", async () => {
  const body = writeSafetensors({ "fc.weight": { shape: [2, 2], data: [1, 2, 3, 4] } });
  const from = path.join(tmp, "downloaded-elsewhere.safetensors");
  await writeFile(from, body);
  const out = path.join(tmp, "from-out");
  const [ok, missing, wrongHash] = await Promise.all([
    cli("weights-fetch.ts", ["--model", "resnet34", "--out", out, "--from", from, "--sha256", sha256Hex(body)]),
    cli("weights-fetch.ts", ["--model", "resnet34", "--out", path.join(tmp, "never"), "--from", path.join(tmp, "no-such.safetensors")]),
    cli("weights-fetch.ts", ["--model", "resnet34", "--out", path.join(tmp, "never"), "--from", from, "--sha256", "0".repeat(64)]),
  ]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.deepEqual(await readFile(path.join(out, "resnet34.safetensors")), Buffer.from(body));
  assert.deepEqual(await readdir(out), ["resnet34.safetensors"], "no temporary file is left");
  assert.equal(missing.code, 2);
  assert.equal(errorText(missing), `error: --from ${path.join(tmp, "no-such.safetensors")} does not exist`);
  assert.equal(wrongHash.code, 1);
  assert.match(errorText(wrongHash), /SHA-256 is [0-9a-f]{64}, expected 0{64}/);
  assert.ok(!existsSync(path.join(tmp, "never")), "a failed copy leaves no folder");
});

// ---------- experiment: every flag checked before the backend starts ----------

test("experiment: a bad --data, --manifest or --pretrained, or --freeze-epochs alone, exit 2 before start-up", async () => {
  const notJson = path.join(tmp, "not-json.json");
  await writeFile(notJson, "{ this is not json");
  const notWeights = path.join(tmp, "not-weights.safetensors");
  await writeFile(notWeights, "hello");
  // --backend cuda cannot start here (no tfjs-node-gpu): a check that ran after start-up would
  // answer with the backend's failure (exit 1) instead.
  const base = ["--backend", "cuda", "--size", "32", "--epochs", "1"];
  const cases: [string[], RegExp][] = [
    [["--manifest", MANIFEST, "--data", "/nonexistent"], /^error: --data \/nonexistent does not exist$/],
    [["--manifest", path.join(tmp, "gone.json"), "--data", REPO], /^error: --manifest \S+gone\.json does not exist$/],
    [["--manifest", notJson, "--data", REPO], /^error: manifest \S+not-json\.json is not valid JSON/],
    [["--manifest", MANIFEST, "--data", REPO, "--pretrained", path.join(tmp, "gone.safetensors")], /^error: --pretrained \S+gone\.safetensors does not exist$/],
    [["--manifest", MANIFEST, "--data", REPO, "--pretrained", notWeights], /^error: --pretrained: \S+not-weights\.safetensors is not a safetensors file/],
    [["--manifest", MANIFEST, "--data", REPO, "--freeze-epochs", "1"], /^error: --freeze-epochs needs --pretrained/],
  ];
  const results = await Promise.all(cases.map(([args]) => cli("experiment.ts", [...base, ...args])));
  results.forEach((r, i) => {
    assert.equal(r.code, 2, `${cases[i][0].join(" ")}: ${r.stderr}`);
    assert.match(r.stderr.trim(), cases[i][1]);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    assert.doesNotMatch(r.stdout + r.stderr, /cuda|backend/i, "the backend was never started");
  });
});

test("experiment on a folder without the manifest's images: exit 1, a few named, before start-up", async () => {
  const empty = path.join(tmp, "empty-data");
  await mkdir(empty);
  const r = await cli("experiment.ts", ["--manifest", MANIFEST, "--data", empty, "--backend", "cuda", "--size", "32"]);
  assert.equal(r.code, 1, r.stderr);
  const lines = errorText(r).split("\n");
  assert.equal(lines[0], `error: 1690 of 1690 images of ${MANIFEST} are missing under ${empty}:`);
  assert.match(lines[1], /^ {2}raw\/color\/Pepper,_bell___Bacterial_spot\/\S+/);
  assert.equal(lines[11], "  ... and 1680 more");
  assert.match(lines[12], /^check --data, or download them: npm run data:fetch -- --manifest /);
  assert.doesNotMatch(r.stdout + r.stderr, /cuda/i, "found before the backend starts");
});

// ---------- negative numbers ----------

test("--seed -1, --ratio -1:1 and --per-class -5 are refused with the flag's name, exit 2", async () => {
  const data = REPO; // any folder: the flag is checked before the data is read
  const [seed, ratio, perClass] = await Promise.all([
    cli("split.ts", ["--data", data, "--crop", "Pepper", "--seed", "-1"]),
    cli("split.ts", ["--data", data, "--crop", "Pepper", "--ratio", "-1:1"]),
    cli("synth.ts", ["--out", path.join(tmp, "never-synth"), "--per-class", "-5"]),
  ]);
  assert.equal(seed.code, 2);
  assert.equal(seed.stderr, "error: --seed must be ≥ 0, got -1\n");
  assert.equal(ratio.code, 2);
  assert.match(ratio.stderr, /^error: --ratio must look like 99:1 .*got "-1:1"\n$/);
  assert.equal(perClass.code, 2);
  assert.equal(perClass.stderr, "error: --per-class must be ≥ 1, got -5\n");
  for (const r of [seed, ratio, perClass]) assert.doesNotMatch(r.stderr, /ambiguous/);
  assert.ok(!existsSync(path.join(tmp, "never-synth")));
});

// ---------- broken images: found by data:verify --decode, and all at once by experiment ----------

/** Real Pepper photos in the original layout, two of them truncated and one replaced by a decompression bomb. */
async function brokenPepper(root: string): Promise<string[]> {
  const classes: [string, string][] = [
    ["Pepper__bell___healthy", "Pepper,_bell___healthy"],
    ["Pepper__bell___Bacterial_spot", "Pepper,_bell___Bacterial_spot"],
  ];
  for (const [mirror, original] of classes) {
    await mkdir(path.join(root, "raw", "color", original), { recursive: true });
    for (const name of (await readdir(path.join(SHARED, mirror))).sort().slice(0, 10))
      await copyFile(path.join(SHARED, mirror, name), path.join(root, "raw", "color", original, name));
  }
  const healthy = path.join(root, "raw", "color", "Pepper,_bell___healthy");
  const [a, b, c] = (await readdir(healthy)).sort();
  for (const name of [a, b]) await truncate(path.join(healthy, name), 6000); // a copy cut short
  // A PNG of under half a megabyte that declares 12000 x 12000 pixels (432 MB once decoded).
  const bomb = await sharp({ create: { width: 12000, height: 12000, channels: 3, background: "#3a7d2c" } }).png({ compressionLevel: 9 }).toBuffer();
  await writeFile(path.join(healthy, c), bomb);
  return [a, b, c].map((name) => `raw/color/Pepper,_bell___healthy/${name}`);
}

test("truncated JPEGs and a bomb PNG: data:verify --decode and experiment list every one, exit 1", { skip: NO_DATA }, async () => {
  const root = path.join(tmp, "broken");
  const bad = await brokenPepper(root);
  // The hashes are those of the broken files: the manifest itself is fine, as split makes it.
  const manifest = path.join(tmp, "broken.json");
  await writeManifest(manifest, await buildManifest(await indexDataset(root), { crop: "Pepper", ratio: [4, 1], testPerClass: 3, trainMajority: 7 }));

  const env = { FINALBN_CACHE: path.join(tmp, "pixel-cache") };
  const [hashOnly, decoded, experiment] = await Promise.all([
    cli("verify.ts", ["--manifest", manifest, "--data", root]),
    cli("verify.ts", ["--manifest", manifest, "--data", root, "--decode"]),
    cli("experiment.ts", ["--manifest", manifest, "--data", root, "--backend", "cuda", "--size", "32", "--epochs", "1", "--out", path.join(tmp, "runs")], { env }),
  ]);
  assert.equal(hashOnly.code, 0, "the bytes are what the manifest says: only decoding finds them");

  assert.equal(decoded.code, 1, decoded.stderr);
  const lines = decoded.stdout.trim().split("\n");
  const undecodable = lines.filter((l) => l.startsWith("undecodable "));
  assert.equal(undecodable.length, 3, decoded.stdout);
  for (const p of bad) assert.ok(undecodable.some((l) => l.includes(p)), `${p} is listed`);
  // libvips's own words, or ours when it lost them (decodes side by side).
  assert.match(decoded.stdout, /(premature end of JPEG|corrupt or truncated image data)/);
  assert.match(decoded.stdout, /decompression bomb: it declares 12000x12000 pixels, more than the 100 million allowed/);
  assert.match(lines.at(-1)!, /^checked 15 images: 0 missing, 0 mismatched, 0 unreadable, 3 undecodable$/);

  assert.equal(experiment.code, 1, experiment.stderr);
  assert.match(errorText(experiment), /^error: 3 of 15 images cannot be used for training/);
  for (const p of bad) assert.ok(experiment.stderr.includes(path.join(root, ...p.split("/"))), `experiment names ${p}`);
  assert.doesNotMatch(experiment.stdout + experiment.stderr, /cuda/i, "found before the backend starts");
  assert.ok(!existsSync(path.join(tmp, "runs")), "no run folder is started");
  assertNoStack(experiment);
});

test("data:verify: an unreadable manifest exits 2, a data mismatch 1", async () => {
  const notJson = path.join(tmp, "verify-not-json.json");
  await writeFile(notJson, "[1, 2,");
  const [gone, garbled] = await Promise.all([
    cli("verify.ts", ["--manifest", path.join(tmp, "gone.json"), "--data", REPO]),
    cli("verify.ts", ["--manifest", notJson, "--data", REPO]),
  ]);
  assert.equal(gone.code, 2);
  assert.match(gone.stderr, /^error: --manifest \S+gone\.json does not exist\n$/);
  assert.equal(garbled.code, 2);
  assert.match(garbled.stderr, /^error: manifest \S+verify-not-json\.json is not valid JSON/);
  // A mismatch (1) is in verify.test.ts's CLI test.
});
