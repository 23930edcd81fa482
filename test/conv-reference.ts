// What the convolution kernel tests (cpu and webgpu) compare against: seeded random inputs, a
// plain float64 loop worked out independently of tfjs, and a relative error.
import assert from "node:assert/strict";
import { makeRng } from "../src/data/rng.ts";

export type Pad = "same" | "valid" | number | [[number, number], [number, number], [number, number], [number, number]];

/** One NHWC convolution: input batch x height x width x inC, a k x k filter to outC channels. */
export interface ConvCase {
  batch: number;
  height: number;
  width: number;
  inC: number;
  outC: number;
  k: number;
  stride: number;
  pad: Pad;
}

/** n floats in [-1, 1) from a seed. */
export function randomValues(n: number, seed: number): Float32Array {
  const rng = makeRng(seed);
  return Float32Array.from({ length: n }, () => rng() * 2 - 1);
}

/** Output size and leading padding along one axis (dim 1 = rows, 2 = columns). */
export function axis(size: number, k: number, stride: number, pad: Pad, dim: 1 | 2): { out: number; before: number } {
  if (pad === "same") {
    const out = Math.ceil(size / stride);
    return { out, before: Math.floor(Math.max((out - 1) * stride + k - size, 0) / 2) };
  }
  if (pad === "valid") return { out: Math.ceil((size - k + 1) / stride), before: 0 };
  if (typeof pad === "number") return { out: Math.floor((size - k + 2 * pad) / stride) + 1, before: pad };
  const [before, after] = pad[dim];
  return { out: Math.floor((size + before + after - k) / stride) + 1, before };
}

export function outShape(c: ConvCase): [number, number, number, number] {
  return [c.batch, axis(c.height, c.k, c.stride, c.pad, 1).out, axis(c.width, c.k, c.stride, c.pad, 2).out, c.outC];
}

/**
 * Forward output y, input gradient dx and filter gradient dw by plain loops, in float64.
 * Without a filter w only dw is computed (y and dx stay zero).
 */
export function referenceConv(c: ConvCase, x: ArrayLike<number>, dy: ArrayLike<number>, w?: ArrayLike<number>) {
  const rows = axis(c.height, c.k, c.stride, c.pad, 1);
  const cols = axis(c.width, c.k, c.stride, c.pad, 2);
  const y = new Float64Array(c.batch * rows.out * cols.out * c.outC);
  const dx = new Float64Array(x.length);
  const dw = new Float64Array(c.k * c.k * c.inC * c.outC);
  for (let b = 0; b < c.batch; b++)
    for (let oy = 0; oy < rows.out; oy++)
      for (let ox = 0; ox < cols.out; ox++)
        for (let kh = 0; kh < c.k; kh++)
          for (let kw = 0; kw < c.k; kw++) {
            const iy = oy * c.stride - rows.before + kh;
            const ix = ox * c.stride - cols.before + kw;
            if (iy < 0 || iy >= c.height || ix < 0 || ix >= c.width) continue;
            for (let ci = 0; ci < c.inC; ci++)
              for (let co = 0; co < c.outC; co++) {
                const xi = ((b * c.height + iy) * c.width + ix) * c.inC + ci;
                const wi = ((kh * c.k + kw) * c.inC + ci) * c.outC + co;
                const yi = ((b * rows.out + oy) * cols.out + ox) * c.outC + co;
                dw[wi] += x[xi]! * dy[yi]!;
                if (w) {
                  y[yi] += x[xi]! * w[wi]!;
                  dx[xi] += dy[yi]! * w[wi]!;
                }
              }
          }
  return { y, dx, dw, outShape: outShape(c) };
}

/** max|a - ref| / max|ref|: a relative error that does not blow up on entries near zero. */
export function relError(a: ArrayLike<number>, ref: ArrayLike<number>): number {
  assert.equal(a.length, ref.length);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < ref.length; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - ref[i]!));
    scale = Math.max(scale, Math.abs(ref[i]!));
  }
  return diff / (scale || 1);
}
