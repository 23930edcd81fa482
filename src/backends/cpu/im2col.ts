// im2col and col2im for NHWC convolutions, one band of output pixels at a time.
//
// A convolution is a matrix product once every output pixel's receptive field is laid out as
// one row ("im2col"): row r = (image b, output row oy, output column ox) holds
// x[b, oy*sh - padTop + kh, ox*sw - padLeft + kw, ci] for all (kh, kw, ci) in that order,
// which is exactly the row order of an HWIO filter reshaped to (kh*kw*ci) x co. Zeros
// stand in for taps that fall into the padding. Doing this for a band of rows at a time
// keeps memory bounded however large the batch is.

import type { ConvGeometry } from "../conv-geometry.ts";

export type { ConvGeometry };

/** Output pixels over the whole batch: the rows of the im2col matrix. */
export function outputPixels(g: ConvGeometry): number {
  return g.batch * g.outHeight * g.outWidth;
}

/** Length of one im2col row: filter taps times input channels. */
export function patchSize(g: ConvGeometry): number {
  return g.filterHeight * g.filterWidth * g.inChannels;
}

/** True when im2col would be the identity: a 1x1 filter, stride 1, no padding. */
export function isPointwise(g: ConvGeometry): boolean {
  return (
    g.filterHeight === 1 && g.filterWidth === 1 && g.strideHeight === 1 && g.strideWidth === 1 &&
    g.padTop === 0 && g.padLeft === 0 && g.outHeight === g.inHeight && g.outWidth === g.inWidth
  );
}

/** How many im2col rows to build per band: about 4 MB of float32, and at least 16 rows. */
export function bandRows(g: ConvGeometry, budgetFloats = 1 << 20): number {
  return Math.max(16, Math.min(outputPixels(g), Math.floor(budgetFloats / patchSize(g))));
}

/**
 * Write im2col rows [firstRow, firstRow + rows) of input x into cols, row-major, starting at colsAt.
 * Within a row, the taps of one filter row (kh) read filterWidth neighbouring pixels, which lie side
 * by side in x: away from the left and right edges each filter row is one run of
 * filterWidth x inChannels floats, copied natively when long (the cost here is per run, not per
 * float, for the first layers' 3 to 16 channels).
 */
export function im2colBand(x: Float32Array, g: ConvGeometry, firstRow: number, rows: number, cols: Float32Array, colsAt = 0): void {
  const { inHeight, inWidth, inChannels: ci, filterHeight, filterWidth, outHeight, outWidth } = g;
  const run = filterWidth * ci;
  let o = colsAt;
  // The output pixel (b, oy, ox) of row firstRow, then stepped along.
  let b = Math.floor(firstRow / (outHeight * outWidth));
  let oy = Math.floor((firstRow - b * outHeight * outWidth) / outWidth);
  let ox = firstRow - (b * outHeight + oy) * outWidth;
  for (let r = 0; r < rows; r++) {
    const y0 = oy * g.strideHeight - g.padTop;
    const x0 = ox * g.strideWidth - g.padLeft;
    const inside = x0 >= 0 && x0 + filterWidth <= inWidth;
    for (let kh = 0; kh < filterHeight; kh++) {
      const iy = y0 + kh;
      if (iy < 0 || iy >= inHeight) {
        for (let j = 0; j < run; j++) cols[o + j] = 0;
        o += run;
        continue;
      }
      const pixelRow = (b * inHeight + iy) * inWidth;
      if (inside) {
        const src = (pixelRow + x0) * ci;
        if (run >= NATIVE_RUN) cols.set(x.subarray(src, src + run), o);
        else for (let j = 0; j < run; j++) cols[o + j] = x[src + j]!;
        o += run;
        continue;
      }
      for (let kw = 0; kw < filterWidth; kw++) {
        const ix = x0 + kw;
        if (ix < 0 || ix >= inWidth) {
          for (let c = 0; c < ci; c++) cols[o + c] = 0;
        } else {
          const src = (pixelRow + ix) * ci;
          for (let c = 0; c < ci; c++) cols[o + c] = x[src + c]!;
        }
        o += ci;
      }
    }
    if (++ox === outWidth) {
      ox = 0;
      if (++oy === outHeight) (oy = 0), b++;
    }
  }
}

/** From this many floats on, a run is copied by subarray() and set(); shorter ones by a loop. */
const NATIVE_RUN = 64;

/**
 * The reverse of im2colBand: add each entry of cols back onto the input pixel it came from. With
 * c0 and c1, only input channels [c0, c1): threads given disjoint channel ranges write disjoint
 * parts of dx, and each element still gets its terms in the same order.
 */
export function col2imBandAdd(
  cols: Float32Array,
  g: ConvGeometry,
  firstRow: number,
  rows: number,
  dx: Float32Array,
  c0 = 0,
  c1 = g.inChannels,
  colsAt = 0,
  dxAt = 0,
): void {
  const { inHeight, inWidth, inChannels: ci, filterHeight, filterWidth, outHeight, outWidth } = g;
  const patch = patchSize(g);
  // All channels, away from the left and right edges: a filter row's taps are one run, as in im2colBand.
  const run = c0 === 0 && c1 === ci ? filterWidth * ci : 0;
  let b = Math.floor(firstRow / (outHeight * outWidth));
  let oy = Math.floor((firstRow - b * outHeight * outWidth) / outWidth);
  let ox = firstRow - (b * outHeight + oy) * outWidth;
  for (let r = 0, row = colsAt; r < rows; r++, row += patch) {
    const y0 = oy * g.strideHeight - g.padTop;
    const x0 = ox * g.strideWidth - g.padLeft;
    const inside = run > 0 && x0 >= 0 && x0 + filterWidth <= inWidth;
    for (let kh = 0; kh < filterHeight; kh++) {
      const iy = y0 + kh;
      if (iy < 0 || iy >= inHeight) continue;
      const pixelRow = (b * inHeight + iy) * inWidth;
      if (inside) {
        const dst = dxAt + (pixelRow + x0) * ci;
        const src = row + kh * run;
        for (let j = 0; j < run; j++) dx[dst + j]! += cols[src + j]!;
        continue;
      }
      for (let kw = 0; kw < filterWidth; kw++) {
        const ix = x0 + kw;
        if (ix < 0 || ix >= inWidth) continue;
        const dst = dxAt + (pixelRow + ix) * ci;
        const src = row + (kh * filterWidth + kw) * ci;
        for (let c = c0; c < c1; c++) dx[dst + c]! += cols[src + c]!;
      }
    }
    if (++ox === outWidth) {
      ox = 0;
      if (++oy === outHeight) (oy = 0), b++;
    }
  }
}
