// WebAssembly modules written as bytes, for the cpu kernels' small hand-made modules
// (microkernel.ts, cpu/adamw.ts): each instruction spelled as its bytes from the WebAssembly
// binary format spec, and a module of one exported function "run" over an imported memory.

/** Unsigned LEB128, the variable-length integer encoding used throughout wasm binaries. */
export function leb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

export const vec = (items: number[][]): number[] => [...leb(items.length), ...items.flat()];
const name = (s: string): number[] => vec([...s].map((ch) => [ch.charCodeAt(0)]));
const section = (id: number, body: number[]): number[] => [id, ...leb(body.length), ...body];

export const I32 = 0x7f;
export const V128 = 0x7b;
export const localGet = (i: number) => [0x20, ...leb(i)];
export const localSet = (i: number) => [0x21, ...leb(i)];
export const i32Const = (n: number) => [0x41, ...leb(n)];
export const I32_ADD = [0x6a];
export const I32_MUL = [0x6c];
export const I32_LT_U = [0x49];
// SIMD instructions: prefix 0xfd, then the opcode; memory ones then take (log2 alignment, offset).
export const v128Load = (offset: number) => [0xfd, ...leb(0x00), 4, ...leb(offset)];
export const v128Store = (offset: number) => [0xfd, ...leb(0x0b), 4, ...leb(offset)];
export const v128Load32Splat = (offset: number) => [0xfd, ...leb(0x09), 2, ...leb(offset)];
export const F32X4_ADD = [0xfd, ...leb(0xe4)];
export const F32X4_MUL = [0xfd, ...leb(0xe6)];
// Relaxed SIMD: relaxed_madd(a, b, c) = a * b + c, fused where the hardware can.
export const F32X4_RELAXED_MADD = [0xfd, ...leb(0x105)];
export const F32 = 0x7d;
export const F32X4_SUB = [0xfd, ...leb(0xe5)];
export const F32X4_DIV = [0xfd, ...leb(0xe7)];
export const F32X4_SQRT = [0xfd, ...leb(0xe3)];
export const F32X4_SPLAT = [0xfd, ...leb(0x13)];
export const LOOP = [0x03, 0x40]; // a loop with no result
export const END = [0x0b];
export const brIf = (depth: number) => [0x0d, ...leb(depth)];

export interface FunctionSpec {
  /** Value types of the parameters (local indices 0 .. params.length - 1). */
  params: number[];
  /** Further locals, as runs of [count, type], numbered after the parameters. */
  locals: [number, number][];
  /** The function's instructions, without the final end. */
  body: number[];
}

/** A module that imports env.memory (at least one page) and exports its one function, of no results, as "run". */
export function wasmModule({ params, locals, body }: FunctionSpec): Uint8Array<ArrayBuffer> {
  const code = [...vec(locals.map(([count, type]) => [...leb(count), type])), ...body, ...END];
  return new Uint8Array([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00], // "\0asm", version 1
    ...section(1, vec([[0x60, ...vec(params.map((t) => [t])), ...vec([])]])), // type 0: (params) -> ()
    ...section(2, vec([[...name("env"), ...name("memory"), 0x02, 0x00, ...leb(1)]])), // import memory, min 1 page
    ...section(3, vec([[0]])), // function 0 has type 0
    ...section(7, vec([[...name("run"), 0x00, 0]])), // export function 0 as "run"
    ...section(10, vec([[...leb(code.length), ...code]])), // its code
  ]);
}
