// Several training runs at once, one child process per core: on the cpu backend only our
// convolutions use several threads, the rest of a step runs on one, so the demo's four runs (two
// seeds, with and without the final BN) side by side keep a 2-core laptop busy. Each child is a worker.ts process that keeps its backend between runs.
// Runs are independent and seeded, so the results are those of the same runs one after another.
import { fork, type ChildProcess } from "node:child_process";
import os from "node:os";
import { fileURLToPath } from "node:url";
import type { TrainConfig } from "./config.ts";
import type { BatchProgress, EpochRecord, RunStart, TrainCallbacks } from "./learner.ts";
import type { RunInfo } from "./run-log.ts";
import { Interrupted, type StopPoint } from "./interrupt.ts";

export interface TrainJob {
  config: TrainConfig;
  runDir: string;
  info: RunInfo;
}

export interface JobResult {
  history: EpochRecord[];
  resumedAfter?: number;
}

export type ToWorker = { type: "run"; id: number; job: TrainJob } | { type: "interrupt" } | { type: "stop" };
export type FromWorker =
  | { type: "start"; id: number; start: RunStart }
  | { type: "batch"; id: number; progress: BatchProgress }
  | { type: "epoch"; id: number; record: EpochRecord }
  | { type: "done"; id: number; history: EpochRecord[]; resumedAfter?: number }
  | { type: "interrupted"; id: number; stops: StopPoint[] }
  | { type: "error"; id: number; message: string };

/**
 * How many runs to train at once by default: one per core on the cpu backend, whose kernels use
 * one thread each; one on a GPU, which a single run already keeps busy.
 */
export function defaultWorkers(backend: string): number {
  return backend === "cpu" ? os.availableParallelism() : 1;
}

/**
 * Each child's cpu backend splits its convolutions over threads (backends/cpu/thread-pool.ts), one per
 * core by default: with several children that would put cores x children threads on the cores.
 * So the cores are shared out, unless FINALBN_THREADS says otherwise.
 */
export function workerEnv(children: number, env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  if (env.FINALBN_THREADS) return env;
  return { ...env, FINALBN_THREADS: String(Math.max(1, Math.floor(os.availableParallelism() / children))) };
}

const WORKER = fileURLToPath(new URL("./worker.ts", import.meta.url));

/**
 * Train `jobs` on `workers` child processes, handing each child the next job when it is free;
 * results come back in the order of `jobs`. If a run fails, the others are stopped (their last
 * checkpoints stay: the same call again resumes them) and the first error is thrown. When `signal`
 * fires, every child stops after its current batch and Interrupted says where each one stopped.
 */
export async function trainInWorkers(
  jobs: readonly TrainJob[],
  opts: { workers: number; callbacksFor?: (index: number) => TrainCallbacks; signal?: AbortSignal },
): Promise<JobResult[]> {
  const results: JobResult[] = new Array(jobs.length);
  const children: ChildProcess[] = [];
  const stops: StopPoint[] = [];
  let next = 0;
  let failure: Error | undefined;
  // One set of callbacks per run, asked for once (a notebook's makes a display for each run).
  const callbacks = new Map<number, TrainCallbacks>();
  const callbacksOf = (id: number) => {
    if (!callbacks.has(id)) callbacks.set(id, opts.callbacksFor?.(id) ?? {});
    return callbacks.get(id)!;
  };
  const interrupt = () => children.forEach((child) => child.connected && child.send({ type: "interrupt" } satisfies ToWorker));
  opts.signal?.addEventListener("abort", interrupt, { once: true });

  const runOn = (child: ChildProcess): Promise<void> =>
    new Promise((resolve, reject) => {
      const take = () => {
        if (failure || opts.signal?.aborted || next >= jobs.length) return resolve();
        const id = next++;
        child.send({ type: "run", id, job: jobs[id] } satisfies ToWorker);
      };
      child.on("message", (m: FromWorker) => {
        const callbacks = callbacksOf(m.id);
        if (m.type === "start") callbacks?.onStart?.(m.start);
        else if (m.type === "batch") callbacks?.onBatch?.(m.progress);
        else if (m.type === "epoch") callbacks?.onEpoch?.(m.record);
        else if (m.type === "done") {
          results[m.id] = { history: m.history, resumedAfter: m.resumedAfter };
          take();
        } else if (m.type === "interrupted") {
          stops.push(...m.stops);
          resolve();
        } else {
          failure ??= new Error(m.message);
          reject(failure);
        }
      });
      child.on("exit", (code, signal) => {
        if (opts.signal?.aborted) return resolve();
        if (next > 0 && !failure && results.filter(Boolean).length < jobs.length && code !== 0)
          reject((failure ??= new Error(`a training worker stopped (${signal ?? `exit code ${code}`}) before its run finished`)));
      });
      take();
    });

  try {
    const count = Math.max(1, Math.min(opts.workers, jobs.length));
    for (let i = 0; i < count; i++) {
      // The child runs TypeScript the way this process does (tsx's loader flags in execArgv).
      children.push(fork(WORKER, [], { execArgv: process.execArgv, env: workerEnv(count), stdio: ["ignore", "inherit", "inherit", "ipc"] }));
    }
    await Promise.all(children.map(runOn));
    if (opts.signal?.aborted) throw new Interrupted(stops);
  } finally {
    opts.signal?.removeEventListener("abort", interrupt);
    for (const child of children) if (child.connected) child.send({ type: "stop" } satisfies ToWorker);
    for (const child of children) if (child.exitCode === null && failure) child.kill();
  }
  return results;
}
