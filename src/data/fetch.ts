// Download the images a manifest lists from the original PlantVillage repository, so that
// anyone with internet can rebuild exactly the split a manifest describes. Every file is
// checked against the manifest's SHA-256, and a run can be stopped and started again: files
// already present with the right bytes are kept, everything else is fetched.
import { mkdir, readFile, readdir, rename, rm } from "node:fs/promises";
import path from "node:path";
import { Readable } from "node:stream";
import type { ReadableStream } from "node:stream/web";
import type { Manifest, ManifestImage } from "./types.ts";
import { processAlive, sha256Hex } from "./files.ts";
import { formatBytes, networkReason, saveBody, TooLargeError } from "./net.ts";

export const DEFAULT_BASE_URL = "https://raw.githubusercontent.com/spMohanty/PlantVillage-Dataset/master/";

/**
 * The most one image may take (manifests do not record sizes). PlantVillage photos are about
 * 20 KB; a bigger answer is a wrong URL or a misbehaving server, refused before it fills the disk.
 */
export const DEFAULT_MAX_BYTES = 20_000_000;

export interface FetchOptions {
  /** Folder to download into; files land at `<outDir>/raw/color/<class>/<file>`. */
  outDir: string;
  /** Where the original layout is served (must contain `raw/color/...`). */
  baseUrl?: string;
  /** Downloads in flight at once. */
  concurrency?: number;
  /** Extra attempts after the first one, for network errors, 5xx and bad bytes. */
  retries?: number;
  /** Limit for one attempt (request and body), in milliseconds. */
  timeoutMs?: number;
  /** First wait between attempts; it doubles each time (tests make it small). */
  retryDelayMs?: number;
  /** Largest answer accepted for one image, in bytes (default DEFAULT_MAX_BYTES). */
  maxBytes?: number;
  /** Called once per file when it is finished (downloaded, skipped or failed). */
  onProgress?: (done: number, total: number, path: string) => void;
}

export interface FetchFailure {
  path: string;
  reason: string;
}

export interface FetchSummary {
  downloaded: number;
  /** Already present with the right SHA-256. */
  skipped: number;
  failed: FetchFailure[];
}

/** The URL of a manifest path: every segment percent-encoded (class names have commas, files spaces). */
export function fileUrl(baseUrl: string, manifestPath: string): string {
  const base = baseUrl.endsWith("/") ? baseUrl : baseUrl + "/";
  return base + manifestPath.split("/").map(encodeURIComponent).join("/");
}

/** Where a manifest path is stored under outDir (the original layout, kept as is). */
export function localPath(outDir: string, manifestPath: string): string {
  const root = path.resolve(outDir);
  const file = path.resolve(root, ...manifestPath.split("/"));
  // The manifest reader already rejects "..", but this function is also called with hand-made manifests.
  if (!file.startsWith(root + path.sep)) throw new Error(`path ${manifestPath} leaves the output folder`);
  return file;
}

/** Download every image the manifest lists into outDir; never throws for one bad file. */
export async function fetchDataset(manifest: Manifest, options: FetchOptions): Promise<FetchSummary> {
  const o = {
    baseUrl: DEFAULT_BASE_URL,
    concurrency: 8,
    retries: 3,
    timeoutMs: 60_000,
    retryDelayMs: 500,
    maxBytes: DEFAULT_MAX_BYTES,
    ...options,
  };
  const { images, duplicates } = uniqueImages(manifest.images);
  const summary: FetchSummary = { downloaded: 0, skipped: 0, failed: duplicates };
  await removeStaleParts(o.outDir, images);

  // A small pool of workers taking the next image from a shared counter: bounded concurrency
  // without a queue library.
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < images.length) {
      const image = images[next++];
      try {
        summary[await fetchOne(image, o)]++;
      } catch (err) {
        summary.failed.push({ path: image.path, reason: (err as Error).message });
      }
      done++;
      o.onProgress?.(done, images.length, image.path);
    }
  };
  const workers = Math.max(1, Math.min(o.concurrency, images.length));
  await Promise.all(Array.from({ length: workers }, worker));
  summary.failed.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return summary;
}

type Settings = Required<Omit<FetchOptions, "onProgress">>;

/** One image: skip it if already right, otherwise download, verify, then move into place. */
async function fetchOne(image: ManifestImage, o: Settings): Promise<"downloaded" | "skipped"> {
  const target = localPath(o.outDir, image.path);
  const existing = await readFile(target).catch(() => undefined);
  if (existing && sha256Hex(existing) === image.sha256) return "skipped";
  // Wrong bytes under the final name would be read as data: remove them now, the good copy replaces them.
  if (existing) await rm(target, { force: true });

  // The temporary name carries our pid so a later run can tell a dead run's leftovers from a live one's.
  const part = `${target}.part-${process.pid}`;
  try {
    await downloadVerified(fileUrl(o.baseUrl, image.path), image.sha256, part, o);
    await rename(part, target);
  } finally {
    await rm(part, { force: true });
  }
  return "downloaded";
}

/** Thrown for answers that will not change on a retry (404, 403, too large, ...). */
class PermanentError extends Error {}

/** Download into `part` with retries; resolves only once its SHA-256 matches. */
async function downloadVerified(url: string, sha256: string, part: string, o: Settings): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      const got = await downloadOnce(url, part, o);
      // Bad bytes are retried too: a proxy or a cut transfer can corrupt one attempt only.
      if (got.sha256 !== sha256) throw new Error(`sha256 mismatch: expected ${sha256.slice(0, 12)}..., got ${got.sha256.slice(0, 12)}... (${got.bytes} bytes)`);
      return;
    } catch (err) {
      const message = (err as Error).message;
      if (err instanceof PermanentError) throw err;
      if (attempt >= o.retries) throw new Error(attempt > 0 ? `${message} (after ${attempt + 1} attempts)` : message);
      // Exponential backoff with jitter, so that many workers do not retry in lockstep.
      await sleep(o.retryDelayMs * 2 ** attempt * (0.5 + Math.random()));
    }
  }
}

/** One attempt, streamed to disk and never more than maxBytes of it (memory stays flat whatever the server sends). */
async function downloadOnce(url: string, part: string, o: Settings): Promise<{ sha256: string; bytes: number }> {
  const signal = AbortSignal.timeout(o.timeoutMs);
  let res: Response;
  try {
    res = await fetch(url, { signal });
  } catch (err) {
    throw new Error(networkReason(err, o.timeoutMs));
  }
  if (!res.ok || !res.body) {
    await res.body?.cancel().catch(() => {});
    const message = `HTTP ${res.status}${res.statusText ? " " + res.statusText : ""}`;
    const transient = res.status >= 500 || res.status === 408 || res.status === 429;
    throw transient ? new Error(message) : new PermanentError(message);
  }
  const tooLarge = (what: string) => new PermanentError(`${what}, more than the ${formatBytes(o.maxBytes)} allowed for one image (--max-mb)`);
  const declared = Number(res.headers.get("content-length") ?? NaN);
  if (declared > o.maxBytes) {
    await res.body.cancel().catch(() => {});
    throw tooLarge(`the server announces ${formatBytes(declared)}`);
  }
  // The folder only now: a failed request leaves no empty class folders behind.
  await mkdir(path.dirname(part), { recursive: true });
  try {
    return await saveBody(Readable.fromWeb(res.body as ReadableStream<Uint8Array>), part, o.maxBytes);
  } catch (err) {
    if (err instanceof TooLargeError) throw tooLarge("the answer runs on");
    if ((err as NodeJS.ErrnoException).syscall) throw err; // the disk's error (ENOSPC, EACCES), not the network's
    throw new Error(`connection cut: ${networkReason(err, o.timeoutMs)}`);
  }
}

/** Each path once; a path listed twice with different hashes can never be satisfied. */
function uniqueImages(list: readonly ManifestImage[]): { images: ManifestImage[]; duplicates: FetchFailure[] } {
  const seen = new Map<string, ManifestImage>();
  const duplicates: FetchFailure[] = [];
  for (const image of list) {
    const first = seen.get(image.path);
    if (!first) seen.set(image.path, image);
    else if (first.sha256 !== image.sha256)
      duplicates.push({ path: image.path, reason: "listed twice with different sha256 in the manifest" });
  }
  return { images: [...seen.values()], duplicates };
}

/**
 * Remove `<file>.part-<pid>` leftovers of interrupted runs, for files of this manifest.
 * Temp files of a process that is still running (a parallel fetch) are left alone.
 */
async function removeStaleParts(outDir: string, images: readonly ManifestImage[]): Promise<void> {
  const targets = new Set(images.map((image) => localPath(outDir, image.path)));
  const dirs = new Set([...targets].map((file) => path.dirname(file)));
  for (const dir of dirs) {
    const entries = await readdir(dir).catch(() => [] as string[]);
    for (const entry of entries) {
      const m = /^(.*)\.part-(\d+)$/.exec(entry);
      if (m && targets.has(path.join(dir, m[1])) && !processAlive(Number(m[2]))) await rm(path.join(dir, entry), { force: true });
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
