// The three convolution products of conv-gemm.ts, split across the kernel pool's threads
// (thread-pool.ts). Same bands, same products as the single-thread code; each band's im2col,
// product and col2im is one job that every thread takes a part of (kernel-jobs.ts), so the
// results are bit-identical to one thread's.
//
// The arena holds the operands side by side: the inputs are copied in (tfjs's arrays are not
// shared memory), the output copied out into a fresh array for tfjs to own.
import { activePool } from "./thread-pool.ts";
import { writeCol2imJob, writeGemmJob, writeIm2colJob, type ArenaGemm } from "./kernel-jobs.ts";
import { bandRows, isPointwise, outputPixels, patchSize, type ConvGeometry } from "./im2col.ts";

type ActivePool = NonNullable<ReturnType<typeof activePool>>;

/**
 * Below this many multiply-adds a product stays on one thread: waking the others and copying the
 * operands into the arena costs more than the split saves. Measured with the bench's --parts threads
 * on 2 cores (VGG19, 32 px): at width 1/8, batch 16 (the classroom) forward and filter gradient gain
 * 1.4-1.7x from 9M multiply-adds on and lose below about 3M; the input gradient gained nothing up to
 * 9M (0.8-1.0x), and 1.2-1.65x from 150M on (width 1, batch 4). That was before col2im split by
 * images (kernel-jobs.ts), when it split 8 channels in two; its bar was not measured again since.
 */
const DEFAULT_MIN_THREADED_MACS = { forward: 4 << 20, filter: 4 << 20, input: 32 << 20 };
export type ConvProduct = keyof typeof DEFAULT_MIN_THREADED_MACS;
let MIN_THREADED_MACS = { ...DEFAULT_MIN_THREADED_MACS };

/** Change the sizes from which each product is threaded (tests thread small ones); no argument: the defaults. */
export function setMinThreadedMacs(min: Partial<Record<ConvProduct, number>> = DEFAULT_MIN_THREADED_MACS): void {
  MIN_THREADED_MACS = { ...DEFAULT_MIN_THREADED_MACS, ...min };
}

/** Nor above this arena size (floats, 1 GiB): at 224 px, batch 32 the first layers stay on one thread. */
const MAX_ARENA_FLOATS = 1 << 28;

/** The pool if this product of the convolution should use it, with an arena large enough for any of the three. */
export function poolFor(g: ConvGeometry, product: ConvProduct): ActivePool | undefined {
  const pool = activePool();
  if (!pool || outputPixels(g) * patchSize(g) * g.outChannels < MIN_THREADED_MACS[product]) return undefined;
  // Input, output, filter and one im2col band: what each product lays out (offsets() below).
  const inputs = g.batch * g.inHeight * g.inWidth * g.inChannels + outputPixels(g) * g.outChannels + patchSize(g) * g.outChannels;
  const floats = inputs + bandRows(g) * patchSize(g);
  if (floats > MAX_ARENA_FLOATS) return undefined;
  try {
    pool.arena(floats);
  } catch {
    return undefined; // no memory for a larger arena: one thread, on tfjs's own arrays
  }
  return pool;
}

/** What all three products need to know: rows and width of the im2col matrix, rows per band (0: no im2col). */
function sizes(g: ConvGeometry) {
  const pointwise = isPointwise(g);
  return { pixels: outputPixels(g), patch: patchSize(g), co: g.outChannels, pointwise, band: pointwise ? 0 : bandRows(g) };
}

const rowMajor = (at: number, cols: number) => ({ at, rowStride: cols, colStride: 1 });
const transposed = (at: number, cols: number) => ({ at, rowStride: 1, colStride: cols });

function gemm(pool: ActivePool, product: ArenaGemm): void {
  pool.run((job) => writeGemmJob(job, product));
}

export function pooledForward(pool: ActivePool, x: Float32Array, w: Float32Array, g: ConvGeometry): Float32Array {
  const { pixels, patch, co, pointwise, band } = sizes(g);
  const [X, W, Y, COLS] = offsets([x.length, w.length, pixels * co]);
  const arena = pool.arena(COLS + band * patch);
  arena.set(x, X);
  arena.set(w, W);
  // Each product writes its band of Y whole (zeroC): nothing to clear beforehand.
  if (pointwise) {
    gemm(pool, { m: pixels, n: co, k: patch, a: rowMajor(X, patch), b: rowMajor(W, co), c: { at: Y, rowStride: co }, zeroC: true });
  } else {
    for (let r0 = 0; r0 < pixels; r0 += band) {
      const rows = Math.min(band, pixels - r0);
      pool.run((job) => writeIm2colJob(job, g, X, r0, rows, COLS));
      gemm(pool, { m: rows, n: co, k: patch, a: rowMajor(COLS, patch), b: rowMajor(W, co), c: { at: Y + r0 * co, rowStride: co }, zeroC: true });
    }
  }
  return arena.slice(Y, Y + pixels * co);
}

export function pooledFilterGrad(pool: ActivePool, x: Float32Array, dy: Float32Array, g: ConvGeometry): Float32Array {
  const { pixels, patch, co, pointwise, band } = sizes(g);
  const [X, DY, DW, COLS] = offsets([x.length, dy.length, patch * co]);
  const arena = pool.arena(COLS + band * patch);
  arena.set(x, X);
  arena.set(dy, DY);
  // The first band's product clears dW (zeroC); the others add to it.
  if (pointwise) {
    gemm(pool, { m: patch, n: co, k: pixels, a: transposed(X, patch), b: rowMajor(DY, co), c: { at: DW, rowStride: co }, zeroC: true });
  } else {
    for (let r0 = 0; r0 < pixels; r0 += band) {
      const rows = Math.min(band, pixels - r0);
      pool.run((job) => writeIm2colJob(job, g, X, r0, rows, COLS));
      gemm(pool, { m: patch, n: co, k: rows, a: transposed(COLS, patch), b: rowMajor(DY + r0 * co, co), c: { at: DW, rowStride: co }, zeroC: r0 === 0 });
    }
  }
  return arena.slice(DW, DW + patch * co);
}

export function pooledInputGrad(pool: ActivePool, dy: Float32Array, w: Float32Array, g: ConvGeometry): Float32Array {
  const { pixels, patch, co, pointwise, band } = sizes(g);
  const dxLength = g.batch * g.inHeight * g.inWidth * g.inChannels;
  const [DY, W, DX, COLS] = offsets([dy.length, w.length, dxLength]);
  const arena = pool.arena(COLS + band * patch);
  arena.set(dy, DY);
  arena.set(w, W);
  if (pointwise) {
    gemm(pool, { m: pixels, n: patch, k: co, a: rowMajor(DY, co), b: transposed(W, co), c: { at: DX, rowStride: patch }, zeroC: true });
  } else {
    arena.fill(0, DX, DX + dxLength); // col2im adds every band into it
    for (let r0 = 0; r0 < pixels; r0 += band) {
      const rows = Math.min(band, pixels - r0);
      gemm(pool, { m: rows, n: patch, k: co, a: rowMajor(DY + r0 * co, co), b: transposed(W, co), c: { at: COLS, rowStride: patch }, zeroC: true });
      pool.run((job) => writeCol2imJob(job, g, COLS, r0, rows, DX));
    }
  }
  return arena.slice(DX, DX + dxLength);
}

/** Start offsets of regions of these lengths laid end to end, and where the next would start. */
function offsets(lengths: readonly number[]): number[] {
  const at = [0];
  for (const n of lengths) at.push(at[at.length - 1]! + n);
  return at;
}
