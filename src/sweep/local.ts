// The local executor: a pool of N slots on this machine, each running one run at a time as its own
// process (npm run sweep -- task RUN_DIR, exactly what a Slurm array task runs), its output in the
// run's task.log. A run that fails is reported and its slot takes the next run: the sweep finishes
// every run it can. On a machine with several GPUs, each slot can be given its own device. When
// the stop signal fires (Ctrl-C, the notebook's interrupt), no further run starts and the running
// ones get SIGTERM: each records the attempt as interrupted and resumes from its checkpoint later.
import { spawn } from "node:child_process";
import { createWriteStream } from "node:fs";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { ERROR_FILE, readJson, type RunError } from "./run-files.ts";

export const REPO = path.resolve(import.meta.dirname, "../..");
const SWEEP_CLI = path.join(REPO, "src", "cli", "sweep.ts");

export interface LocalRun {
  id: string;
  dir: string;
}

export type LocalEvent =
  | { type: "start"; run: LocalRun; slot: number }
  | { type: "done"; run: LocalRun; slot: number; seconds: number }
  | { type: "failed"; run: LocalRun; slot: number; seconds: number; message: string }
  | { type: "interrupted"; run: LocalRun; slot: number; seconds: number };

export interface LocalOptions {
  /** Runs at once. */
  jobs: number;
  /** CUDA devices, handed out to the slots in turn (CUDA_VISIBLE_DEVICES); default: leave it alone. */
  devices?: string[];
  onEvent?: (e: LocalEvent) => void;
  /** The command a slot runs for a run; default this checkout's `sweep task RUN_DIR` under tsx. */
  command?: (run: LocalRun) => { file: string; args: string[] };
  /** Stop: start nothing more, and SIGTERM the running runs. */
  signal?: AbortSignal;
}

export interface LocalResult {
  done: string[];
  failed: { id: string; message: string }[];
  /** Stopped by the signal before they finished. */
  interrupted: string[];
}

export const taskCommand = (run: LocalRun) => ({ file: process.execPath, args: ["--import", "tsx", SWEEP_CLI, "task", run.dir] });

export async function runLocal(runs: readonly LocalRun[], opts: LocalOptions): Promise<LocalResult> {
  if (!(opts.jobs >= 1)) throw new Error(`jobs must be at least 1, got ${opts.jobs}`);
  const result: LocalResult = { done: [], failed: [], interrupted: [] };
  let next = 0;
  const slot = async (index: number) => {
    while (next < runs.length && !opts.signal?.aborted) {
      const run = runs[next++];
      opts.onEvent?.({ type: "start", run, slot: index });
      const started = performance.now();
      const { code, tail } = await runOne(run, index, opts);
      const seconds = (performance.now() - started) / 1000;
      if (code === 0) {
        result.done.push(run.id);
        opts.onEvent?.({ type: "done", run, slot: index, seconds });
      } else if (opts.signal?.aborted) {
        result.interrupted.push(run.id);
        opts.onEvent?.({ type: "interrupted", run, slot: index, seconds });
      } else {
        // The task's own record of the error, else the last thing it printed.
        const recorded = await readJson<RunError>(path.join(run.dir, ERROR_FILE));
        const message = recorded?.message ?? (tail.trim().split("\n").at(-1) || `exit code ${code}`);
        result.failed.push({ id: run.id, message });
        opts.onEvent?.({ type: "failed", run, slot: index, seconds, message });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(opts.jobs, runs.length) }, (_, i) => slot(i)));
  return result;
}

async function runOne(run: LocalRun, slot: number, opts: LocalOptions): Promise<{ code: number; tail: string }> {
  await mkdir(run.dir, { recursive: true });
  const { file, args } = (opts.command ?? taskCommand)(run);
  const env = { ...process.env };
  if (opts.devices?.length) env.CUDA_VISIBLE_DEVICES = opts.devices[slot % opts.devices.length];
  const log = createWriteStream(path.join(run.dir, "task.log"), { flags: "a" });
  return new Promise((resolve) => {
    const child = spawn(file, args, { cwd: REPO, env, stdio: ["ignore", "pipe", "pipe"] });
    const stop = () => child.kill("SIGTERM");
    if (opts.signal?.aborted) stop();
    opts.signal?.addEventListener("abort", stop);
    let tail = "";
    let ended = false;
    const finish = (r: { code: number; tail: string }) => {
      if (ended) return;
      ended = true;
      opts.signal?.removeEventListener("abort", stop);
      log.end();
      resolve(r);
    };
    const keep = (chunk: Buffer) => {
      log.write(chunk);
      tail = (tail + chunk.toString()).slice(-2000);
    };
    child.stdout.on("data", keep);
    child.stderr.on("data", keep);
    child.on("error", (e) => finish({ code: 1, tail: e.message }));
    child.on("close", (code, signal) => finish({ code: code ?? 1, tail: signal ? `${tail}\nstopped by ${signal}` : tail }));
  });
}
