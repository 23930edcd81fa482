// The pieces of a convolution that threads share (thread-pool.ts), as plain integer records: the
// main thread writes one into shared memory, every thread (the main one included) runs its part of
// it on the shared arena. Each kind splits so that threads write disjoint outputs and every output
// element gets its terms in the single-thread order: results are bit-identical for any count.
//   gemm    C += A · B, split by rows or columns of C (gemm.ts gemmPart)
//   im2col  rows [firstRow, firstRow + rows) of the im2col matrix, split by rows
//   col2im  the same rows added back onto dx, split by images (or by input channels, when fewer images than threads)
import { gemmPart, microKernelKind, useMicroKernel } from "./gemm.ts";
import { col2imBandAdd, im2colBand, patchSize, type ConvGeometry } from "./im2col.ts";
import type { MicroKernelKind } from "./microkernel.ts";

export const JOB_INTS = 32;
// The last word names the micro-kernel the main thread uses: all threads use the same one, or a
// split product would mix fused and unfused rounding.
const KIND_WORD = JOB_INTS - 1;
const KINDS: readonly MicroKernelKind[] = ["wasm-fma", "wasm-simd", "js"];

/** Note the caller's micro-kernel in the job, for the workers to follow. */
export function stampMicroKernel(job: Int32Array): void {
  job[KIND_WORD] = KINDS.indexOf(microKernelKind());
}
const GEMM = 1;
const IM2COL = 2;
const COL2IM = 3;

/** Arena float offsets and strides of one product C (m x n) += A (m x k) · B (k x n). */
export interface ArenaGemm {
  m: number;
  n: number;
  k: number;
  a: { at: number; rowStride: number; colStride: number };
  b: { at: number; rowStride: number; colStride: number };
  c: { at: number; rowStride: number };
  /** Clear C first (each thread its own part): C = A · B. */
  zeroC?: boolean;
}

const GEOMETRY_KEYS = [
  "batch", "inHeight", "inWidth", "inChannels", "outHeight", "outWidth", "outChannels",
  "filterHeight", "filterWidth", "strideHeight", "strideWidth", "padTop", "padLeft",
] as const satisfies readonly (keyof ConvGeometry)[];
const G = GEOMETRY_KEYS.length; // the geometry sits at job[1 .. G]

export function writeGemmJob(job: Int32Array, p: ArenaGemm): void {
  job.set([GEMM, p.m, p.n, p.k, p.a.at, p.a.rowStride, p.a.colStride, p.b.at, p.b.rowStride, p.b.colStride, p.c.at, p.c.rowStride, p.zeroC ? 1 : 0]);
}

/** im2col rows [firstRow, firstRow + rows) of x (at xAt) into cols (at colsAt, patch wide). */
export function writeIm2colJob(job: Int32Array, g: ConvGeometry, xAt: number, firstRow: number, rows: number, colsAt: number): void {
  job[0] = IM2COL;
  GEOMETRY_KEYS.forEach((key, i) => (job[1 + i] = g[key]));
  job.set([xAt, firstRow, rows, colsAt], 1 + G);
}

/** Add cols (at colsAt: rows [firstRow, firstRow + rows)) back onto dx (at dxAt). */
export function writeCol2imJob(job: Int32Array, g: ConvGeometry, colsAt: number, firstRow: number, rows: number, dxAt: number): void {
  job[0] = COL2IM;
  GEOMETRY_KEYS.forEach((key, i) => (job[1 + i] = g[key]));
  job.set([colsAt, firstRow, rows, dxAt], 1 + G);
}

function readGeometry(job: Int32Array): ConvGeometry {
  const g = {} as ConvGeometry;
  GEOMETRY_KEYS.forEach((key, i) => (g[key] = job[1 + i]!));
  return g;
}

/** [start, end) of part `part` when `count` items are cut into `parts` nearly equal runs. */
export function share(count: number, part: number, parts: number): [number, number] {
  return [Math.floor((count * part) / parts), Math.floor((count * (part + 1)) / parts)];
}

/** Run thread `part`'s share of the job in `job` on the arena. */
export function runJobPart(job: Int32Array, arena: Float32Array, part: number, parts: number): void {
  const microKernel = KINDS[job[KIND_WORD]!]!;
  if (microKernelKind() !== microKernel) useMicroKernel(microKernel);
  const kind = job[0];
  if (kind === GEMM) {
    const [m, n, k, aAt, aRow, aCol, bAt, bRow, bCol, cAt, cRow, zeroC] = job.subarray(1, 13);
    gemmPart(
      {
        m: m!, n: n!, k: k!,
        a: { data: arena, offset: aAt!, rowStride: aRow!, colStride: aCol! },
        b: { data: arena, offset: bAt!, rowStride: bRow!, colStride: bCol! },
        c: { data: arena, offset: cAt!, rowStride: cRow! },
      },
      part,
      parts,
      { zeroC: zeroC === 1 },
    );
  } else if (kind === IM2COL) {
    const g = readGeometry(job);
    const [xAt, firstRow, rows, colsAt] = job.subarray(1 + G, 5 + G);
    const [r0, r1] = share(rows!, part, parts);
    // The arena from xAt on is x, with the input's index 0 at xAt.
    im2colBand(arena.subarray(xAt!), g, firstRow! + r0, r1 - r0, arena, colsAt! + r0 * patchSize(g));
  } else if (kind === COL2IM) {
    const g = readGeometry(job);
    const [colsAt, firstRow, rows, dxAt] = job.subarray(1 + G, 5 + G);
    // Rows of different images never add to the same pixel of dx: with an image or more per
    // thread, each takes whole images (all channels: col2im's fast runs); else each a channel range.
    const perImage = g.outHeight * g.outWidth;
    const firstImage = Math.floor(firstRow! / perImage);
    const images = Math.floor((firstRow! + rows! - 1) / perImage) - firstImage + 1;
    if (images >= parts) {
      const [i0, i1] = share(images, part, parts);
      const r0 = Math.max(firstRow!, (firstImage + i0) * perImage);
      const r1 = Math.min(firstRow! + rows!, (firstImage + i1) * perImage);
      if (r1 > r0) col2imBandAdd(arena, g, r0, r1 - r0, arena, 0, g.inChannels, colsAt! + (r0 - firstRow!) * patchSize(g), dxAt!);
    } else {
      const [c0, c1] = share(g.inChannels, part, parts);
      if (c1 > c0) col2imBandAdd(arena, g, firstRow!, rows!, arena, c0, c1, colsAt!, dxAt!);
    }
  } else {
    throw new Error(`kernel-jobs: unknown job kind ${kind}`);
  }
}
