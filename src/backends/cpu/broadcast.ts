// Flat loops for float32 binary ops and Tile in the broadcast patterns batch norm produces.
//
// tfjs's stock cpu binary kernels work out a multi-dimensional index for every output element
// as soon as one operand broadcasts over a size-1 axis ([1,1,1,C] against [N,H,W,C]), and call
// the op through a closure shared by all binary kernels. Every pattern we cover here is one
// shape: a "big" operand laid out exactly like the output, and a "small" one whose values repeat
// every small.length elements:
//   same shapes                    small.length = size of the output (one pass)
//   a scalar                       small.length = 1
//   [C], [1,C], [1,1,1,C] vs [N,H,W,C]   small.length = C
// so one two-level loop per op does them all. The result of each element is computed in double
// and rounded to float32 once, exactly as the stock kernel does, so results are bit-identical.

export type BinaryOpName = "Add" | "Sub" | "Multiply" | "RealDiv";

export interface RowBroadcast {
  outShape: number[];
  /** Which input is laid out like the output; the other one repeats along the leading axes. */
  big: "a" | "b";
}

/** out[i] = op(big[i], small[i % small.length]); `SmallFirst` variants compute op(small, big). */
type RowLoop = (big: Float32Array, small: Float32Array, out: Float32Array) => void;

export function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** NumPy-style broadcast shape of two shapes, or undefined if they do not broadcast. */
export function broadcastShape(aShape: readonly number[], bShape: readonly number[]): number[] | undefined {
  const rank = Math.max(aShape.length, bShape.length);
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    const a = aShape[aShape.length - rank + i] ?? 1;
    const b = bShape[bShape.length - rank + i] ?? 1;
    if (a !== b && a !== 1 && b !== 1) return undefined;
    out.push(a === 1 ? b : a);
  }
  return out;
}

/** True if `small`, without its leading 1s, is the trailing part of `outShape`. */
function repeatsAlongLeadingAxes(small: readonly number[], outShape: readonly number[]): boolean {
  let first = 0;
  while (first < small.length && small[first] === 1) first++;
  const tail = small.slice(first);
  const offset = outShape.length - tail.length;
  return offset >= 0 && tail.every((d, i) => d === outShape[offset + i]);
}

/** The pattern of a binary op on these shapes, or undefined for what we leave to the stock kernel. */
export function rowBroadcast(aShape: readonly number[], bShape: readonly number[]): RowBroadcast | undefined {
  const outShape = broadcastShape(aShape, bShape);
  if (!outShape) return undefined;
  const outSize = sizeOf(outShape);
  if (outSize === 0) return undefined;
  // An operand as large as the output has the output's layout (it can only lack size-1 axes).
  if (sizeOf(aShape) === outSize && repeatsAlongLeadingAxes(bShape, outShape)) return { outShape, big: "a" };
  if (sizeOf(bShape) === outSize && repeatsAlongLeadingAxes(aShape, outShape)) return { outShape, big: "b" };
  return undefined;
}

// One loop per op and operand order; writing the op inline (not through a callback) keeps
// each loop monomorphic, which is most of the speed-up.

function add(big: Float32Array, small: Float32Array, out: Float32Array): void {
  const n = small.length;
  for (let i = 0; i < big.length; i += n) for (let j = 0; j < n; j++) out[i + j] = big[i + j] + small[j];
}

function multiply(big: Float32Array, small: Float32Array, out: Float32Array): void {
  const n = small.length;
  for (let i = 0; i < big.length; i += n) for (let j = 0; j < n; j++) out[i + j] = big[i + j] * small[j];
}

function subtract(big: Float32Array, small: Float32Array, out: Float32Array): void {
  const n = small.length;
  for (let i = 0; i < big.length; i += n) for (let j = 0; j < n; j++) out[i + j] = big[i + j] - small[j];
}

function subtractFromSmall(big: Float32Array, small: Float32Array, out: Float32Array): void {
  const n = small.length;
  for (let i = 0; i < big.length; i += n) for (let j = 0; j < n; j++) out[i + j] = small[j] - big[i + j];
}

function divide(big: Float32Array, small: Float32Array, out: Float32Array): void {
  const n = small.length;
  for (let i = 0; i < big.length; i += n) for (let j = 0; j < n; j++) out[i + j] = big[i + j] / small[j];
}

function divideSmall(big: Float32Array, small: Float32Array, out: Float32Array): void {
  const n = small.length;
  for (let i = 0; i < big.length; i += n) for (let j = 0; j < n; j++) out[i + j] = small[j] / big[i + j];
}

const LOOPS: Record<BinaryOpName, { bigFirst: RowLoop; smallFirst: RowLoop }> = {
  // a + b and a * b are exactly b + a and b * a in IEEE arithmetic: one loop serves both orders.
  Add: { bigFirst: add, smallFirst: add },
  Multiply: { bigFirst: multiply, smallFirst: multiply },
  Sub: { bigFirst: subtract, smallFirst: subtractFromSmall },
  RealDiv: { bigFirst: divide, smallFirst: divideSmall },
};

/** op(a, b) for float32 values in a pattern rowBroadcast() accepted. */
export function binaryOp(op: BinaryOpName, a: Float32Array, b: Float32Array, plan: RowBroadcast): Float32Array {
  const out = new Float32Array(sizeOf(plan.outShape));
  if (plan.big === "a") LOOPS[op].bigFirst(a, b, out);
  else LOOPS[op].smallFirst(b, a, out);
  return out;
}

// ---------------------------------------------------------------- Tile

/**
 * How many times Tile(x, reps) repeats x whole, or undefined when the output is not plain
 * copies of x. That is the case when every axis before the last repeated one has size 1, as
 * in batch norm's gradient: tile([1,1,1,C], [N,H,W,1]).
 */
export function wholeTileCount(shape: readonly number[], reps: readonly number[]): number | undefined {
  if (reps.length !== shape.length || sizeOf(shape) === 0 || reps.some((r) => !Number.isInteger(r) || r < 1)) {
    return undefined;
  }
  let lastRepeated = -1;
  reps.forEach((r, axis) => {
    if (r > 1) lastRepeated = axis;
  });
  for (let axis = 0; axis < lastRepeated; axis++) if (shape[axis] !== 1) return undefined;
  return sizeOf(reps);
}

/** `count` copies of x, one after the other. */
export function repeatWhole(x: Float32Array, count: number): Float32Array {
  const out = new Float32Array(x.length * count);
  for (let k = 0; k < count; k++) out.set(x, k * x.length);
  return out;
}
