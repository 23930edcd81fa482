// One worker thread of the kernel pool (thread-pool.ts): sleep in Atomics.wait until the main
// thread posts a job, run this thread's part of it on the shared arena, say done, sleep again.
// It has its own gemm micro-kernel and packing buffers (its own copy of gemm.ts).
import { parentPort, receiveMessageOnPort, workerData } from "node:worker_threads";
import { runJobPart } from "./kernel-jobs.ts";
import { controlWords, type WorkerSetup } from "./thread-pool.ts";

const { SEQ, GEN, PARTS, DONE, failedWord } = controlWords;
const { index, workers, control: controlBuffer, job: jobBuffer, port } = workerData as WorkerSetup;
const control = new Int32Array(controlBuffer);
const job = new Int32Array(jobBuffer);
let arena: Float32Array = new Float32Array(0);
let gen = 0;
let seen = 0;

/** Take the arena of the current generation from the messages the main thread posted. */
function refreshArena(): void {
  const wanted = Atomics.load(control, GEN);
  while (gen !== wanted) {
    const message = receiveMessageOnPort(port)?.message as { gen: number; buffer: SharedArrayBuffer } | undefined;
    if (!message) throw new Error(`kernel worker ${index}: arena generation ${wanted} was not posted`);
    gen = message.gen;
    arena = new Float32Array(message.buffer);
  }
}

parentPort!.postMessage("ready");
for (;;) {
  Atomics.wait(control, SEQ, seen);
  const seq = Atomics.load(control, SEQ);
  if (seq === -1) break;
  if (seq === seen) continue;
  seen = seq;
  const parts = Atomics.load(control, PARTS);
  try {
    // Part 0 is the main thread's; worker i takes part i + 1 if that many threads take part.
    if (index + 1 < parts) {
      refreshArena();
      runJobPart(job, arena, index + 1, parts);
    }
  } catch (error) {
    console.error(`kernel worker ${index}:`, error);
    Atomics.store(control, failedWord(workers, index), 1);
  }
  Atomics.store(control, DONE + index, seq);
  Atomics.notify(control, DONE + index);
}
