// Sum, Mean and Max of float32 values over one contiguous run of axes, without a transpose.
//
// tfjs's stock cpu Sum/Mean/Max move the reduced axes last with a full Transpose (itself an
// index computation per element) before summing. Batch norm reduces [N,H,W,C] over [0,1,2]
// (per channel), global pooling over [1,2], softmax over the last axis: each is a contiguous
// run of axes, so the input is [outer, reduce, inner] in memory and we can sum it in place,
// row by row, into one accumulator per output.
//
// The stock kernel adds each output's terms in row-major order of the reduced axes, in double,
// and rounds to float32 once; we add the same terms in the same order in a Float64Array, so
// the results are bit-identical.

export interface ReductionBlock {
  /** Product of the axes before the reduced ones. */
  outer: number;
  /** Product of the reduced axes. */
  reduce: number;
  /** Product of the axes after the reduced ones. */
  inner: number;
  outShape: number[];
}

/**
 * The [outer, reduce, inner] view of `shape` for these (already normalised, non-negative) axes,
 * or undefined unless they are one ascending run such as [0,1,2], [1,2] or [3].
 */
export function reductionBlock(shape: readonly number[], axes: readonly number[], keepDims: boolean): ReductionBlock | undefined {
  if (axes.length === 0 || shape.some((d) => d === 0)) return undefined;
  const first = axes[0];
  if (!axes.every((axis, i) => axis === first + i) || first + axes.length > shape.length) return undefined;
  const product = (from: number, to: number) => shape.slice(from, to).reduce((a, b) => a * b, 1);
  const last = first + axes.length;
  const outShape = keepDims
    ? shape.map((d, i) => (i >= first && i < last ? 1 : d))
    : [...shape.slice(0, first), ...shape.slice(last)];
  return { outer: product(0, first), reduce: product(first, last), inner: product(last, shape.length), outShape };
}

export function sumBlock(x: Float32Array, { outer, reduce, inner }: ReductionBlock): Float32Array {
  const out = new Float32Array(outer * inner);
  const acc = new Float64Array(inner);
  for (let o = 0; o < outer; o++) {
    acc.fill(0);
    for (let r = 0, row = o * reduce * inner; r < reduce; r++, row += inner) {
      for (let i = 0; i < inner; i++) acc[i] += x[row + i];
    }
    out.set(acc, o * inner); // rounds each double to float32
  }
  return out;
}

/** The stock Mean divides every element by the count (rounding to float32) and sums those. */
export function meanBlock(x: Float32Array, { outer, reduce, inner }: ReductionBlock): Float32Array {
  const out = new Float32Array(outer * inner);
  const acc = new Float64Array(inner);
  const count = Math.fround(reduce);
  for (let o = 0; o < outer; o++) {
    acc.fill(0);
    for (let r = 0, row = o * reduce * inner; r < reduce; r++, row += inner) {
      for (let i = 0; i < inner; i++) acc[i] += Math.fround(x[row + i] / count);
    }
    out.set(acc, o * inner);
  }
  return out;
}

/** Like the stock Max, a NaN anywhere makes the result NaN. */
export function maxBlock(x: Float32Array, { outer, reduce, inner }: ReductionBlock): Float32Array {
  const out = new Float32Array(outer * inner);
  for (let o = 0; o < outer; o++) {
    const start = o * reduce * inner;
    const acc = out.subarray(o * inner, (o + 1) * inner);
    acc.set(x.subarray(start, start + inner));
    for (let r = 1, row = start + inner; r < reduce; r++, row += inner) {
      for (let i = 0; i < inner; i++) {
        const v = x[row + i];
        if (v > acc[i] || Number.isNaN(v)) acc[i] = v;
      }
    }
  }
  return out;
}
