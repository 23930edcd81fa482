// The three convolution products (forward, input gradient, filter gradient) as matrix
// multiplications over im2col bands. Pure functions on Float32Arrays: NHWC activations,
// HWIO filters; the tfjs kernel glue lives in cpu/conv.ts.
//
// With X the im2col matrix (pixels x patch), W the filter as (patch x outChannels) and
// Y / dY the output as (pixels x outChannels):
//   forward          Y  = X · W
//   filter gradient  dW = Xᵀ · dY      (summed band by band)
//   input gradient   dX = col2im(dY · Wᵀ)
// (For stride 1, dX is also a forward convolution of dY with the filter turned 180°; measured,
// that is no faster here, so one path serves every stride.)
//
// With a thread pool (thread-pool.ts), each product large enough is split across the threads
// (conv-threads.ts), with bit-identical results.

import { gemm, type MatrixView } from "./gemm.ts";
import {
  bandRows,
  col2imBandAdd,
  im2colBand,
  isPointwise,
  outputPixels,
  patchSize,
  type ConvGeometry,
} from "./im2col.ts";
import { pooledFilterGrad, pooledForward, pooledInputGrad, poolFor } from "./conv-threads.ts";

/** A row-major matrix with `cols` columns, starting `firstRow` rows into data. */
function rowMajor(data: Float32Array, cols: number, firstRow = 0): MatrixView {
  return { data, offset: firstRow * cols, rowStride: cols, colStride: 1 };
}

/** The transpose of a row-major matrix with `cols` columns. */
function transposed(data: Float32Array, cols: number): MatrixView {
  return { data, offset: 0, rowStride: 1, colStride: cols };
}

// One reusable band buffer: kernels run one at a time, and 4 MB per call adds up.
let bandBuffer = new Float32Array(0);
function bandScratch(size: number): Float32Array {
  if (bandBuffer.length < size) bandBuffer = new Float32Array(size);
  return bandBuffer;
}

/** y[b, oy, ox, co] = sum over (kh, kw, ci) of x[b, oy*sh-pt+kh, ox*sw-pl+kw, ci] * w[kh, kw, ci, co]. */
export function conv2dForward(x: Float32Array, w: Float32Array, g: ConvGeometry): Float32Array {
  const pixels = outputPixels(g);
  const patch = patchSize(g);
  const co = g.outChannels;
  const pool = poolFor(g, "forward");
  if (pool) return pooledForward(pool, x, w, g);
  const y = new Float32Array(pixels * co);
  if (isPointwise(g)) {
    gemm({ m: pixels, n: co, k: patch, a: rowMajor(x, patch), b: rowMajor(w, co), c: rowMajor(y, co) });
    return y;
  }
  const band = bandRows(g);
  const cols = bandScratch(band * patch);
  for (let r0 = 0; r0 < pixels; r0 += band) {
    const rows = Math.min(band, pixels - r0);
    im2colBand(x, g, r0, rows, cols);
    gemm({ m: rows, n: co, k: patch, a: rowMajor(cols, patch), b: rowMajor(w, co), c: rowMajor(y, co, r0) });
  }
  return y;
}

/** dw[kh, kw, ci, co] = sum over pixels of x-patch[pixel, (kh, kw, ci)] * dy[pixel, co]. */
export function conv2dFilterGrad(x: Float32Array, dy: Float32Array, g: ConvGeometry): Float32Array {
  const pixels = outputPixels(g);
  const patch = patchSize(g);
  const co = g.outChannels;
  const pool = poolFor(g, "filter");
  if (pool) return pooledFilterGrad(pool, x, dy, g);
  const dw = new Float32Array(patch * co);
  if (isPointwise(g)) {
    gemm({ m: patch, n: co, k: pixels, a: transposed(x, patch), b: rowMajor(dy, co), c: rowMajor(dw, co) });
    return dw;
  }
  const band = bandRows(g);
  const cols = bandScratch(band * patch);
  for (let r0 = 0; r0 < pixels; r0 += band) {
    const rows = Math.min(band, pixels - r0);
    im2colBand(x, g, r0, rows, cols);
    gemm({ m: patch, n: co, k: rows, a: transposed(cols, patch), b: rowMajor(dy, co, r0), c: rowMajor(dw, co) });
  }
  return dw;
}

/** dx = the gradient of sum(dy * conv2dForward(x, w)) with respect to x. */
export function conv2dInputGrad(dy: Float32Array, w: Float32Array, g: ConvGeometry): Float32Array {
  const pixels = outputPixels(g);
  const patch = patchSize(g);
  const co = g.outChannels;
  const pool = poolFor(g, "input");
  if (pool) return pooledInputGrad(pool, dy, w, g);
  const dx = new Float32Array(g.batch * g.inHeight * g.inWidth * g.inChannels);
  if (isPointwise(g)) {
    gemm({ m: pixels, n: patch, k: co, a: rowMajor(dy, co), b: transposed(w, co), c: rowMajor(dx, patch) });
    return dx;
  }
  const band = bandRows(g);
  const cols = bandScratch(band * patch);
  for (let r0 = 0; r0 < pixels; r0 += band) {
    const rows = Math.min(band, pixels - r0);
    cols.fill(0, 0, rows * patch);
    gemm({ m: rows, n: patch, k: co, a: rowMajor(dy, co, r0), b: transposed(w, co), c: rowMajor(cols, patch) });
    col2imBandAdd(cols, g, r0, rows, dx);
  }
  return dx;
}

