// The Slurm executor: one sbatch job array per submission, one array task per run. The script
// holds every resource flag (partition, gres, cpus, mem, time, the array's % limit, requeue) as
// #SBATCH lines; each task looks up its run's folder in the submission's list by its array index
// and runs `sweep task` there, on the shared filesystem. A requeued or preempted task starts the
// same run again, which resumes from its last checkpoint. Queue states come from squeue (and sacct
// where accounting is on) and are mapped back to runs through the submissions kept in slurm/.
import { execFile } from "node:child_process";
import { mkdir, readFile } from "node:fs/promises";
import path from "node:path";
import { writeFileAtomic } from "../data/files.ts";
import type { PlannedRun, SweepPlan } from "./plan.ts";
import { REPO } from "./local.ts";
import type { SlurmSettings } from "./spec.ts";

export interface Submission {
  jobId: string;
  at: string;
  script: string;
  /** Run folder names, in array-index order. */
  runs: string[];
}

export interface QueueState {
  /** Slurm's state: PENDING, RUNNING, COMPLETED, FAILED, TIMEOUT, ... */
  state: string;
  reason: string;
  /** "<job>_<index>" */
  task: string;
}

const shq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** The batch script of one submission (an array over `count` runs listed in `listFile`). */
export function sbatchScript(o: { plan: SweepPlan; listFile: string; count: number; slurm: SlurmSettings; node?: string }): string {
  const s = o.slurm;
  const logs = path.join(o.plan.out, "slurm", "logs");
  const lines = [
    "#!/bin/bash",
    `#SBATCH --job-name=${`finalbn-${o.plan.name}`.slice(0, 64)}`,
    `#SBATCH --array=0-${o.count - 1}${s.maxParallel ? `%${s.maxParallel}` : ""}`,
    `#SBATCH --output=${logs}/%A_%a.out`,
    // A requeued task appends to its log instead of starting it afresh.
    "#SBATCH --open-mode=append",
    `#SBATCH --chdir=${REPO}`,
    "#SBATCH --ntasks=1",
    ...(s.partition ? [`#SBATCH --partition=${s.partition}`] : []),
    ...(s.account ? [`#SBATCH --account=${s.account}`] : []),
    ...(s.qos ? [`#SBATCH --qos=${s.qos}`] : []),
    ...(s.gres ? [`#SBATCH --gres=${s.gres}`] : []),
    ...(s.cpusPerTask ? [`#SBATCH --cpus-per-task=${s.cpusPerTask}`] : []),
    ...(s.mem ? [`#SBATCH --mem=${s.mem}`] : []),
    ...(s.time ? [`#SBATCH --time=${s.time}`] : []),
    s.requeue === false ? "#SBATCH --no-requeue" : "#SBATCH --requeue",
    ...(s.extra ?? []).map((x) => `#SBATCH ${x}`),
    "set -euo pipefail",
    `RUN_DIR=$(sed -n "$((SLURM_ARRAY_TASK_ID + 1))p" ${shq(o.listFile)})`,
    `echo "finalbn sweep ${o.plan.name}: task \${SLURM_ARRAY_JOB_ID}_\${SLURM_ARRAY_TASK_ID} (restart \${SLURM_RESTART_COUNT:-0}) on $(hostname): $RUN_DIR"`,
    `exec ${shq(o.node ?? s.node ?? process.execPath)} --import tsx ${shq(path.join(REPO, "src", "cli", "sweep.ts"))} task "$RUN_DIR"`,
    "",
  ];
  return lines.join("\n");
}

export interface Exec {
  (file: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string } | undefined>;
}

/** Run a command; undefined when it is not installed. */
export const exec: Exec = (file, args) =>
  new Promise((resolve) => {
    execFile(file, args, { timeout: 60_000 }, (err, stdout, stderr) => {
      if ((err as NodeJS.ErrnoException | null)?.code === "ENOENT") return resolve(undefined);
      resolve({ code: err ? (typeof err.code === "number" ? err.code : 1) : 0, stdout, stderr });
    });
  });

/** Write the script and the run list, submit them with sbatch (unless dryRun) and record the submission. */
export async function submitSlurm(
  plan: SweepPlan,
  runs: readonly PlannedRun[],
  opts: { slurm: SlurmSettings; node?: string; dryRun?: boolean; exec?: Exec },
): Promise<{ jobId?: string; script: string }> {
  if (!runs.length) throw new Error("no runs to submit");
  const dir = path.join(plan.out, "slurm");
  await mkdir(path.join(dir, "logs"), { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  const listFile = path.join(dir, `array-${stamp}.txt`);
  const script = path.join(dir, `array-${stamp}.sbatch`);
  await writeFileAtomic(listFile, runs.map((r) => r.dir).join("\n") + "\n");
  await writeFileAtomic(script, sbatchScript({ plan, listFile, count: runs.length, slurm: opts.slurm, node: opts.node }));
  if (opts.dryRun) return { script };
  const r = await (opts.exec ?? exec)("sbatch", ["--parsable", script]);
  if (!r) throw new Error("sbatch not found: is this a Slurm login node? (or use --executor local)");
  if (r.code !== 0) throw new Error(`sbatch failed: ${(r.stderr || r.stdout).trim().split("\n")[0]}`);
  const jobId = r.stdout.trim().split(";")[0];
  const submission: Submission = { jobId, at: new Date().toISOString(), script, runs: runs.map((x) => x.id) };
  await writeFileAtomic(path.join(dir, "submissions.jsonl"), (await readSubmissionsText(plan)) + JSON.stringify(submission) + "\n");
  return { jobId, script };
}

const readSubmissionsText = (plan: SweepPlan) => readFile(path.join(plan.out, "slurm", "submissions.jsonl"), "utf8").catch(() => "");

export async function readSubmissions(plan: SweepPlan): Promise<Submission[]> {
  return (await readSubmissionsText(plan))
    .split("\n")
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as Submission);
}

/**
 * Each run's state in the queue, from its latest submission: squeue (pending, running, and recently
 * ended tasks) and sacct (ended tasks, where accounting is on). Runs the scheduler no longer knows
 * are absent; an empty map where Slurm is not installed.
 */
export async function queueStates(plan: SweepPlan, run: Exec = exec): Promise<Map<string, QueueState>> {
  const states = new Map<string, QueueState>();
  for (const sub of await readSubmissions(plan)) {
    const byTask = new Map<string, QueueState>();
    const acct = await run("sacct", ["--noheader", "--parsable2", "--allocations", `--jobs=${sub.jobId}`, "--format=JobID,State,Reason"]);
    if (acct?.code === 0) for (const q of parseLines(acct.stdout)) byTask.set(q.task, q);
    const sq = await run("squeue", ["--noheader", "--array", "--states=all", `--jobs=${sub.jobId}`, "--format=%i|%T|%r"]);
    if (sq?.code === 0) for (const q of parseLines(sq.stdout)) byTask.set(q.task, q);
    for (const [task, q] of byTask) {
      const index = Number(task.split("_")[1]);
      const id = sub.runs[index];
      // The latest submission of a run speaks for it: later lines overwrite earlier ones.
      if (id !== undefined) states.set(id, q);
    }
  }
  return states;
}

function parseLines(text: string): QueueState[] {
  return text
    .split("\n")
    .map((l) => l.trim().split("|"))
    .filter((c) => /^\d+_\d+$/.test(c[0] ?? ""))
    .map(([task, state, reason]) => ({ task, state: (state ?? "").split(" ")[0], reason: reason ?? "" }));
}

/** Queue states that mean a task is still to run or running. */
export const QUEUED = new Set(["PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESIZING", "SUSPENDED"]);
export const ACTIVE = new Set(["RUNNING", "COMPLETING", "STAGE_OUT", "SIGNALING"]);
/** Ended without the run finishing, in ways the task cannot record itself (killed at the time limit, out of memory, ...). */
export const ENDED_BADLY = new Set(["FAILED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "CANCELLED", "BOOT_FAIL", "DEADLINE", "PREEMPTED"]);
