// The fetcher against a real HTTP server on 127.0.0.1 that serves the shared PlantVillage images
// under the ORIGINAL layout URLs, with faults injected for a few files.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { execFile, spawnSync } from "node:child_process";
import { mkdtemp, mkdir, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { fetchDataset, fileUrl, type FetchOptions } from "../src/data/fetch.ts";
import { sha256Hex } from "../src/data/files.ts";
import { writeManifest } from "../src/data/manifest.ts";
import type { Manifest, ManifestImage, SplitSettings } from "../src/data/types.ts";

const REPO = path.resolve(import.meta.dirname, "..");
const DATA = path.resolve(import.meta.dirname, "../../shared/data/plantvillage");
// These tests read real PlantVillage images from ../shared beside the checkout; without them they skip.
const NO_DATA = existsSync(DATA) ? undefined : `shared data not found at ${DATA}`;
const CLI = path.join(REPO, "src/cli/fetch.ts");
// Original class name -> mirror folder (the shared data uses the mirror layout).
const MIRROR: Record<string, string> = {
  "Pepper,_bell___healthy": "Pepper__bell___healthy",
  "Pepper,_bell___Bacterial_spot": "Pepper__bell___Bacterial_spot",
};
const HEALTHY = "Pepper,_bell___healthy";

// What the server does, per manifest path ("raw/color/<class>/<file>").
const corrupt = new Set<string>(); // wrong bytes every time
const cutOnce = new Set<string>(); // first GET: half the body, then the socket is destroyed
const gets = new Map<string, number>();
const rawUrls: string[] = [];
let server: http.Server;
let baseUrl: string;
let tmp: string;
let images: ManifestImage[] = []; // 20 real Pepper healthy images, the first 12 are "the" manifest

function totalGets(): number {
  return [...gets.values()].reduce((a, b) => a + b, 0);
}

async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  rawUrls.push(req.url ?? "");
  const segments = new URL(req.url ?? "/", "http://x").pathname.split("/").slice(1).map(decodeURIComponent);
  const rel = segments.join("/");
  gets.set(rel, (gets.get(rel) ?? 0) + 1);
  const folder = MIRROR[segments[2]];
  const body = segments.length === 4 && segments[0] === "raw" && segments[1] === "color" && folder
    ? await readFile(path.join(DATA, folder, segments[3])).catch(() => undefined)
    : undefined;
  if (!body) {
    res.writeHead(404).end("not found");
    return;
  }
  if (corrupt.has(rel)) body[body.length >> 1] ^= 0xff; // readFile gave us our own copy
  res.writeHead(200, { "content-type": "image/jpeg", "content-length": body.length });
  if (cutOnce.has(rel) && gets.get(rel) === 1) {
    res.write(body.subarray(0, body.length >> 1), () => req.socket.destroy());
    return;
  }
  res.end(body);
}

function manifestOf(list: ManifestImage[]): Manifest {
  const settings: SplitSettings = {
    crop: "Pepper", ratio: [99, 1], minority: "diseased", diseases: [], seed: 1,
    testPerClass: 0, valPerClass: 0, trainMajority: list.length, trainMinority: 0,
  };
  return { format: "finalbn-manifest/1", settings, images: list };
}

function localFile(out: string, image: ManifestImage): string {
  return path.join(out, ...image.path.split("/"));
}

async function sourceBytes(image: ManifestImage): Promise<Buffer> {
  const [, , cls, file] = image.path.split("/");
  return readFile(path.join(DATA, MIRROR[cls], file));
}

/** Every file under dir, relative paths (to look for temp leftovers). */
async function walk(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isFile()).map((e) => path.relative(dir, path.join(e.parentPath, e.name)));
}

const fast: Partial<FetchOptions> = { retries: 2, retryDelayMs: 1, concurrency: 4 };

before(async () => {
  if (NO_DATA) return;
  tmp = await mkdtemp(path.join(os.tmpdir(), "finalbn-fetch-"));
  const files = (await readdir(path.join(DATA, MIRROR[HEALTHY]))).sort().slice(0, 20);
  for (const file of files) {
    const bytes = await readFile(path.join(DATA, MIRROR[HEALTHY], file));
    images.push({ path: `raw/color/${HEALTHY}/${file}`, class: HEALTHY, side: "majority", split: "train", sha256: sha256Hex(bytes) });
  }
  server = http.createServer((req, res) => {
    handle(req, res).catch(() => res.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
});

after(async () => {
  if (NO_DATA) return;
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await rm(tmp, { recursive: true, force: true });
});

test("fileUrl percent-encodes each segment", () => {
  assert.equal(
    fileUrl("https://h/x", "raw/color/Pepper,_bell___healthy/a b.JPG"),
    "https://h/x/raw/color/Pepper%2C_bell___healthy/a%20b.JPG",
  );
});

test("downloads exactly the listed files with the right bytes; a second run skips them all", { skip: NO_DATA }, async () => {
  const out = path.join(tmp, "complete");
  const manifest = manifestOf(images.slice(0, 12));
  const progress: number[] = [];
  const start = totalGets();
  const first = await fetchDataset(manifest, { ...fast, outDir: out, baseUrl, onProgress: (done, total) => {
    assert.equal(total, 12);
    progress.push(done);
  } });
  assert.deepEqual(first, { downloaded: 12, skipped: 0, failed: [] });
  assert.deepEqual(progress, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
  assert.equal(totalGets() - start, 12);
  for (const image of manifest.images) assert.ok((await readFile(localFile(out, image))).equals(await sourceBytes(image)), image.path);
  assert.equal((await walk(out)).length, 12, "nothing but the listed files");
  assert.ok(rawUrls.some((u) => u.includes("/raw/color/Pepper%2C_bell___healthy/") && u.includes("%20")), "segments are percent-encoded");

  const again = await fetchDataset(manifest, { ...fast, outDir: out, baseUrl });
  assert.deepEqual(again, { downloaded: 0, skipped: 12, failed: [] });
  assert.equal(totalGets() - start, 12, "the server saw no new GETs");
});

test("a file served with wrong bytes every time fails with a hash reason and leaves nothing behind", { skip: NO_DATA }, async () => {
  const out = path.join(tmp, "corrupt");
  const bad = images[12];
  corrupt.add(bad.path);
  const summary = await fetchDataset(manifestOf([images[0], bad]), { ...fast, outDir: out, baseUrl });
  assert.equal(summary.downloaded, 1);
  assert.equal(summary.failed.length, 1);
  assert.equal(summary.failed[0].path, bad.path);
  assert.match(summary.failed[0].reason, /sha256 mismatch.*after 3 attempts/);
  assert.equal(gets.get(bad.path), 3, "first attempt + 2 retries");
  assert.equal(existsSync(localFile(out, bad)), false, "no file under the final name");
  assert.deepEqual(await walk(out), [path.join("raw", "color", HEALTHY, images[0].path.split("/")[3])], "no temp leftovers");
});

test("a connection cut midway is retried and the file arrives", { skip: NO_DATA }, async () => {
  const out = path.join(tmp, "cut");
  const image = images[13];
  cutOnce.add(image.path);
  const summary = await fetchDataset(manifestOf([image]), { ...fast, outDir: out, baseUrl });
  assert.deepEqual(summary, { downloaded: 1, skipped: 0, failed: [] });
  assert.equal(gets.get(image.path), 2);
  assert.ok((await readFile(localFile(out, image))).equals(await sourceBytes(image)));
});

test("a 404 fails at once, without retries", { skip: NO_DATA }, async () => {
  const out = path.join(tmp, "missing");
  const missing: ManifestImage = { ...images[0], path: `raw/color/${HEALTHY}/no such file.JPG`, sha256: "0".repeat(64) };
  const summary = await fetchDataset(manifestOf([missing]), { ...fast, outDir: out, baseUrl });
  assert.equal(summary.downloaded, 0);
  assert.deepEqual(summary.failed.map((f) => f.path), [missing.path]);
  assert.match(summary.failed[0].reason, /HTTP 404/);
  assert.equal(gets.get(missing.path), 1);
  assert.deepEqual(await walk(out), []);
});

test("a file present with wrong content is replaced and stale temp files are removed", { skip: NO_DATA }, async () => {
  const out = path.join(tmp, "replace");
  const [wrong, stale] = [images[14], images[15]];
  await mkdir(path.dirname(localFile(out, wrong)), { recursive: true });
  await writeFile(localFile(out, wrong), "not a jpeg");
  // A temp file left by a process that no longer exists.
  const deadPid = spawnSync(process.execPath, ["--version"]).pid;
  await writeFile(`${localFile(out, stale)}.part-${deadPid}`, "half a download");
  const summary = await fetchDataset(manifestOf([wrong, stale]), { ...fast, outDir: out, baseUrl });
  assert.deepEqual(summary, { downloaded: 2, skipped: 0, failed: [] });
  assert.ok((await readFile(localFile(out, wrong))).equals(await sourceBytes(wrong)));
  assert.equal((await walk(out)).filter((f) => f.includes(".part-")).length, 0, "stale temp file removed");
});

/** Run the CLI without blocking this process (the server lives here). */
function runCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ["--import", "tsx", CLI, ...args], { cwd: REPO }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

test("CLI: --help, a missing --manifest, exit 1 listing the failures, exit 0 once complete", { skip: NO_DATA }, async () => {
  const out = path.join(tmp, "cli");
  const good = images.slice(16, 19);
  const missing: ManifestImage = { ...images[0], path: `raw/color/${HEALTHY}/gone.JPG`, sha256: "1".repeat(64) };
  const withFailure = path.join(tmp, "with-failure.json");
  const complete = path.join(tmp, "complete.json");
  await writeManifest(withFailure, manifestOf([...good, missing]));
  await writeManifest(complete, manifestOf(good));

  // Independent runs go in parallel: each CLI start (tsx) costs about a second.
  const [help, noManifest, failed] = await Promise.all([
    runCli(["--help"]),
    runCli(["--out", out]),
    runCli(["--manifest", withFailure, "--out", out, "--base-url", baseUrl, "--retries", "0"]),
  ]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /--manifest/);
  assert.equal(noManifest.code, 2);
  assert.equal(noManifest.stderr.trim().split("\n").length, 1, noManifest.stderr);
  assert.match(noManifest.stderr, /missing --manifest/);

  assert.equal(failed.code, 1, failed.stderr);
  assert.match(failed.stdout, /3 downloaded, 0 already present, 1 failed/);
  assert.match(failed.stderr, /raw\/color\/Pepper,_bell___healthy\/gone\.JPG: HTTP 404/);
  assert.match(failed.stderr, /fetch: 4\/4 files/, "plain progress lines when not on a terminal");

  const ok = await runCli(["--manifest", complete, "--out", out, "--base-url", baseUrl]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /0 downloaded, 3 already present, 0 failed/);
});

/** Serve `/<anything>/huge.JPG` announcing 400 MB and `/<anything>/endless.JPG` with no length, both as fast as the client reads; counts what was sent. */
async function floodServer(): Promise<{ url: string; sent: Map<string, number>; close: () => Promise<void> }> {
  const sent = new Map<string, number>();
  const chunk = Buffer.alloc(64 * 1024, 0xab);
  const flood = http.createServer((req, res) => {
    const name = path.basename(decodeURIComponent(req.url ?? ""));
    const limit = 400_000_000;
    res.writeHead(200, name === "huge.JPG" ? { "content-length": limit } : {});
    sent.set(name, 0);
    const pump = () => {
      while (!res.destroyed && sent.get(name)! + chunk.length <= limit) {
        sent.set(name, sent.get(name)! + chunk.length);
        if (!res.write(chunk)) return void res.once("drain", pump);
      }
      if (!res.destroyed) res.end();
    };
    pump();
  });
  await new Promise<void>((resolve) => flood.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(flood.address() as AddressInfo).port}/`;
  return { url, sent, close: () => new Promise((resolve) => (flood.closeAllConnections(), flood.close(() => resolve()))) };
}

test("a 400 MB answer is refused at the cap (default 20 MB) while streaming, and nothing of it stays on disk", { skip: NO_DATA }, async () => {
  const flood = await floodServer();
  try {
    const out = path.join(tmp, "flood");
    const file = path.join(tmp, "flood.json");
    const fake = (name: string): ManifestImage => ({ ...images[0], path: `raw/color/${HEALTHY}/${name}`, sha256: "1".repeat(64) });
    await writeManifest(file, manifestOf([fake("huge.JPG"), fake("endless.JPG")]));
    const r = await runCli(["--manifest", file, "--out", out, "--base-url", flood.url, "--retries", "0"]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /huge\.JPG: the server announces 400 MB, more than the 20 MB allowed for one image \(--max-mb\)/);
    assert.match(r.stderr, /endless\.JPG: the answer runs on, more than the 20 MB allowed for one image \(--max-mb\)/);
    // The client stopped reading at the cap, so the server could not send much more (socket buffers).
    assert.ok(flood.sent.get("endless.JPG")! < 40_000_000, `sent ${flood.sent.get("endless.JPG")} bytes`);
    assert.ok(flood.sent.get("huge.JPG")! < 40_000_000, `sent ${flood.sent.get("huge.JPG")} bytes`);
    assert.deepEqual(await walk(out), [], "no file and no .part file is left");

    // A lower cap is a flag.
    const small = await runCli(["--manifest", file, "--out", out, "--base-url", flood.url, "--retries", "0", "--max-mb", "1"]);
    assert.equal(small.code, 1);
    assert.match(small.stderr, /endless\.JPG: the answer runs on, more than the 1 MB allowed/);
  } finally {
    await flood.close();
  }
});
