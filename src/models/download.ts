// Download pretrained weights as .safetensors. Only ever called by the weights:fetch command:
// nothing is downloaded when a module is imported.
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, rename, rm, stat } from "node:fs/promises";
import path from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ReadableStream } from "node:stream/web";
import { readSafetensorsHeader } from "./safetensors.ts";

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
  /** Expected SHA-256 (hex). Default: the pinned value when downloading from the default URL. */
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
 * Download to a temporary file next to the target, hash it on the way, check the hash and
 * that it parses as safetensors, then rename it into place: an interrupted or corrupt
 * download never leaves a file under the final name.
 */
export async function downloadWeights(opts: DownloadOptions): Promise<DownloadResult> {
  const source = WEIGHT_SOURCES[opts.model];
  if (!source) throw new Error(`unknown model "${opts.model}" (${Object.keys(WEIGHT_SOURCES).join(", ")})`);
  const url = opts.url ?? source.url;
  const expected = opts.sha256 ?? (opts.url === undefined ? source.sha256 : undefined);
  const log = opts.log ?? (() => {});
  const file = path.join(opts.out, `${opts.model}.safetensors`);
  await mkdir(opts.out, { recursive: true });

  const existing = await stat(file).catch(() => undefined);
  if (existing && !opts.force) {
    const sha256 = await sha256OfFile(file);
    checkHash(sha256, expected, `${file} (already there; --force downloads it again)`);
    return { file, sha256, bytes: existing.size, downloaded: false, verified: expected !== undefined };
  }

  const tmp = `${file}.part-${process.pid}`;
  try {
    log(`downloading ${url}`);
    const response = await fetch(url, { redirect: "follow" });
    if (!response.ok || !response.body) throw new Error(`GET ${url}: HTTP ${response.status} ${response.statusText}`);
    const hash = createHash("sha256");
    let bytes = 0;
    await pipeline(
      Readable.fromWeb(response.body as ReadableStream<Uint8Array>),
      async function* (chunks: AsyncIterable<Uint8Array>) {
        for await (const chunk of chunks) {
          hash.update(chunk);
          bytes += chunk.length;
          yield chunk;
        }
      },
      createWriteStream(tmp),
    );
    const sha256 = hash.digest("hex");
    checkHash(sha256, expected, url);
    const tensors = await readSafetensorsHeader(tmp);
    await rename(tmp, file);
    log(`wrote ${file}: ${bytes} bytes, ${tensors.size} tensors`);
    return { file, sha256, bytes, downloaded: true, verified: expected !== undefined };
  } finally {
    await rm(tmp, { force: true });
  }
}
