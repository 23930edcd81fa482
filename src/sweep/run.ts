// Running a sweep: prepare what the runs share, find what is missing (not done, not running, not
// queued; failed runs are tried again) and hand exactly that to an executor: the local pool, or one
// Slurm job array. Running it again therefore only trains what is still missing.
import { Interrupted, trainingStop } from "../train/interrupt.ts";
import { readHistory } from "./run-files.ts";
import { runLocal, type LocalEvent, type LocalResult } from "./local.ts";
import type { PlannedRun, SweepPlan } from "./plan.ts";
import { prepareSweep } from "./prepare.ts";
import { queueStates, submitSlurm, type Exec } from "./slurm.ts";
import type { SlurmSettings } from "./spec.ts";
import { missingRuns, runStatuses, statusCounts, type RunStatus } from "./status.ts";

export interface RunSweepOptions {
  executor?: "local" | "slurm";
  /** Local: runs at once (default 1). */
  jobs?: number;
  /** Local: CUDA devices handed to the slots in turn. */
  devices?: string[];
  /** Slurm: settings over the spec's own (flags win). */
  slurm?: SlurmSettings;
  /** Slurm: write the script without submitting it. */
  dryRun?: boolean;
  log?: (line: string) => void;
  onEvent?: (e: LocalEvent) => void;
  /** How Slurm's commands are run (tests). */
  exec?: Exec;
  /** Local: stop the sweep (default: Ctrl-C in a terminal, Kernel → Interrupt in a notebook). */
  signal?: AbortSignal;
}

export interface RunSweepResult {
  executor: "local" | "slurm";
  /** The runs handed to the executor. */
  started: PlannedRun[];
  /** The state of every run before they were. */
  before: RunStatus[];
  local?: LocalResult;
  jobId?: string;
  script?: string;
}

/** Status of every run, with the Slurm queue where the sweep was submitted there. */
export async function sweepStatus(plan: SweepPlan, opts: { exec?: Exec } = {}): Promise<RunStatus[]> {
  return runStatuses(plan, await queueStates(plan, opts.exec));
}

export async function runSweep(plan: SweepPlan, opts: RunSweepOptions = {}): Promise<RunSweepResult> {
  const log = opts.log ?? (() => {});
  const executor = opts.executor ?? "local";
  const before = await sweepStatus(plan, opts);
  const todo = missingRuns(before);
  const c = statusCounts(before);
  log(`${plan.name}: ${plan.runs.length} runs, ${c.done} done, ${c.running} running, ${before.filter((s) => s.queued).length} queued; ${todo.length} to ${executor === "slurm" ? "submit" : "train"}`);
  if (!todo.length) return { executor, started: [], before };
  await prepareSweep(plan, { log });

  if (executor === "slurm") {
    const { jobId, script } = await submitSlurm(plan, todo, { slurm: { ...plan.slurm, ...opts.slurm }, dryRun: opts.dryRun, exec: opts.exec });
    log(jobId ? `submitted job array ${jobId} (${todo.length} tasks): ${script}` : `dry run: ${script} (not submitted)`);
    return { executor, started: todo, before, jobId, script };
  }

  let finished = 0;
  const onEvent = (e: LocalEvent) => {
    opts.onEvent?.(e);
    if (e.type === "start") return log(`start   ${e.run.id}`);
    if (e.type === "interrupted") return log(`stopped ${e.run.id} (${readHistory(e.run.dir).length} epochs saved)`);
    finished++;
    const f1 = e.type === "done" ? ` final F1 ${readHistory(e.run.dir).at(-1)?.f1.toFixed(3) ?? "?"}` : "";
    log(`${e.type === "done" ? "done   " : "FAILED "} ${e.run.id}${f1} (${e.seconds.toFixed(0)} s, ${finished}/${todo.length})${e.type === "failed" ? `: ${e.message}` : ""}`);
  };
  const stop = trainingStop();
  const signal = opts.signal ? AbortSignal.any([opts.signal, stop.signal]) : stop.signal;
  let local: LocalResult;
  try {
    local = await runLocal(todo, { jobs: opts.jobs ?? 1, devices: opts.devices, signal, onEvent });
  } finally {
    stop.release();
  }
  // Stopped as a training cell or command is: one line, and running it again resumes.
  if (signal.aborted) throw new Interrupted();
  return { executor, started: todo, before, local };
}
