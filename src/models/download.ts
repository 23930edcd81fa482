// Download pretrained weights as .safetensors. Only ever called by the weights:fetch command:
// nothing is downloaded when a module is imported.
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, rename, rm, rmdir, stat } from "node:fs/promises";
import path from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ReadableStream } from "node:stream/web";
import { readSafetensorsHeader } from "./safetensors.ts";
import { networkReason, saveBody } from "../data/net.ts";

/**
 * Where the torchvision ImageNet weights are published as safetensors: timm's copies on
 * Hugging Face ("tv_in1k" = the original torchvision weights). The ResNet copy uses
 * torchvision's names; the VGG copies rename the classifier (pre_logits.fc1/fc2, head.fc),
 * which loadTorchvisionWeights() maps back. The SHA-256 values are those Hugging Face shows
 * for these files (Git LFS details); we could not download them to check, and we have none
 * for resnet34, whose hash is printed after download so it can be passed as --sha256.
 */
export const WEIGHT_SOURCES: Record<string, { url: string; sha256?: string }> = {
  vgg19: {
    url: "https://huggingface.co/timm/vgg19.tv_in1k/resolve/main/model.safetensors",
    sha256: "11aea017b543ff59233749d8f1cf544cda749378f5790d2fedab841fb86b7669",
  },
  vgg19_bn: {
    url: "https://huggingface.co/timm/vgg19_bn.tv_in1k/resolve/main/model.safetensors",
    sha256: "f8249087e63bae61c6166bb23d7c26efe1b2a43fd9fb5cd60ac6ce00535ba312",
  },
  resnet34: {
    url: "https://huggingface.co/timm/resnet34.tv_in1k/resolve/main/model.safetensors",
  },
};

export interface DownloadOptions {
  model: string;
  /** Folder for <model>.safetensors. */
  out: string;
  /** Download from here instead of WEIGHT_SOURCES[model].url. */
  url?: string;
  /** Take this local file (downloaded elsewhere) instead of downloading. */
  from?: string;
  /** Expected SHA-256 (hex). Default: the pinned value for the default URL (and for --from, a copy of it). */
  sha256?: string;
  /** Download again even if the file is there. */
  force?: boolean;
  log?: (line: string) => void;
}

export interface DownloadResult {
  file: string;
  sha256: string;
  bytes: number;
  /** False when the file was already there. */
  downloaded: boolean;
  /** Whether the hash was compared with an expected one. */
  verified: boolean;
}

async function sha256OfFile(file: string): Promise<string> {
  const hash = createHash("sha256");
  await pipeline(createReadStream(file), hash);
  return hash.digest("hex");
}

function checkHash(actual: string, expected: string | undefined, what: string): void {
  if (expected && actual !== expected.toLowerCase()) {
    throw new Error(`${what}: SHA-256 is ${actual}, expected ${expected.toLowerCase()}`);
  }
}

/**
 * Download (or copy --from) to a temporary file next to the target, hash it on the way, check the
 * hash and that it parses as safetensors, then rename it into place: an interrupted, failed or
 * corrupt download leaves neither a file under the final name nor a folder it created.
 */
export async function downloadWeights(opts: DownloadOptions): Promise<DownloadResult> {
  const source = WEIGHT_SOURCES[opts.model];
  if (!source) throw new Error(`unknown model "${opts.model}" (${Object.keys(WEIGHT_SOURCES).join(", ")})`);
  const url = opts.url ?? source.url;
  const expected = opts.sha256 ?? (opts.url === undefined ? source.sha256 : undefined);
  const log = opts.log ?? (() => {});
  const file = path.join(opts.out, `${opts.model}.safetensors`);

  const existing = await stat(file).catch(() => undefined);
  if (existing && !opts.force) {
    const sha256 = await sha256OfFile(file);
    checkHash(sha256, expected, `${file} (already there; --force downloads it again)`);
    return { file, sha256, bytes: existing.size, downloaded: false, verified: expected !== undefined };
  }

  // Open the source first: when the network is down, no folder has been made yet.
  log(opts.from ? `copying ${opts.from}` : `downloading ${url}`);
  const body = opts.from ? createReadStream(opts.from) : await openDownload(url, opts.model);
  const created = await mkdir(opts.out, { recursive: true });
  const tmp = `${file}.part-${process.pid}`;
  let done = false;
  try {
    const { sha256, bytes } = await saveBody(body, tmp).catch((err: Error) => {
      throw new Error(opts.from ? `cannot read ${opts.from}: ${err.message}` : `download of ${url} cut off: ${networkReason(err)}; run the command again`);
    });
    checkHash(sha256, expected, opts.from ?? url);
    const tensors = await readSafetensorsHeader(tmp);
    await rename(tmp, file);
    done = true;
    log(`wrote ${file}: ${bytes} bytes, ${tensors.size} tensors`);
    return { file, sha256, bytes, downloaded: true, verified: expected !== undefined };
  } finally {
    await rm(tmp, { force: true });
    if (!done && created) await removeEmptyFolders(opts.out, created);
  }
}

/** The response body of a GET, or an error that names the host, the cause and the way round it. */
async function openDownload(url: string, model: string): Promise<Readable> {
  const host = new URL(url).host;
  const elsewhere = `download ${url} elsewhere and pass the file with --from FILE`;
  let response: Response;
  try {
    response = await fetch(url, { redirect: "follow" });
  } catch (err) {
    throw new Error(`cannot download the ${model} weights from ${host}: ${networkReason(err)}. If this machine cannot reach ${host}, ${elsewhere}`);
  }
  if (!response.ok || !response.body) {
    await response.body?.cancel().catch(() => {});
    throw new Error(`GET ${url}: HTTP ${response.status} ${response.statusText}. If it works in a browser, ${elsewhere}`);
  }
  return Readable.fromWeb(response.body as ReadableStream<Uint8Array>);
}

/** Undo `mkdir -p`: remove the folders from `dir` up to `top` (the first one it made) while they are empty. */
async function removeEmptyFolders(dir: string, top: string): Promise<void> {
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    if (!(await rmdir(d).then(() => true, () => false))) return; // not empty (or gone): stop
    if (d === path.resolve(top)) return;
  }
}
