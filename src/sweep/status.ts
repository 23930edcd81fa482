// Where each run of a sweep stands: done, running, pending or failed, read from its folder (the
// files a task leaves, run-files.ts) and, where the sweep went to Slurm, from the queue. What
// re-submission trains is what this calls missing: pending runs nobody is training or has queued,
// and failed ones.
import { access } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { PlannedRun, SweepPlan } from "./plan.ts";
import { DONE_FILE, ERROR_FILE, readHistory, readJson, RUNNING_FILE, type RunError, type Runner } from "./run-files.ts";
import { ACTIVE, ENDED_BADLY, QUEUED, type QueueState } from "./slurm.ts";
import { processAlive } from "../data/files.ts";

export type RunState = "done" | "running" | "pending" | "failed";
export const RUN_STATES: readonly RunState[] = ["done", "running", "pending", "failed"];

export interface RunStatus {
  run: PlannedRun;
  state: RunState;
  /** One line: the error, where it runs, what it waits for. */
  detail: string;
  /** Epochs finished so far (its metrics.jsonl). */
  epochsDone: number;
  /** Pending in the scheduler's queue (so not to be submitted again). */
  queued: boolean;
}

const exists = (file: string) => access(file).then(() => true, () => false);


export async function runStatus(run: PlannedRun, queue?: QueueState): Promise<RunStatus> {
  const epochsDone = readHistory(run.dir).length;
  const of = (state: RunState, detail: string, queued = false): RunStatus => ({ run, state, detail, epochsDone, queued });
  if (await exists(path.join(run.dir, DONE_FILE))) return of("done", `${epochsDone} epochs`);
  if (queue && ACTIVE.has(queue.state)) return of("running", `Slurm task ${queue.task}, ${epochsDone}/${run.settings.epochs} epochs`);
  if (queue && QUEUED.has(queue.state)) return of("pending", `queued as Slurm task ${queue.task}${queue.reason && queue.reason !== "None" ? ` (${queue.reason})` : ""}`, true);
  const error = await readJson<RunError>(path.join(run.dir, ERROR_FILE));
  if (error) return of("failed", error.message.split("\n")[0]);
  const runner = await readJson<Runner>(path.join(run.dir, RUNNING_FILE));
  // A marker left by a process that is gone (killed outright) does not make the run running.
  if (runner && ((runner.host === os.hostname() && processAlive(runner.pid)) || (runner.host !== os.hostname() && !queue)))
    return of("running", `${runner.slurmJob ? `Slurm task ${runner.slurmJob}` : `pid ${runner.pid}`} on ${runner.host}, ${epochsDone}/${run.settings.epochs} epochs`);
  if (queue && ENDED_BADLY.has(queue.state)) return of("failed", `Slurm task ${queue.task} ended ${queue.state}${queue.reason && queue.reason !== "None" ? ` (${queue.reason})` : ""}`);
  return of("pending", epochsDone ? `resumes after epoch ${epochsDone}` : "not started");
}

/** Every run's status, given the queue's states (slurm.ts queueStates; empty without Slurm). */
export async function runStatuses(plan: SweepPlan, queue: Map<string, QueueState> = new Map()): Promise<RunStatus[]> {
  return Promise.all(plan.runs.map((r) => runStatus(r, queue.get(r.id))));
}

/** The runs a (re-)submission trains: neither done nor running nor waiting in the queue. */
export const missingRuns = (statuses: readonly RunStatus[]) => statuses.filter((s) => s.state === "failed" || (s.state === "pending" && !s.queued)).map((s) => s.run);

export function statusCounts(statuses: readonly RunStatus[]): Record<RunState, number> {
  const counts = { done: 0, running: 0, pending: 0, failed: 0 };
  for (const s of statuses) counts[s.state]++;
  return counts;
}

/** The counts on one line, then every failed run with its error and every running one (all runs with `all`). */
export function statusText(plan: SweepPlan, statuses: readonly RunStatus[], opts: { all?: boolean } = {}): string {
  const c = statusCounts(statuses);
  const lines = [`${plan.name}: ${statuses.length} runs: ${RUN_STATES.map((s) => `${c[s]} ${s}`).join(", ")}  (${plan.out})`];
  const shown = opts.all ? statuses : statuses.filter((s) => s.state === "failed" || s.state === "running");
  for (const s of shown) lines.push(`  ${s.state.padEnd(7)}  ${s.run.id}: ${s.detail}`);
  const missing = missingRuns(statuses).length;
  if (c.failed) lines.push(`re-submit what is missing (${missing}: failed runs, and pending ones nobody runs or has queued): npm run sweep -- run SPEC, same executor`);
  return lines.join("\n");
}
