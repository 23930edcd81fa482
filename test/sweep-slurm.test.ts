// A real single-node Slurm cluster (Debian's slurm-wlm and munge): munged, slurmctld and slurmd
// started here with a generated slurm.conf, a tiny sweep submitted as one job array (2 ratios x
// 2 seeds x both variants, 32 px, 1/16 of the channels, 2 epochs), one array task requeued while
// it trains, and then: every run done, the requeued one resumed from its checkpoint, and the
// collected table equal to the one the local executor gives on the same spec (the runs are
// deterministic). Skipped, saying why, where Slurm is not installed or this is not root.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { planSweep, type PlannedRun, type SweepPlan } from "../src/sweep/plan.ts";
import { runSweep, sweepStatus } from "../src/sweep/run.ts";
import { collectSweep } from "../src/sweep/collect.ts";
import { readAttempts, readHistory, DONE_FILE } from "../src/sweep/run-files.ts";
import { statusText } from "../src/sweep/status.ts";
import { readSubmissions } from "../src/sweep/slurm.ts";

const DAEMONS = ["munged", "slurmctld", "slurmd"];
const CLIENTS = ["sbatch", "squeue", "scontrol", "sinfo", "scancel"];
const which = (cmd: string) =>
  [...(process.env.PATH ?? "").split(":"), "/usr/sbin", "/sbin"].map((d) => path.join(d, cmd)).find((f) => existsSync(f));
const missing = [...DAEMONS, ...CLIENTS].filter((c) => !which(c));
const SKIP = missing.length
  ? `Slurm is not installed (no ${missing.join(", ")}; Debian: apt-get install -y slurm-wlm munge)`
  : process.getuid?.() !== 0
    ? "starting a Slurm cluster needs root (slurmd runs jobs as their user)"
    : undefined;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const run = (cmd: string, args: string[]) => {
  const r = spawnSync(which(cmd) ?? cmd, args, { encoding: "utf8", env: process.env });
  return { code: r.status ?? 1, out: `${r.stdout ?? ""}${r.stderr ?? ""}`.trim() };
};

let tmp = "";
const pidFiles: string[] = [];
const jobs: string[] = [];

/** munged on its own socket and key, then slurmctld and slurmd, all on files under `dir`; waits for the node to be idle. */
async function startCluster(dir: string): Promise<void> {
  for (const sub of ["state", "spool", "log"]) await mkdir(path.join(dir, sub), { recursive: true });
  const key = path.join(dir, "munge.key");
  await writeFile(key, randomBytes(1024));
  await chmod(key, 0o600);
  const socket = path.join(dir, "munge.sock");
  pidFiles.push(path.join(dir, "munged.pid"));
  const munged = run("munged", ["--force", `--socket=${socket}`, `--key-file=${key}`, `--pid-file=${pidFiles[0]}`, `--log-file=${dir}/log/munged.log`, `--seed-file=${dir}/munged.seed`]);
  assert.equal(munged.code, 0, `munged: ${munged.out}`);
  // Ports of our own, so a cluster already on this machine is left alone.
  const port = 20000 + (process.pid % 2000) * 2;
  const conf = path.join(dir, "slurm.conf");
  await writeFile(
    conf,
    [
      "ClusterName=finalbntest",
      "SlurmctldHost=localhost",
      `SlurmctldPort=${port}`,
      `SlurmdPort=${port + 1}`,
      "AuthType=auth/munge",
      `AuthInfo=socket=${socket}`,
      "CredType=cred/munge",
      "SlurmUser=root",
      "SlurmdUser=root",
      `StateSaveLocation=${dir}/state`,
      `SlurmdSpoolDir=${dir}/spool`,
      `SlurmctldPidFile=${dir}/slurmctld.pid`,
      `SlurmdPidFile=${dir}/slurmd.pid`,
      `SlurmctldLogFile=${dir}/log/slurmctld.log`,
      `SlurmdLogFile=${dir}/log/slurmd.log`,
      "ProctrackType=proctrack/linuxproc",
      "TaskPlugin=task/none",
      "SelectType=select/cons_tres",
      "SelectTypeParameters=CR_CPU",
      "SchedulerType=sched/backfill",
      "JobAcctGatherType=jobacct_gather/none",
      "AccountingStorageType=accounting_storage/none",
      "MpiDefault=none",
      "ReturnToService=2",
      `NodeName=localhost NodeHostname=${os.hostname()} CPUs=${os.cpus().length} RealMemory=1000 State=UNKNOWN`,
      "PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP",
      "",
    ].join("\n"),
  );
  process.env.SLURM_CONF = conf;
  pidFiles.push(path.join(dir, "slurmctld.pid"), path.join(dir, "slurmd.pid"));
  for (const [daemon, args] of [["slurmctld", []], ["slurmd", ["-N", "localhost"]]] as const) {
    const r = run(daemon, [...args]);
    assert.equal(r.code, 0, `${daemon}: ${r.out}`);
  }
  for (let i = 0; i < 120; i++) {
    if (run("sinfo", ["--noheader", "--format=%T"]).out === "idle") return;
    await sleep(250);
  }
  assert.fail(`the node did not become idle: ${run("sinfo", []).out}\n${readFileSync(path.join(dir, "log", "slurmctld.log"), "utf8").slice(-2000)}`);
}

function stopCluster(): void {
  for (const job of jobs) run("scancel", [job]);
  // The daemons we started, by their pid files, slurmd first.
  for (const file of [...pidFiles].reverse()) {
    if (!existsSync(file)) continue;
    const pid = Number(readFileSync(file, "utf8").trim());
    try {
      process.kill(pid, "SIGTERM");
    } catch {
      // already gone
    }
  }
}

before(async () => {
  if (SKIP) return;
  tmp = await mkdtemp(path.join(os.tmpdir(), "finalbn-slurm-"));
  await startCluster(path.join(tmp, "cluster"));
});
after(async () => {
  if (!tmp) return;
  stopCluster();
  await sleep(500);
  await rm(tmp, { recursive: true, force: true });
});

const spec = (out: string) => ({
  name: "tiny",
  out,
  backend: "cpu",
  pixelCache: path.join(tmp, "cache", "pixels"),
  leafCache: path.join(tmp, "cache", "leaves"),
  fixed: { size: 32, width: 0.0625, epochs: 2, batchSize: 16, lr: 0.003, trainMajority: 198, testPerClass: 20 },
  axes: { ratio: ["99:1", "90:10"], seed: [1, 2], finalBN: ["without", "with"] },
});

function logsTail(plan: SweepPlan): string {
  const dir = path.join(plan.out, "slurm", "logs");
  return existsSync(dir) ? readdirSync(dir).map((f) => `${f}:\n${readFileSync(path.join(dir, f), "utf8").slice(-600)}`).join("\n") : "(no logs)";
}

test("a tiny sweep on a real Slurm cluster: one job array, a requeued task resumes, the table equals the local executor's", { timeout: 20 * 60_000 }, async (t) => {
  if (SKIP) return t.skip(SKIP);
  const plan = planSweep(spec(path.join(tmp, "slurm-sweep")));
  assert.equal(plan.runs.length, 8);
  const started = performance.now();
  const submitted = await runSweep(plan, { executor: "slurm", slurm: { cpusPerTask: 1, maxParallel: 2, mem: "400M", time: "00:20:00" } });
  assert.ok(submitted.jobId, "sbatch gave a job id");
  jobs.push(submitted.jobId!);
  const script = await readFile(submitted.script!, "utf8");
  for (const line of ["#SBATCH --array=0-7%2", "#SBATCH --cpus-per-task=1", "#SBATCH --mem=400M", "#SBATCH --time=00:20:00", "#SBATCH --requeue"]) assert.ok(script.includes(line), line);
  const [submission] = await readSubmissions(plan);
  assert.deepEqual(submission.runs, plan.runs.map((r) => r.id), "one array task per run, in plan order");

  // Requeue the first task seen between its first checkpoint and its end; Slurm holds a requeued
  // task back for a while before it may start again, so release it at once (StartTime=now).
  let requeued: { id: string; task: string; epochs: number } | undefined;
  let released = false;
  const lines: string[] = [];
  for (;;) {
    assert.ok(performance.now() - started < 15 * 60_000, `the sweep did not finish in 15 minutes\n${logsTail(plan)}`);
    if (!requeued) {
      const target = plan.runs.find((r) => readHistory(r.dir).length >= 1 && !existsSync(path.join(r.dir, DONE_FILE)));
      if (target) {
        const task: string = `${submitted.jobId}_${target.index}`;
        const r = run("scontrol", ["requeue", task]);
        assert.equal(r.code, 0, `scontrol requeue ${task}: ${r.out}`);
        requeued = { id: target.id, task, epochs: readHistory(target.dir).length };
        lines.push(`requeued ${task} (${target.id}) after ${requeued.epochs} epoch(s), at ${((performance.now() - started) / 1000).toFixed(0)} s`);
      }
    } else if (!released) {
      const state = run("squeue", ["--noheader", "--array", `--jobs=${requeued.task}`, "--format=%T"]).out;
      if (state === "PENDING") released = run("scontrol", ["update", `JobId=${requeued.task}`, "StartTime=now"]).code === 0;
    }
    const statuses = await sweepStatus(plan);
    const failed = statuses.filter((s) => s.state === "failed");
    assert.deepEqual(failed.map((s) => `${s.run.id}: ${s.detail}`), [], `no run fails\n${logsTail(plan)}`);
    if (statuses.every((s) => s.state === "done")) {
      lines.push(statusText(plan, statuses));
      break;
    }
    await sleep(200);
  }
  const slurmSeconds = (performance.now() - started) / 1000;
  assert.ok(requeued, "a task was requeued while it trained");

  const attempts = readAttempts(path.join(plan.out, "runs", requeued.id));
  const last = attempts.at(-1)!;
  assert.ok(attempts.length >= 2, `the requeued run ran again: ${JSON.stringify(attempts)}`);
  assert.notEqual(attempts[0].outcome, "done", "its first attempt was stopped");
  assert.equal(last.outcome, "done");
  assert.equal(last.slurmJob, requeued.task, "the same array task ran it again");
  assert.ok((last.restart ?? 0) >= 1, "Slurm counted the restart");
  assert.ok((last.resumedAfter ?? 0) >= requeued.epochs, `it resumed from its checkpoint (after epoch ${last.resumedAfter}), not from scratch`);
  lines.push(`attempts of ${requeued.id}:`, ...attempts.map((a) => `  ${JSON.stringify(a)}`));

  const localPlan = planSweep(spec(path.join(tmp, "local-sweep")));
  const localStarted = performance.now();
  const local = await runSweep(localPlan, { executor: "local", jobs: 2 });
  assert.deepEqual(local.local!.failed, []);
  const localSeconds = (performance.now() - localStarted) / 1000;

  const fromSlurm = await collectSweep(plan);
  const fromLocal = await collectSweep(localPlan);
  assert.equal(fromSlurm.rows.length, 8);
  assert.deepEqual(fromSlurm.rows, fromLocal.rows, "the same table from Slurm (with a requeue) and from the local pool");
  lines.push(
    `slurm: 8 runs in ${slurmSeconds.toFixed(0)} s (array %2, one requeue); local --jobs 2: ${localSeconds.toFixed(0)} s`,
    ...fromSlurm.rows.map((r) => `  ${r.ratio} seed ${r.seed} ${r.finalBN ? "with   " : "without"} final F1 ${r.finalF1!.toFixed(3)} best ${r.bestF1!.toFixed(3)} train loss ${r.finalTrainLoss!.toFixed(4)}`),
  );
  for (const line of lines.join("\n").split("\n")) t.diagnostic(line);
});
