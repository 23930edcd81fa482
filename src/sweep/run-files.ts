// What a sweep keeps in each run's folder besides the training run's own files (run-log.ts,
// checkpoint.ts): the run's resolved config (run.json, written before any task starts), a marker
// while a task trains it (running.json), the error that stopped it (error.json) and one line per
// attempt (attempts.jsonl: where and when it ran, whether it resumed, how it ended). The state of a
// sweep is read from these files, so it survives the processes and the scheduler that ran it.
import { appendFileSync, existsSync, readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import type { TrainConfig } from "../train/config.ts";
import type { EpochRecord } from "../train/learner.ts";
import type { RunSettings } from "./spec.ts";

export const RUN_FILE = "run.json";
export const RUNNING_FILE = "running.json";
export const ERROR_FILE = "error.json";
export const ATTEMPTS_FILE = "attempts.jsonl";
/** Written by the training run's last step (RunLog.finish): its presence means the run is done. */
export const DONE_FILE = "summary.json";
export const METRICS_FILE = "metrics.jsonl";

export interface RunFile {
  sweep: string;
  id: string;
  backend: string;
  settings: RunSettings;
  config: TrainConfig;
}

/** Who is training a run: a local process or a Slurm array task. */
export interface Runner {
  host: string;
  pid: number;
  /** "<array job>_<task>" under Slurm. */
  slurmJob?: string;
  since: string;
}

export interface RunError {
  message: string;
  at: string;
  host: string;
  slurmJob?: string;
}

export interface Attempt {
  start: string;
  end?: string;
  host: string;
  pid: number;
  slurmJob?: string;
  /** Slurm's count of restarts of this task (requeues). */
  restart?: number;
  /** The epoch this attempt resumed after (it found a checkpoint). */
  resumedAfter?: number;
  outcome?: "done" | "failed" | "interrupted";
  message?: string;
}

export const readJson = async <T>(file: string): Promise<T | undefined> => {
  try {
    return JSON.parse(await readFile(file, "utf8")) as T;
  } catch {
    return undefined;
  }
};

export function appendAttempt(dir: string, attempt: Attempt): void {
  // Synchronous: it is also written from a SIGTERM handler, just before the process exits.
  appendFileSync(path.join(dir, ATTEMPTS_FILE), JSON.stringify(attempt) + "\n");
}

/** A run's attempts, oldest first; each start line merged with its end line. */
export function readAttempts(dir: string): Attempt[] {
  const file = path.join(dir, ATTEMPTS_FILE);
  if (!existsSync(file)) return [];
  const attempts: Attempt[] = [];
  for (const line of readFileSync(file, "utf8").split("\n")) {
    if (!line.trim()) continue;
    let a: Attempt;
    try {
      a = JSON.parse(line) as Attempt;
    } catch {
      continue; // a line cut short by a kill: the attempt's other line says enough
    }
    const open = [...attempts].reverse().find((x) => x.start === a.start && x.pid === a.pid && x.host === a.host);
    if (open && a.outcome) Object.assign(open, a);
    else attempts.push(a);
  }
  return attempts;
}

/** The epochs a run has finished so far (its metrics.jsonl, a few lines), [] when none. */
export function readHistory(dir: string): EpochRecord[] {
  try {
    return readFileSync(path.join(dir, METRICS_FILE), "utf8")
      .split("\n")
      .filter((l) => l.trim())
      .map((l) => JSON.parse(l) as EpochRecord);
  } catch {
    return [];
  }
}
