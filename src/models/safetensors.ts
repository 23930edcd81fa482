// Read and write the .safetensors format (github.com/huggingface/safetensors):
//   8 bytes: little-endian u64 N, the length of the header
//   N bytes: JSON {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__"?: {...}}
//   the rest: raw little-endian tensor data; offsets count from the end of the header.
// No tfjs here: the weights CLI uses this module to check a download.
import { open, readFile } from "node:fs/promises";

export interface SafeTensor {
  dtype: string;
  shape: number[];
  /** The raw little-endian bytes of this tensor (a view into the file). */
  bytes: Uint8Array;
}

export interface SafeTensors {
  metadata: Record<string, string>;
  tensors: Map<string, SafeTensor>;
}

const BYTES_PER_ELEMENT: Record<string, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };

interface HeaderEntry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

/** Length of the header and its parsed JSON, from the first bytes of a file. */
export function parseHeader(bytes: Uint8Array): { headerLength: number; header: Record<string, unknown> } {
  if (bytes.length < 8) throw new Error("not a safetensors file: shorter than 8 bytes");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const length = view.getBigUint64(0, true);
  if (length > BigInt(bytes.length - 8))
    throw new Error(`truncated or not a safetensors file: header length ${length} exceeds the file's ${bytes.length} bytes`);
  const headerLength = Number(length);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength)));
  } catch {
    throw new Error("not a safetensors file: the header is not JSON");
  }
  if (header === null || typeof header !== "object" || Array.isArray(header)) throw new Error("not a safetensors file: the header is not an object");
  return { headerLength, header: header as Record<string, unknown> };
}

/** Parse a whole file held in memory. Tensor bytes stay views into `bytes` (no copy). */
export function parseSafetensors(bytes: Uint8Array): SafeTensors {
  const { headerLength, header } = parseHeader(bytes);
  const dataStart = 8 + headerLength;
  const tensors = new Map<string, SafeTensor>();
  let metadata: Record<string, string> = {};
  for (const [name, value] of Object.entries(header)) {
    if (name === "__metadata__") {
      metadata = value as Record<string, string>;
      continue;
    }
    const { dtype, shape, data_offsets: offsets } = value as HeaderEntry;
    const size = BYTES_PER_ELEMENT[dtype];
    if (size === undefined) throw new Error(`${name}: unknown dtype ${dtype}`);
    if (!Array.isArray(shape) || !Array.isArray(offsets) || offsets.length !== 2) throw new Error(`${name}: malformed header entry`);
    const [begin, end] = offsets;
    const expected = shape.reduce((a, b) => a * b, 1) * size;
    if (end - begin !== expected) throw new Error(`${name}: ${end - begin} bytes for shape [${shape}] of ${dtype} (expected ${expected})`);
    if (begin < 0 || dataStart + end > bytes.length) throw new Error(`${name}: data_offsets [${begin}, ${end}] run past the end of the file`);
    tensors.set(name, { dtype, shape, bytes: bytes.subarray(dataStart + begin, dataStart + end) });
  }
  return { metadata, tensors };
}

/** Read and parse a file; an error names the file. */
export async function readSafetensors(file: string): Promise<SafeTensors> {
  const bytes = await readFile(file);
  try {
    return parseSafetensors(bytes);
  } catch (err) {
    throw new Error(`${file}: ${(err as Error).message}`, { cause: err });
  }
}

/** IEEE half precision bits to a number. */
export function f16ToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const fraction = h & 0x3ff;
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024); // zero and subnormals
  if (exponent === 0x1f) return fraction ? NaN : sign * Infinity;
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
}

/** A number to IEEE half precision bits, rounding to nearest even (for writing test files). */
export function numberToF16(x: number): number {
  const f32 = new Float32Array([x]);
  const bits = new Uint32Array(f32.buffer)[0];
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  let mantissa = bits & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0); // inf, NaN
  let e = exponent - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow to infinity
  if (e <= 0) {
    if (e < -10) return sign; // underflow to zero
    mantissa |= 0x800000; // subnormal: make the leading 1 explicit and shift it in
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    let m = mantissa >> shift;
    const rest = mantissa & ((1 << shift) - 1);
    if (rest > half || (rest === half && m & 1)) m += 1;
    return sign | m;
  }
  let m = mantissa >> 13;
  const rest = mantissa & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && m & 1)) {
    m += 1;
    if (m === 0x400) {
      m = 0;
      e += 1;
      if (e >= 0x1f) return sign | 0x7c00;
    }
  }
  return sign | (e << 10) | m;
}

/** A number to bfloat16 bits (the top half of a float32), rounding to nearest even. */
export function numberToBF16(x: number): number {
  const bits = new Uint32Array(new Float32Array([x]).buffer)[0];
  if (Number.isNaN(x)) return 0x7fc0;
  const rounded = bits + 0x7fff + ((bits >>> 16) & 1);
  return (rounded >>> 16) & 0xffff;
}

const littleEndianHost = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** A tensor's values as float32, whatever its dtype (F32, F16, BF16, F64 or integers). */
export function toFloat32(t: SafeTensor, name = "tensor"): Float32Array {
  const { bytes, dtype } = t;
  if (dtype === "F32" && bytes.byteOffset % 4 === 0 && littleEndianHost) {
    return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4); // a view, no copy
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = bytes.byteLength / BYTES_PER_ELEMENT[dtype];
  const out = new Float32Array(n);
  switch (dtype) {
    case "F32":
      for (let i = 0; i < n; i++) out[i] = view.getFloat32(4 * i, true);
      break;
    case "F64":
      for (let i = 0; i < n; i++) out[i] = view.getFloat64(8 * i, true);
      break;
    case "F16":
      for (let i = 0; i < n; i++) out[i] = f16ToNumber(view.getUint16(2 * i, true));
      break;
    case "BF16": {
      // bfloat16 is the top 16 bits of a float32.
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) bits[i] = view.getUint16(2 * i, true) << 16;
      break;
    }
    case "I64":
      for (let i = 0; i < n; i++) out[i] = Number(view.getBigInt64(8 * i, true));
      break;
    case "I32":
      for (let i = 0; i < n; i++) out[i] = view.getInt32(4 * i, true);
      break;
    default:
      throw new Error(`${name}: cannot convert dtype ${dtype} to float32`);
  }
  return out;
}

export interface TensorToWrite {
  shape: number[];
  data: ArrayLike<number>;
  /** Stored dtype; default F32. I64 is for PyTorch's integer buffers (num_batches_tracked). */
  dtype?: "F32" | "F16" | "BF16" | "I64";
}

/** Serialise tensors (in the given order) to safetensors bytes. */
export function writeSafetensors(tensors: Record<string, TensorToWrite>, metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    const dtype = t.dtype ?? "F32";
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (t.data.length !== n) throw new Error(`${name}: ${t.data.length} values for shape [${t.shape}]`);
    const bytes = new Uint8Array(n * BYTES_PER_ELEMENT[dtype]);
    const view = new DataView(bytes.buffer);
    for (let i = 0; i < n; i++) {
      if (dtype === "F32") view.setFloat32(4 * i, t.data[i], true);
      else if (dtype === "I64") view.setBigInt64(8 * i, BigInt(Math.round(t.data[i])), true);
      else view.setUint16(2 * i, dtype === "F16" ? numberToF16(t.data[i]) : numberToBF16(t.data[i]), true);
    }
    header[name] = { dtype, shape: t.shape, data_offsets: [offset, offset + bytes.length] };
    chunks.push(bytes);
    offset += bytes.length;
  }
  // Pad the header with spaces so the data starts on an 8-byte boundary, as the reference writer does.
  const json = new TextEncoder().encode(JSON.stringify(header));
  const headerBytes = new Uint8Array(Math.ceil(json.length / 8) * 8).fill(0x20); // 0x20: space
  headerBytes.set(json);
  const out = new Uint8Array(8 + headerBytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let at = 8 + headerBytes.length;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}

/**
 * Check a file on disk is a complete safetensors file without reading its data:
 * returns the tensor names and shapes from the header.
 */
export async function readSafetensorsHeader(file: string): Promise<Map<string, { dtype: string; shape: number[] }>> {
  const handle = await open(file, "r");
  try {
    const { size } = await handle.stat();
    const prefix = new Uint8Array(8);
    await handle.read(prefix, 0, 8, 0);
    const length = Number(new DataView(prefix.buffer).getBigUint64(0, true));
    if (size < 8 || length > size - 8 || length > 100_000_000) throw new Error(`${file} is not a safetensors file (bad header length)`);
    const bytes = new Uint8Array(8 + length);
    bytes.set(prefix);
    await handle.read(bytes, 8, length, 8);
    const { header } = parseHeader(bytes);
    const out = new Map<string, { dtype: string; shape: number[] }>();
    for (const [name, value] of Object.entries(header)) {
      if (name === "__metadata__") continue;
      const { dtype, shape, data_offsets: offsets } = value as HeaderEntry;
      if (8 + length + offsets[1] > size) throw new Error(`${file} is truncated: ${name} runs past the end of the file`);
      out.set(name, { dtype, shape });
    }
    return out;
  } finally {
    await handle.close();
  }
}
