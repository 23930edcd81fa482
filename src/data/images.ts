// Image files to float32 NHWC batches: decode and resize with sharp, keep the resized pixels in
// a disk cache, flip some of them for augmentation, normalise with the ImageNet statistics.
// Plain typed arrays only (no tfjs): the training code turns a batch into a tensor with
// tf.tensor4d(batch.x, batch.shape).
import { readFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import sharp from "sharp";
import { makeRng, shuffled, subSeed } from "./rng.ts";
import { sha256Hex, writeFileAtomic } from "./files.ts";

/** ImageNet channel statistics (RGB), the ones the pretrained VGG/ResNet weights expect. */
export const IMAGENET_MEAN = [0.485, 0.456, 0.406] as const;
export const IMAGENET_STD = [0.229, 0.224, 0.225] as const;

export interface ImageItem {
  path: string;
  label: number;
  /** Lower-case hex SHA-256 of the file; when given, a cache hit never reads the file itself. */
  sha256?: string;
}

export interface Batch {
  /** n*size*size*3 floats, NHWC, RGB, normalised: (p/255 - mean) / std. */
  x: Float32Array;
  shape: [number, number, number, 3];
  labels: Int32Array;
  paths: string[];
}

export interface PixelOptions {
  /** Cache folder; default $FINALBN_CACHE, else .cache/pixels under the current directory. */
  cacheDir?: string;
  /** Called each time a file really is decoded (a cache miss); tests count calls with it. */
  onDecode?: (file: string) => void;
}

export interface BatchOptions extends PixelOptions {
  /** Width and height in pixels of every image in the batch. */
  size: number;
  batchSize: number;
  /** Shuffle the items with this seed; undefined keeps the given order. */
  shuffleSeed?: number;
  /** Mirror each image left-right with probability 1/2. */
  flip?: boolean;
  /** Seed for the flips; default derived from shuffleSeed (or 0). Vary it per epoch. */
  flipSeed?: number;
  /** Images decoded at the same time; default 2-4 depending on the cores. */
  concurrency?: number;
}

/** Where resized pixels are cached unless an option says otherwise. */
export function defaultCacheDir(): string {
  return path.resolve(process.env.FINALBN_CACHE || path.join(".cache", "pixels"));
}

/** Cache file for one image at one size: <cacheDir>/<size>/<sha[0:2]>/<sha>.rgb (raw RGB bytes). */
export function cachePath(cacheDir: string, sha256: string, size: number): string {
  return path.join(path.resolve(cacheDir), String(size), sha256.slice(0, 2), `${sha256}.rgb`);
}


/**
 * The most pixels an input image may declare. PlantVillage photos have 65 536 and camera photos
 * a few dozen million; a file declaring more is a decompression bomb (a few kilobytes that would
 * decode to gigabytes) and is refused from its header, before any decoding.
 */
export const MAX_IMAGE_PIXELS = 100_000_000;

/** sharp's input options for every decode: the pixel limit, and a truncated or corrupt file is an error, not grey pixels. */
const SHARP_INPUT = { limitInputPixels: MAX_IMAGE_PIXELS, failOn: "warning" } as const;

/**
 * Decode an image (PNG, JPEG, anything sharp reads) to size x size RGB bytes, row-major HWC.
 * EXIF rotation is applied and alpha is dropped. Non-square images are scaled to cover the
 * square and centre-cropped (no distortion); for square input this is a plain resize.
 */
export async function decodeImage(input: Uint8Array, size: number, name = "image"): Promise<Uint8Array> {
  try {
    return await decodePixels(input, size);
  } catch (err) {
    throw new Error(`cannot decode ${name}: ${await decodeFailure(input, err as Error)}`, { cause: err });
  }
}

/** Why these bytes would not decode for training (truncated, corrupt, too many pixels), or undefined when they do. */
export async function decodeProblem(input: Uint8Array): Promise<string | undefined> {
  // A small size reads every byte of the file all the same.
  return decodePixels(input, 32).then(
    () => undefined,
    (err: Error) => decodeFailure(input, err),
  );
}

async function decodePixels(input: Uint8Array, size: number): Promise<Uint8Array> {
  const { data, info } = await sharp(input, SHARP_INPUT)
    .rotate()
    .removeAlpha()
    .toColourspace("srgb")
    .resize(size, size, { fit: "cover", position: "centre" })
    .raw()
    .toBuffer({ resolveWithObject: true });
  if (info.channels !== 3 || data.length !== size * size * 3)
    throw new Error(`got ${info.width}x${info.height}x${info.channels}, expected ${size}x${size}x3`);
  return new Uint8Array(data.buffer, data.byteOffset, data.length);
}

/**
 * Why sharp refused an image, in words. The pixel limit's message does not say how big the image
 * claims to be; with decodes running side by side, libvips sometimes loses a warning's own text
 * (premature end of JPEG, ...) and only says that a warning was treated as an error.
 */
async function decodeFailure(input: Uint8Array, err: Error): Promise<string> {
  if (/warning treated as error/i.test(err.message)) return "corrupt or truncated image data";
  if (!/pixel limit/i.test(err.message)) return err.message;
  const { width, height } = await sharp(input, { limitInputPixels: false }).metadata().catch(() => ({ width: undefined, height: undefined }));
  const declared = width && height ? `${width}x${height} pixels` : "too many pixels";
  return `a decompression bomb: it declares ${declared}, more than the ${MAX_IMAGE_PIXELS / 1e6} million allowed`;
}

async function readSource(file: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new Error(`cannot read ${file}: ${e.code ?? e.message}`, { cause: err });
  }
}

/** A cache entry, or undefined when it is missing or has the wrong length (e.g. truncated). */
async function readCache(file: string, size: number): Promise<Uint8Array | undefined> {
  try {
    const bytes = await readFile(file);
    return bytes.length === size * size * 3 ? new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Resized RGB bytes of one file, from the cache when possible. The cache key is the file's
 * SHA-256 (given, or computed from the bytes) and the size, so renamed or copied files share
 * an entry and an edited file never gets stale pixels.
 */
export async function loadPixels(
  file: string,
  size: number,
  opts: PixelOptions & { sha256?: string } = {},
): Promise<Uint8Array> {
  checkSize(size);
  const cacheDir = opts.cacheDir ?? defaultCacheDir();
  let source: Buffer | undefined;
  let sha = opts.sha256?.toLowerCase();
  if (sha === undefined) {
    source = await readSource(file);
    sha = sha256Hex(source);
  }
  const entry = cachePath(cacheDir, sha, size);
  const cached = await readCache(entry, size);
  if (cached) return cached;

  if (source === undefined) {
    source = await readSource(file);
    // Never store pixels under a hash the file does not have: that would poison the cache.
    const actual = sha256Hex(source);
    if (actual !== sha) throw new Error(`sha256 mismatch for ${file}: expected ${sha}, file has ${actual}`);
  }
  opts.onDecode?.(file);
  const pixels = await decodeImage(source, size, file);
  await writeFileAtomic(entry, pixels);
  return pixels;
}

/** A left-right mirror image of size x size RGB bytes (a new array). */
export function flipHorizontal(pixels: Uint8Array, size: number): Uint8Array {
  const out = new Uint8Array(pixels.length);
  for (let r = 0; r < size; r++) {
    const row = r * size * 3;
    for (let c = 0; c < size; c++) {
      const from = row + c * 3;
      const to = row + (size - 1 - c) * 3;
      out[to] = pixels[from];
      out[to + 1] = pixels[from + 1];
      out[to + 2] = pixels[from + 2];
    }
  }
  return out;
}

// A byte value normalises to one of 256 floats per channel: look them up (much faster than dividing).
const NORMALISED = [0, 1, 2].map((c) => Float32Array.from({ length: 256 }, (_, p) => (p / 255 - IMAGENET_MEAN[c]) / IMAGENET_STD[c]));

/** Normalise RGB bytes into `out` starting at `offset`: x = (p/255 - mean) / std per channel. */
export function normalizeInto(pixels: Uint8Array, out: Float32Array, offset = 0): void {
  const [r, g, b] = NORMALISED;
  for (let i = 0; i < pixels.length; i += 3) {
    out[offset + i] = r[pixels[i]];
    out[offset + i + 1] = g[pixels[i + 1]];
    out[offset + i + 2] = b[pixels[i + 2]];
  }
}

export function normalize(pixels: Uint8Array): Float32Array {
  const out = new Float32Array(pixels.length);
  normalizeInto(pixels, out);
  return out;
}

/** Back to displayable RGB bytes (rounded, clamped to 0..255); length a multiple of 3. */
export function denormalize(x: Float32Array): Uint8Array {
  const out = new Uint8Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const c = i % 3;
    out[i] = Math.min(255, Math.max(0, Math.round((x[i] * IMAGENET_STD[c] + IMAGENET_MEAN[c]) * 255)));
  }
  return out;
}

export interface LoadedImage {
  /** size x size x 3 RGB bytes, for showing. */
  pixels: Uint8Array;
  /** The same image normalised, ready for tf.tensor4d(x, shape). */
  x: Float32Array;
  shape: [1, number, number, 3];
}

/** One image, e.g. a sample to show in a notebook or to classify on its own. */
export async function loadImage(
  file: string,
  size: number,
  opts: PixelOptions & { sha256?: string; flip?: boolean } = {},
): Promise<LoadedImage> {
  let pixels = await loadPixels(file, size, opts);
  if (opts.flip) pixels = flipHorizontal(pixels, size);
  return { pixels, x: normalize(pixels), shape: [1, size, size, 3] };
}

/**
 * Batches of normalised images for one pass over `items`. While the caller works on one batch
 * the next is decoded, and no more: memory stays at about two batches whatever the dataset.
 * The last batch may be smaller. Call again (with new seeds) for the next epoch.
 */
export async function* imageBatches(items: readonly ImageItem[], options: BatchOptions): AsyncGenerator<Batch> {
  const { size, batchSize } = options;
  checkSize(size);
  checkPositiveInteger("batchSize", batchSize);
  const concurrency = options.concurrency ?? Math.min(4, Math.max(2, os.availableParallelism()));
  checkPositiveInteger("concurrency", concurrency);
  const pixelOptions: PixelOptions = { cacheDir: options.cacheDir ?? defaultCacheDir(), onDecode: options.onDecode };

  const order = options.shuffleSeed === undefined ? items.slice() : shuffled(items, makeRng(options.shuffleSeed));
  // Decide every flip up front, in epoch order, so they do not depend on decode timing.
  const flipRng = makeRng(options.flipSeed ?? subSeed(options.shuffleSeed ?? 0, "flip"));
  const flips = order.map(() => (options.flip ? flipRng() < 0.5 : false));

  const load = (start: number): Promise<Batch> => {
    const end = Math.min(start + batchSize, order.length);
    return loadBatch(order.slice(start, end), flips.slice(start, end), { size, concurrency, ...pixelOptions });
  };
  let pending: Promise<Batch> | undefined = order.length > 0 ? load(0) : undefined;
  for (let start = 0; pending; start += batchSize) {
    const batch: Batch = await pending;
    pending = start + batchSize < order.length ? load(start + batchSize) : undefined;
    // If the caller stops early, a failure in the batch decoded ahead must not crash the process.
    pending?.catch(() => {});
    yield batch;
  }
}

async function loadBatch(
  items: ImageItem[],
  flips: boolean[],
  options: PixelOptions & { size: number; concurrency: number },
): Promise<Batch> {
  const { size, concurrency } = options;
  const pixelsPerImage = size * size * 3;
  const x = new Float32Array(items.length * pixelsPerImage);
  let next = 0;
  // A few workers take the next image until none are left; each writes into its own slot.
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      const item = items[i];
      let pixels: Uint8Array;
      try {
        pixels = await loadPixels(item.path, size, { ...options, sha256: item.sha256 });
      } catch (err) {
        next = items.length; // the batch has failed: the other workers stop taking images
        throw err;
      }
      if (flips[i]) pixels = flipHorizontal(pixels, size);
      normalizeInto(pixels, x, i * pixelsPerImage);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  return {
    x,
    shape: [items.length, size, size, 3],
    labels: Int32Array.from(items, (item) => item.label),
    paths: items.map((item) => item.path),
  };
}

function checkSize(size: number): void {
  checkPositiveInteger("size", size);
}

function checkPositiveInteger(name: string, value: number): void {
  if (!Number.isInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer, got ${value}`);
}
