// One run of a sweep, in the process that trains it: what a local pool slot and a Slurm array task
// both execute (npm run sweep -- task RUN_DIR). It reads the run's run.json, trains it (resuming
// from its checkpoint when an earlier attempt was killed or requeued), and records the attempt: a
// failure's message goes to error.json, so the sweep goes on and `status` can say what went wrong.
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { writeFileAtomic } from "../data/files.ts";
import { startRun } from "../cli/start-run.ts";
import { train } from "../train/learner.ts";
import { epochLine } from "../train/progress.ts";
import { LOCK_FILE } from "../train/run-lock.ts";
import { appendAttempt, ERROR_FILE, readJson, RUN_FILE, RUNNING_FILE, type Attempt, type RunError, type RunFile, type Runner } from "./run-files.ts";

function readJsonSync<T>(file: string): T | undefined {
  try {
    return JSON.parse(readFileSync(file, "utf8")) as T;
  } catch {
    return undefined;
  }
}

/** "<array job>_<task>" when Slurm started this process. */
export function slurmJobOf(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return env.SLURM_ARRAY_JOB_ID && env.SLURM_ARRAY_TASK_ID ? `${env.SLURM_ARRAY_JOB_ID}_${env.SLURM_ARRAY_TASK_ID}` : env.SLURM_JOB_ID;
}

export interface TaskResult {
  outcome: "done" | "failed";
  resumedAfter?: number;
  message?: string;
}

/** Train the run in `dir`; never throws for a training error (it is recorded and returned). */
export async function runTask(dir: string, opts: { log?: (line: string) => void; backend?: string } = {}): Promise<TaskResult> {
  const log = opts.log ?? console.log;
  const run = await readJson<RunFile>(path.join(dir, RUN_FILE));
  if (!run) throw new Error(`${path.join(dir, RUN_FILE)} not found: prepare the sweep first (npm run sweep -- run SPEC)`);
  const slurmJob = slurmJobOf();
  const attempt: Attempt = {
    start: new Date().toISOString(),
    host: os.hostname(),
    pid: process.pid,
    ...(slurmJob ? { slurmJob } : {}),
    ...(process.env.SLURM_RESTART_COUNT ? { restart: Number(process.env.SLURM_RESTART_COUNT) } : {}),
  };
  appendAttempt(dir, attempt);
  const runner: Runner = { host: attempt.host, pid: attempt.pid, slurmJob, since: attempt.start };
  await writeFileAtomic(path.join(dir, RUNNING_FILE), JSON.stringify(runner) + "\n");
  // A previous attempt's error is history now (attempts.jsonl keeps its message).
  await rm(path.join(dir, ERROR_FILE), { force: true });

  // Slurm stops a task with SIGTERM (requeue, preemption, time limit): the attempt ends as
  // interrupted, not failed; the next one resumes from the last checkpoint.
  const onTerm = (signal: NodeJS.Signals) => {
    appendAttempt(dir, { ...attempt, end: new Date().toISOString(), outcome: "interrupted", message: signal });
    rmSync(path.join(dir, RUNNING_FILE), { force: true });
    // The training lock is ours: left behind, it would hold off a requeued task on another node for minutes.
    const lock = readJsonSync<{ pid: number; host: string }>(path.join(dir, LOCK_FILE));
    if (lock?.pid === process.pid && lock.host === attempt.host) rmSync(path.join(dir, LOCK_FILE), { force: true });
    process.exit(128 + (signal === "SIGINT" ? 2 : 15));
  };
  process.once("SIGTERM", onTerm);
  process.once("SIGINT", onTerm);
  try {
    const info = await startRun((opts.backend ?? run.backend) as "auto");
    log(`${run.id}: training on ${info.backend} (${info.device})${slurmJob ? `, Slurm task ${slurmJob}` : ""}`);
    const result = await train(run.config, { runDir: dir, info, callbacks: { onEpoch: (r) => log(epochLine(run.id, r)) } });
    result.model.dispose();
    if (result.resumedAfter) log(`${run.id}: resumed after epoch ${result.resumedAfter}`);
    appendAttempt(dir, { ...attempt, end: new Date().toISOString(), outcome: "done", ...(result.resumedAfter ? { resumedAfter: result.resumedAfter } : {}) });
    return { outcome: "done", resumedAfter: result.resumedAfter };
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    const error: RunError = { message, at: new Date().toISOString(), host: attempt.host, ...(slurmJob ? { slurmJob } : {}) };
    writeFileSync(path.join(dir, ERROR_FILE), JSON.stringify(error, null, 2) + "\n");
    appendAttempt(dir, { ...attempt, end: error.at, outcome: "failed", message });
    log(`${run.id}: failed: ${message}`);
    return { outcome: "failed", message };
  } finally {
    process.off("SIGTERM", onTerm);
    process.off("SIGINT", onTerm);
    if (existsSync(path.join(dir, RUNNING_FILE))) rmSync(path.join(dir, RUNNING_FILE), { force: true });
  }
}
