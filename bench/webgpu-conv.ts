// How much faster is our webgpu filter gradient (src/backends/webgpu-conv.ts) than tfjs's stock one?
// For every VGG19 convolution shape (and the ResNet34 7x7 stem) at a chosen image size and batch,
// times Conv2DBackpropFilter with the stock kernel and with ours in the same process, and prints
// ms, GFLOP/s and the speed-up. The "VGG19 total" row weights each shape by how often VGG19 has it.
//   npx tsx bench/webgpu-conv.ts [--size PX] [--batch N] [--layers conv1_1,stem] [--block 4x4] [--min-ms MS] [--json]
// Defaults fit a software GPU (Mesa's lavapipe: 32x32, batch 2); on a real GPU use --size 224 --batch 32.
// Timing: one warm-up call each (compiles the shaders), then rounds that alternate stock and ours,
// each round being several calls closed by `await out.data()`; the median round is reported.
// Wall-clock times, so other jobs on the machine move them: read the ratios, not the absolutes.
import * as tf from "@tensorflow/tfjs";
import { numberFlag, parseFlags, runCli, UsageError } from "../src/cli/args.ts";
import { startBackend } from "../src/backends/index.ts";
import { registerWebGpuConvKernels, unregisterWebGpuConvKernels, webGpuConvKernelCalls } from "../src/backends/webgpu-conv.ts";
import type { ThreadBlock } from "../src/backends/webgpu-filter-grad.ts";

interface Layer {
  name: string;
  /** Input height and width as a fraction of --size. */
  scale: number;
  inC: number;
  outC: number;
  k: number;
  stride: number;
  /** How many convolutions of VGG19 have this shape (0: not a VGG19 layer). */
  vggCount: number;
}

const LAYERS: Layer[] = [
  { name: "conv1_1", scale: 1, inC: 3, outC: 64, k: 3, stride: 1, vggCount: 1 },
  { name: "conv1_2", scale: 1, inC: 64, outC: 64, k: 3, stride: 1, vggCount: 1 },
  { name: "conv2_1", scale: 1 / 2, inC: 64, outC: 128, k: 3, stride: 1, vggCount: 1 },
  { name: "conv2_2", scale: 1 / 2, inC: 128, outC: 128, k: 3, stride: 1, vggCount: 1 },
  { name: "conv3_1", scale: 1 / 4, inC: 128, outC: 256, k: 3, stride: 1, vggCount: 1 },
  { name: "conv3_2", scale: 1 / 4, inC: 256, outC: 256, k: 3, stride: 1, vggCount: 3 },
  { name: "conv4_1", scale: 1 / 8, inC: 256, outC: 512, k: 3, stride: 1, vggCount: 1 },
  { name: "conv4_2", scale: 1 / 8, inC: 512, outC: 512, k: 3, stride: 1, vggCount: 3 },
  { name: "conv5_1", scale: 1 / 16, inC: 512, outC: 512, k: 3, stride: 1, vggCount: 4 },
  { name: "stem", scale: 1, inC: 3, outC: 64, k: 7, stride: 2, vggCount: 0 },
];

interface Row {
  layer: string;
  shape: string;
  vggCount: number;
  gflop: number;
  stockMs: number;
  oursMs: number;
  stockGflops: number;
  oursGflops: number;
  speedup: number;
}

function side(layer: Layer, size: number): number {
  return Math.max(1, Math.round(size * layer.scale));
}

/** Multiply-adds times two. */
function gflop(layer: Layer, size: number, batch: number): number {
  const out = Math.ceil(side(layer, size) / layer.stride);
  return (2 * batch * out * out * layer.k * layer.k * layer.inC * layer.outC) / 1e9;
}

/** Wall ms of `reps` filter-gradient calls, closed by a read-back of the last one. */
async function timeCalls(call: () => tf.Tensor, reps: number): Promise<number> {
  const start = performance.now();
  let out: tf.Tensor | undefined;
  for (let r = 0; r < reps; r++) {
    out?.dispose();
    out = call();
  }
  await out!.data();
  const ms = performance.now() - start;
  out!.dispose();
  return ms / reps;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

interface BenchOptions {
  size: number;
  batch: number;
  minMs: number;
  rounds: number;
  block: ThreadBlock;
}

async function benchLayer(layer: Layer, { size, batch, minMs, rounds, block }: BenchOptions): Promise<Row> {
  const s = side(layer, size);
  const x = tf.randomNormal([batch, s, s, layer.inC]) as tf.Tensor4D;
  const filterShape: [number, number, number, number] = [layer.k, layer.k, layer.inC, layer.outC];
  const outSide = Math.ceil(s / layer.stride);
  const dy = tf.randomNormal([batch, outSide, outSide, layer.outC]);
  const attrs = { strides: [layer.stride, layer.stride], pad: "same", dataFormat: "NHWC", filterShape };
  const call = () => tf.engine().runKernel("Conv2DBackpropFilter", { x, dy }, attrs) as tf.Tensor;
  const stock = async (reps: number) => (unregisterWebGpuConvKernels(), timeCalls(call, reps));
  const ours = async (reps: number) => (registerWebGpuConvKernels({ block }), timeCalls(call, reps));

  // Warm-up (shader compilation), then enough calls per round for about minMs each.
  const stockReps = Math.max(1, Math.round(minMs / Math.max(await stock(1), await stock(1))));
  const oursReps = Math.max(1, Math.round(minMs / Math.max(await ours(1), await ours(1))));
  const stockTimes: number[] = [];
  const oursTimes: number[] = [];
  for (let r = 0; r < rounds; r++) {
    stockTimes.push(await stock(stockReps));
    oursTimes.push(await ours(oursReps));
  }
  tf.dispose([x, dy]);
  const g = gflop(layer, size, batch);
  const stockMs = median(stockTimes);
  const oursMs = median(oursTimes);
  return {
    layer: layer.name,
    shape: `${batch}x${s}x${s}x${layer.inC} -> ${layer.outC}, ${layer.k}x${layer.k}/${layer.stride}`,
    vggCount: layer.vggCount,
    gflop: g,
    stockMs,
    oursMs,
    stockGflops: g / (stockMs / 1000),
    oursGflops: g / (oursMs / 1000),
    speedup: stockMs / oursMs,
  };
}

/** The whole VGG19 filter gradient of one step: each shape weighted by its count. */
function vggTotal(rows: Row[]): Row | undefined {
  const vgg = rows.filter((r) => r.vggCount > 0);
  if (vgg.length === 0) return undefined;
  const sum = (f: (r: Row) => number) => vgg.reduce((a, r) => a + r.vggCount * f(r), 0);
  const g = sum((r) => r.gflop);
  const stockMs = sum((r) => r.stockMs);
  const oursMs = sum((r) => r.oursMs);
  return {
    layer: vgg.length === 9 ? "VGG19 total" : "VGG19 subset",
    shape: `${vgg.reduce((a, r) => a + r.vggCount, 0)} conv layers`,
    vggCount: 0,
    gflop: g,
    stockMs,
    oursMs,
    stockGflops: g / (stockMs / 1000),
    oursGflops: g / (oursMs / 1000),
    speedup: stockMs / oursMs,
  };
}

function printTable(rows: Row[]): void {
  const header = ["layer", "shape", "x", "GFLOP", "stock ms", "ours ms", "stock GFLOP/s", "ours GFLOP/s", "speed-up"];
  const lines = rows.map((r) => [
    r.layer,
    r.shape,
    r.vggCount ? String(r.vggCount) : "",
    r.gflop.toFixed(3),
    r.stockMs.toFixed(2),
    r.oursMs.toFixed(2),
    r.stockGflops.toFixed(2),
    r.oursGflops.toFixed(2),
    r.speedup.toFixed(1) + "x",
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const format = (cells: string[]) => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  console.log(format(header));
  for (const l of lines) console.log(format(l));
}

runCli(async () => {
  const flags = parseFlags("bench:webgpu-conv", "Time tfjs's stock webgpu Conv2DBackpropFilter against ours, per VGG19 layer.", {
    size: { type: "string", help: "input height and width of the first VGG layer and the stem (224 on a real GPU)", default: "32" },
    batch: { type: "string", help: "batch size (32 on a real GPU)", default: "2" },
    layers: { type: "string", help: `comma-separated subset of: ${LAYERS.map((l) => l.name).join(",")}` },
    "min-ms": { type: "string", help: "wall time each timed round aims for", default: "200" },
    rounds: { type: "string", help: "timed rounds per kernel (the median is reported)", default: "3" },
    block: { type: "string", help: "rows x columns of the filter gradient each thread of ours keeps: 4x4 or 8x8", default: "4x4" },
    json: { type: "boolean", help: "print the rows as JSON instead of a table" },
  });
  const size = numberFlag("size", flags.size, { integer: true, min: 16, max: 512 })!;
  const batch = numberFlag("batch", flags.batch, { integer: true, min: 1, max: 256 })!;
  const minMs = numberFlag("min-ms", flags["min-ms"], { min: 1, max: 60_000 })!;
  const rounds = numberFlag("rounds", flags.rounds, { integer: true, min: 1, max: 50 })!;
  const blockMatch = /^([48])x([48])$/.exec(flags.block ?? "");
  if (!blockMatch) throw new UsageError(`--block must look like 4x4 or 8x8, got "${flags.block}"`);
  const block = { rowsPerThread: Number(blockMatch[1]), colsPerThread: Number(blockMatch[2]) };
  const wanted = flags.layers?.split(",").map((s) => s.trim());
  const layers = wanted ? LAYERS.filter((l) => wanted.includes(l.name)) : LAYERS;
  if (wanted && layers.length !== wanted.length) throw new UsageError(`--layers: unknown name in "${flags.layers}" (see --help)`);

  const log = flags.json ? () => {} : (line: string) => console.error(line);
  const backend = await startBackend({ prefer: "webgpu", log });
  if (backend.name !== "webgpu") throw new UsageError(`the webgpu backend did not start: ${backend.reason}`);
  const rows: Row[] = [];
  for (const layer of layers) {
    rows.push(await benchLayer(layer, { size, batch, minMs, rounds, block }));
    log(`done ${layer.name}`);
  }
  const total = vggTotal(rows);
  const calls = webGpuConvKernelCalls().Conv2DBackpropFilter;
  if (calls.fallback > 0) throw new Error(`our kernel fell back to the stock one ${calls.fallback} times: the comparison is void`);
  if (flags.json) {
    console.log(JSON.stringify({ size, batch, block: flags.block, device: backend.device, rows, total }, null, 2));
  } else {
    console.log(`Conv2DBackpropFilter on ${backend.device}, ${size}x${size}, batch ${batch}; ours with ${flags.block} per thread`);
    printTable(total ? [...rows, total] : rows);
  }
});
