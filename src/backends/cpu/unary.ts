// Flat loops for the two unary ops of every ReLU: its forward pass (Relu) and, in its gradient,
// Step (tfjs computes relu's gradient as dy * step(x)).
//
// The stock cpu kernels call the op through a closure for each element (createSimpleUnaryImpl);
// in a VGG19 training step at batch 32 that is 7% of the time. Two things make these loops fast:
// they read and write the float32 bit patterns as integers (JavaScript would turn every float32 into
// a double and back), and they choose without a branch: about half of a layer's activations are
// negative, in no pattern a branch predictor can learn, and a mispredicted `v > 0 ? v : 0` cost
// 5 ns an element where the masks below cost 1. NaN, the one case that needs a branch, is rare.
// The results are the stock kernels', NaN and signed zeros included.

const MAGNITUDE = 0x7fffffff;
const INFINITY_BITS = 0x7f800000;

/** The float32 bits of a Float32Array's elements. */
const bitsOf = (x: Float32Array) => new Int32Array(x.buffer, x.byteOffset, x.length);

/** out = max(0, x) on float32 bits (out may be x). */
function reluBits(x: Int32Array, out: Int32Array): void {
  for (let i = 0; i < x.length; i++) {
    const b = x[i]!;
    // b >> 31 is all ones where the sign bit is set (negative, -0): those become +0.
    let r = b & ~(b >> 31);
    if ((b & MAGNITUDE) > INFINITY_BITS) r = b; // NaN stays NaN
    out[i] = r;
  }
}

/** max(0, x) element by element, as the stock Relu: NaN stays NaN, -0 becomes +0. */
export function relu(x: Float32Array): Float32Array {
  const out = new Float32Array(x.length);
  reluBits(bitsOf(x), bitsOf(out));
  return out;
}

/** relu(x) written over x (the fused convolution's activation). */
export function reluInPlace(x: Float32Array): void {
  const bits = bitsOf(x);
  reluBits(bits, bits);
}

/** 1 where x > 0, alpha elsewhere, NaN where x is NaN, as the stock Step. */
export function step(x: Float32Array, alpha: number): Float32Array {
  const out = new Float32Array(x.length);
  const [one, otherwise, nan] = bitsOf(Float32Array.of(1, alpha, NaN)) as unknown as [number, number, number];
  const inBits = bitsOf(x);
  const outBits = bitsOf(out);
  for (let i = 0; i < inBits.length; i++) {
    const b = inBits[i]!;
    // All ones where x > 0: -b has its sign bit set and b has not (b = -0, the one b whose
    // negation keeps the sign bit, has it set itself).
    const positive = (-b & ~b) >> 31;
    let r = (one & positive) | (otherwise & ~positive);
    if ((b & MAGNITUDE) > INFINITY_BITS) r = nan;
    outBits[i] = r;
  }
  return out;
}
