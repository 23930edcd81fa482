// A persistent pool of worker threads for the cpu kernels: tfjs's cpu backend computes on one
// thread, so without this a training step leaves every other core idle.
//
// Started once with the cpu backend (startThreadPool, from cpu/backend.ts), sized by FINALBN_THREADS or
// the number of cores. The threads share one SharedArrayBuffer, the arena: the main thread copies
// a kernel's inputs into it (one memcpy per tensor, cheap against the O(k) work per element of a
// convolution), posts jobs (kernel-jobs.ts) through a small shared Int32Array, and wakes the
// workers with Atomics.notify; every thread, the main one included, runs its part; the main one
// waits with Atomics.wait until all are done. No messages, no copies between jobs.
//
// With 1 thread nothing starts and the kernels run as they always did, on tfjs's own arrays.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { MessageChannel, Worker, type MessagePort } from "node:worker_threads";
import { JOB_INTS, runJobPart, stampMicroKernel } from "./kernel-jobs.ts";

// Words of the control array: the job's sequence number, the arena's generation, the number of
// threads taking part, then one "done" word and one "failed" word per worker.
const SEQ = 0;
const GEN = 1;
const PARTS = 2;
const DONE = 4;
const failedWord = (workers: number, i: number) => DONE + workers + i;

/** What a worker gets at start. */
export interface WorkerSetup {
  index: number;
  workers: number;
  control: SharedArrayBuffer;
  job: SharedArrayBuffer;
  port: MessagePort;
}

interface Pool {
  workers: Worker[];
  control: Int32Array;
  job: Int32Array;
  ports: MessagePort[];
  arena: Float32Array;
  seq: number;
  /** Threads taking part in jobs now (main thread included): 1 .. workers.length + 1. */
  threads: number;
}

const WORKER_URL = new URL("./kernel-worker.ts", import.meta.url).href;

/**
 * The worker's code: import kernel-worker.ts. It is TypeScript, and Node 20 does not pass tsx's
 * --import hooks on to worker threads, so where tsx is installed the worker registers it first.
 */
function workerEntry(): string {
  const tsx = tsxApiUrl();
  const worker = `import(${JSON.stringify(WORKER_URL)})`;
  return tsx ? `import(${JSON.stringify(tsx)}).then((tsx) => tsx.register()).then(() => ${worker})` : worker;
}

/**
 * Where tsx's register() is, or undefined without tsx (a runtime that runs .ts itself; otherwise the
 * worker fails and the kernels use one thread). Loaded as an ES module this file has
 * import.meta.resolve; loaded through require (a notebook's cells: tslab compiles them to CommonJS)
 * it has only import.meta.url, and tsx is resolved from there.
 */
function tsxApiUrl(): string | undefined {
  try {
    if (typeof import.meta.resolve === "function") return import.meta.resolve("tsx/esm/api");
    // require.resolve would give the CommonJS build; the worker imports the ES module one.
    const manifest = createRequire(import.meta.url).resolve("tsx/package.json");
    const exports = JSON.parse(readFileSync(manifest, "utf8")).exports as Record<string, { import?: { default?: string } }>;
    const entry = exports["./esm/api"]?.import?.default;
    return entry ? pathToFileURL(path.join(path.dirname(manifest), entry)).href : undefined;
  } catch {
    return undefined;
  }
}

let pool: Pool | undefined;
let startFailure: string | undefined;

/** FINALBN_THREADS if set (1 or more), else the number of cores. */
export function threadsWanted(env: Record<string, string | undefined> = process.env): number {
  const asked = Number(env.FINALBN_THREADS);
  if (env.FINALBN_THREADS !== undefined && env.FINALBN_THREADS.trim() !== "" && Number.isInteger(asked) && asked >= 1) return asked;
  return Math.max(1, os.availableParallelism?.() ?? os.cpus().length);
}

/**
 * Start `threads - 1` workers (the main thread is the last one), once; resolves to the number of
 * threads the kernels will use, 1 where workers could not start (the reason: threadPoolFailure()).
 */
export async function startThreadPool(threads = threadsWanted(), timeoutMs = 30_000): Promise<number> {
  if (pool) return setThreads(threads);
  if (threads <= 1) return 1;
  const workers = threads - 1;
  const control = new Int32Array(new SharedArrayBuffer(4 * (DONE + 2 * workers)));
  const job = new Int32Array(new SharedArrayBuffer(4 * JOB_INTS));
  const started: Worker[] = [];
  const ports: MessagePort[] = [];
  try {
    await Promise.all(
      Array.from({ length: workers }, (_, index) => {
        const { port1, port2 } = new MessageChannel();
        ports.push(port1);
        const setup: WorkerSetup = { index, workers, control: control.buffer as SharedArrayBuffer, job: job.buffer as SharedArrayBuffer, port: port2 };
        const worker = new Worker(workerEntry(), { eval: true, workerData: setup, transferList: [port2] });
        started.push(worker);
        return new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`no answer in ${timeoutMs / 1000} s`)), timeoutMs);
          worker.once("message", () => (clearTimeout(timer), resolve()));
          worker.once("error", (error) => (clearTimeout(timer), reject(error)));
          worker.once("exit", (code) => (clearTimeout(timer), reject(new Error(`exited with code ${code}`))));
        });
      }),
    );
  } catch (error) {
    for (const w of started) void w.terminate();
    startFailure = `worker threads did not start: ${(error as Error).message.split("\n")[0]}`;
    return 1;
  }
  // Blocked in Atomics.wait, the workers must not keep the process alive.
  for (const w of started) w.unref();
  pool = { workers: started, control, job, ports, arena: new Float32Array(0), seq: 0, threads };
  Atomics.store(control, PARTS, threads);
  return threads;
}

/** Why the pool did not start, if it was asked to and did not. */
export function threadPoolFailure(): string | undefined {
  return startFailure;
}

/** Threads the kernels use now: 1 without a pool. */
export function kernelThreads(): number {
  return pool?.threads ?? 1;
}

/** Use `threads` of the pool's threads from now on (at most those started; 1 = the main thread alone). */
export function setThreads(threads: number): number {
  if (!pool) return 1;
  pool.threads = Math.max(1, Math.min(pool.workers.length + 1, Math.floor(threads)));
  Atomics.store(pool.control, PARTS, pool.threads);
  return pool.threads;
}

/** Stop the workers (tests; a process that exits need not). */
export async function stopThreadPool(): Promise<void> {
  const p = pool;
  pool = undefined;
  if (!p) return;
  Atomics.store(p.control, SEQ, -1);
  Atomics.notify(p.control, SEQ);
  await Promise.all(p.workers.map((w) => w.terminate()));
}

/** The pool, when kernels should use it: it exists and more than one thread takes part. */
export function activePool(): { arena(floats: number): Float32Array; run(write: (job: Int32Array) => void): void } | undefined {
  const p = pool;
  if (!p || p.threads <= 1) return undefined;
  return { arena: (floats) => arenaOf(p, floats), run: (write) => runJob(p, write) };
}

/** The shared arena, at least `floats` long. Growing it hands the workers the new buffer. */
function arenaOf(p: Pool, floats: number): Float32Array {
  if (p.arena.length >= floats) return p.arena;
  const buffer = new SharedArrayBuffer(4 * Math.ceil(Math.max(floats, p.arena.length * 1.5)));
  p.arena = new Float32Array(buffer);
  const gen = Atomics.load(p.control, GEN) + 1;
  // Posted before the generation changes: a worker that sees the new one finds the buffer waiting.
  for (const port of p.ports) port.postMessage({ gen, buffer });
  Atomics.store(p.control, GEN, gen);
  return p.arena;
}

/** Every thread runs its part of the job `write` puts down; returns when all are done. */
function runJob(p: Pool, write: (job: Int32Array) => void): void {
  write(p.job);
  stampMicroKernel(p.job);
  const parts = p.threads;
  const seq = (p.seq = (p.seq + 1) & 0x3fffffff);
  Atomics.store(p.control, SEQ, seq);
  Atomics.notify(p.control, SEQ);
  let error: unknown;
  try {
    runJobPart(p.job, p.arena, 0, parts);
  } catch (e) {
    error = e;
  }
  const workers = p.workers.length;
  for (let i = 0; i < workers; i++) {
    for (;;) {
      const done = Atomics.load(p.control, DONE + i);
      if (done === seq) break;
      Atomics.wait(p.control, DONE + i, done, 60_000);
    }
  }
  const failed = p.workers.map((_, i) => Atomics.exchange(p.control, failedWord(workers, i), 0)).some(Boolean);
  if (error) throw error;
  if (failed) throw new Error("a kernel worker thread failed its part of a job (see its message above)");
}

export const controlWords = { SEQ, GEN, PARTS, DONE, failedWord };
