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
 * Write im2col rows [firstRow, firstRow + rows) of input x into cols, row-major. With p0 and p1,
 * only the patch columns [p0, p1) of each row, p1 - p0 wide: a thread building the filter
 * gradient's rows [p0, p1) (thread-pool.ts) needs no others.
 */
export function im2colBand(
  x: Float32Array,
  g: ConvGeometry,
  firstRow: number,
  rows: number,
  cols: Float32Array,
  p0 = 0,
  p1 = patchSize(g),
  colsAt = 0,
): void {
  const { inHeight, inWidth, inChannels: ci, filterWidth } = g;
  const pixelsPerImage = g.outHeight * g.outWidth;
  let o = colsAt;
  for (let r = firstRow; r < firstRow + rows; r++) {
    const b = Math.floor(r / pixelsPerImage);
    const oy = Math.floor((r % pixelsPerImage) / g.outWidth);
    const ox = r % g.outWidth;
    const y0 = oy * g.strideHeight - g.padTop;
    const x0 = ox * g.strideWidth - g.padLeft;
    // Walk the columns tap by tap (kh, kw): each tap is a run of channels copied from one pixel.
    for (let p = p0; p < p1; ) {
      const tap = Math.floor(p / ci);
      const c0 = p - tap * ci;
      const c1 = Math.min(ci, c0 + (p1 - p));
      const iy = y0 + Math.floor(tap / filterWidth);
      const ix = x0 + (tap % filterWidth);
      if (iy >= 0 && iy < inHeight && ix >= 0 && ix < inWidth) {
        const src = ((b * inHeight + iy) * inWidth + ix) * ci;
        for (let c = c0; c < c1; c++) cols[o++] = x[src + c];
      } else {
        for (let c = c0; c < c1; c++) cols[o++] = 0;
      }
      p += c1 - c0;
    }
  }
}

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
  const { inHeight, inWidth, inChannels: ci, filterHeight, filterWidth } = g;
  const pixelsPerImage = g.outHeight * g.outWidth;
  const patch = patchSize(g);
  for (let r = firstRow, row = colsAt; r < firstRow + rows; r++, row += patch) {
    const b = Math.floor(r / pixelsPerImage);
    const oy = Math.floor((r % pixelsPerImage) / g.outWidth);
    const ox = r % g.outWidth;
    const y0 = oy * g.strideHeight - g.padTop;
    const x0 = ox * g.strideWidth - g.padLeft;
    for (let kh = 0; kh < filterHeight; kh++) {
      const iy = y0 + kh;
      if (iy < 0 || iy >= inHeight) continue;
      for (let kw = 0; kw < filterWidth; kw++) {
        const ix = x0 + kw;
        if (ix < 0 || ix >= inWidth) continue;
        const dst = dxAt + ((b * inHeight + iy) * inWidth + ix) * ci;
        const src = row + (kh * filterWidth + kw) * ci;
        for (let c = c0; c < c1; c++) dx[dst + c] += cols[src + c];
      }
    }
  }
}
