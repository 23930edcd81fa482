// The gradient of a 2-D max pool (NHWC, float32): each window's output gradient goes to the
// input position that held the window's maximum.
//
// tfjs's stock cpu MaxPoolGrad first records every window's argmax in a TensorBuffer, then,
// for every input element, walks every window that could contain it (buffer.get per step).
// Here we scan each window once, all channels side by side (contiguous in NHWC), and add the
// window's gradient at its argmax.
//
// Same rules as the stock kernel (tfjs-backend-cpu utils/pool_utils.ts maxPoolPositions):
// - a window scans its in-bounds positions row by row, and only a strictly greater value
//   replaces the best one, so on ties the first position wins; NaN never wins;
// - a window whose values are all -Infinity (or NaN) passes no gradient on;
// - where windows overlap (a 3x3 window, stride 2), an input element's contributions are added
//   in double in window order and rounded to float32 once.

export interface PoolGeometry {
  batch: number;
  inHeight: number;
  inWidth: number;
  channels: number;
  outHeight: number;
  outWidth: number;
  filterHeight: number;
  filterWidth: number;
  strideHeight: number;
  strideWidth: number;
  padTop: number;
  padLeft: number;
}

/** dx for x (the pool's input) and dy (the gradient of its output). */
export function maxPoolGrad(x: Float32Array, dy: Float32Array, g: PoolGeometry): Float32Array {
  const C = g.channels;
  const overlapping = g.filterHeight > g.strideHeight || g.filterWidth > g.strideWidth;
  // Without overlap every dx element gets at most one term: float32 is exact.
  const dx = overlapping ? new Float64Array(x.length) : new Float32Array(x.length);
  const best = new Float32Array(C);
  const bestAt = new Int32Array(C);
  for (let b = 0; b < g.batch; b++) {
    for (let oy = 0; oy < g.outHeight; oy++) {
      const top = oy * g.strideHeight - g.padTop;
      const y0 = Math.max(0, top);
      const y1 = Math.min(g.inHeight, top + g.filterHeight);
      for (let ox = 0; ox < g.outWidth; ox++) {
        const left = ox * g.strideWidth - g.padLeft;
        const x0 = Math.max(0, left);
        const x1 = Math.min(g.inWidth, left + g.filterWidth);
        best.fill(-Infinity);
        bestAt.fill(-1);
        for (let iy = y0; iy < y1; iy++) {
          for (let ix = x0; ix < x1; ix++) {
            const base = ((b * g.inHeight + iy) * g.inWidth + ix) * C;
            for (let c = 0; c < C; c++) {
              const v = x[base + c];
              if (v > best[c]) {
                best[c] = v;
                bestAt[c] = base + c;
              }
            }
          }
        }
        const dyBase = ((b * g.outHeight + oy) * g.outWidth + ox) * C;
        for (let c = 0; c < C; c++) if (bestAt[c] >= 0) dx[bestAt[c]] += dy[dyBase + c];
      }
    }
  }
  return dx instanceof Float32Array ? dx : Float32Array.from(dx);
}
