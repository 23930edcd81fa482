// The kernel thread pool (src/backends/cpu/thread-pool.ts): convolutions split across threads give
// exactly the single-thread results, whatever the thread count and whichever micro-kernel.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { conv2dFilterGrad, conv2dForward, conv2dInputGrad } from "../src/backends/cpu/conv-gemm.ts";
import { registerCpuConvKernels, unregisterCpuConvKernels } from "../src/backends/cpu/conv.ts";
import { gemm, gemmPart, useMicroKernel } from "../src/backends/cpu/gemm.ts";
import type { ConvGeometry } from "../src/backends/cpu/im2col.ts";
import { relaxedSimdAvailable, type MicroKernelKind } from "../src/backends/cpu/microkernel.ts";
import { setMinThreadedMacs } from "../src/backends/cpu/conv-threads.ts";
import { kernelThreads, setThreads, startThreadPool, stopThreadPool, threadsWanted } from "../src/backends/cpu/thread-pool.ts";
import { randomValues } from "./conv-reference.ts";

await tf.setBackend("cpu");

// Three threads even on a 2-core machine: uneven splits are what can go wrong.
const THREADS = 3;
before(async () => {
  assert.equal(await startThreadPool(THREADS), THREADS, "the workers start");
  // Training threads only larger products; here every case's three products take the threaded path.
  setMinThreadedMacs({ forward: 1 << 20, filter: 1 << 20, input: 1 << 20 });
});
after(async () => {
  setMinThreadedMacs();
  await stopThreadPool();
});

const geometry = (o: Partial<ConvGeometry> & Pick<ConvGeometry, "batch" | "inHeight" | "inWidth" | "inChannels" | "outChannels">, k: number, stride: number, pad: number): ConvGeometry => {
  const out = (size: number) => Math.floor((size + 2 * pad - k) / stride) + 1;
  return {
    outHeight: out(o.inHeight), outWidth: out(o.inWidth), filterHeight: k, filterWidth: k,
    strideHeight: stride, strideWidth: stride, padTop: pad, padLeft: pad, ...o,
  };
};

// Each large enough for the pool (a million multiply-adds or more).
const CASES: [string, ConvGeometry][] = [
  ["3x3 same, VGG-like", geometry({ batch: 2, inHeight: 16, inWidth: 16, inChannels: 32, outChannels: 64 }, 3, 1, 1)],
  ["first layer, 3 channels", geometry({ batch: 3, inHeight: 32, inWidth: 32, inChannels: 3, outChannels: 64 }, 3, 1, 1)],
  ["deep layer, few pixels, wide", geometry({ batch: 2, inHeight: 2, inWidth: 2, inChannels: 512, outChannels: 512 }, 3, 1, 1)],
  ["stride 2, odd sizes", geometry({ batch: 2, inHeight: 15, inWidth: 13, inChannels: 24, outChannels: 40 }, 3, 2, 1)],
  ["1x1 (one gemm)", geometry({ batch: 4, inHeight: 16, inWidth: 16, inChannels: 64, outChannels: 96 }, 1, 1, 0)],
  // 7*7*64 = 3136 floats a row: several im2col bands.
  ["7x7, several bands", geometry({ batch: 1, inHeight: 24, inWidth: 24, inChannels: 64, outChannels: 12 }, 7, 1, 3)],
];

function products(g: ConvGeometry): Float32Array[] {
  const x = randomValues(g.batch * g.inHeight * g.inWidth * g.inChannels, 1);
  const w = randomValues(g.filterHeight * g.filterWidth * g.inChannels * g.outChannels, 2);
  const dy = randomValues(g.batch * g.outHeight * g.outWidth * g.outChannels, 3);
  return [conv2dForward(x, w, g), conv2dInputGrad(dy, w, g), conv2dFilterGrad(x, dy, g)];
}

const kinds: MicroKernelKind[] = relaxedSimdAvailable() ? ["wasm-fma", "wasm-simd"] : ["wasm-simd"];

for (const [name, g] of CASES) {
  test(`threads give the one-thread results bit for bit: ${name}`, () => {
    for (const kind of kinds) {
      useMicroKernel(kind);
      setThreads(1);
      const one = products(g);
      for (let threads = 2; threads <= THREADS; threads++) {
        assert.equal(setThreads(threads), threads);
        const many = products(g);
        ["forward", "input gradient", "filter gradient"].forEach((op, i) => {
          assert.deepEqual(many[i], one[i], `${kind}, ${threads} threads: ${op}`);
        });
      }
    }
    useMicroKernel(kinds[0]!);
    setThreads(THREADS);
  });
}

test("gemmPart's parts add up to gemm's result exactly", () => {
  for (const [m, n, k] of [[7, 300, 20], [300, 9, 513], [4, 4, 4], [97, 1030, 31]]) {
    const a = randomValues(m * k, 4);
    const b = randomValues(k * n, 5);
    const view = (data: Float32Array, cols: number) => ({ data, offset: 0, rowStride: cols, colStride: 1 });
    const whole = new Float32Array(m * n);
    gemm({ m, n, k, a: view(a, k), b: view(b, n), c: { data: whole, offset: 0, rowStride: n } });
    for (const parts of [2, 3, 5]) {
      const pieced = new Float32Array(m * n);
      for (let part = 0; part < parts; part++) {
        gemmPart({ m, n, k, a: view(a, k), b: view(b, n), c: { data: pieced, offset: 0, rowStride: n } }, part, parts);
      }
      assert.deepEqual(pieced, whole, `${m}x${n}x${k} in ${parts} parts`);
    }
  }
});

test("a small conv net's gradients through tfjs are the same on 1 and 3 threads", () => {
  registerCpuConvKernels();
  const x = tf.tensor4d(randomValues(2 * 16 * 16 * 8, 6), [2, 16, 16, 8]);
  const w1 = tf.tensor4d(randomValues(3 * 3 * 8 * 32, 7), [3, 3, 8, 32]);
  const w2 = tf.tensor4d(randomValues(3 * 3 * 32 * 64, 8), [3, 3, 32, 64]);
  const loss = (w1: tf.Tensor, w2: tf.Tensor) => tf.sum(tf.square(tf.conv2d(tf.relu(tf.conv2d(x, w1 as tf.Tensor4D, 1, "same")), w2 as tf.Tensor4D, 1, "same")));
  const grads = (threads: number) => {
    setThreads(threads);
    return tf.tidy(() => tf.grads(loss)([w1, w2]).map((g) => g.dataSync()));
  };
  const one = grads(1);
  const three = grads(THREADS);
  assert.deepEqual(three, one);
  tf.dispose([x, w1, w2]);
  unregisterCpuConvKernels();
});

test("FINALBN_THREADS sets the thread count; unset or invalid, one thread per core", () => {
  assert.equal(threadsWanted({ FINALBN_THREADS: "1" }), 1);
  assert.equal(threadsWanted({ FINALBN_THREADS: "3" }), 3);
  assert.ok(threadsWanted({}) >= 1);
  assert.equal(threadsWanted({ FINALBN_THREADS: "zero" }), threadsWanted({}));
  assert.equal(kernelThreads(), THREADS);
});

test("the pool starts where src is loaded through require, as a notebook's cells load it (tslab compiles them to CommonJS)", async () => {
  const { execFile } = await import("node:child_process");
  const { promisify } = await import("node:util");
  const threadPool = new URL("../src/backends/cpu/thread-pool.ts", import.meta.url).pathname;
  const script = `const tp = require(${JSON.stringify(threadPool)});
tp.startThreadPool(2).then((n) => { console.log(JSON.stringify({ threads: n, failure: tp.threadPoolFailure() ?? null })); return tp.stopThreadPool(); });`;
  const { stdout } = await promisify(execFile)(process.execPath, ["--import", "tsx", "-e", script], { cwd: new URL("..", import.meta.url).pathname });
  assert.deepEqual(JSON.parse(stdout.trim().split("\n").at(-1)!), { threads: 2, failure: null });
});
