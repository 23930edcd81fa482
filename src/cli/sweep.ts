// npm run sweep -- plan|run|status|collect SPEC: a grid of runs (src/sweep/spec.ts) planned,
// trained on this machine (--executor local --jobs N) or submitted as one Slurm job array
// (--executor slurm), followed, and collected into one table and report. `task RUN_DIR` is what
// each local slot and each array task runs: one run, resumed from its checkpoint if it has one.
import { numberFlag, parseFlags, runCli, UsageError, type FlagSpec } from "./args.ts";
import { collectedText, collectSweep, writeSweepResults } from "../sweep/collect.ts";
import { planSweep, planTable } from "../sweep/plan.ts";
import { queueStates } from "../sweep/slurm.ts";
// Training (tfjs, sharp) is imported only by the commands that train: plan, status and collect,
// run often on a login node, start in a second.
import { readSpec, SpecError, type SlurmSettings } from "../sweep/spec.ts";
import { runStatuses, statusText } from "../sweep/status.ts";

const COMMANDS: Record<string, { summary: string; flags: Record<string, FlagSpec> }> = {
  plan: { summary: "plan SPEC: print the expanded runs and their folders", flags: { json: { type: "boolean", help: "print the plan as JSON" } } },
  run: {
    summary: "run SPEC: prepare the splits and pixel cache, then train every run not done yet (failed ones again)",
    flags: {
      executor: { type: "string", help: "local | slurm", default: "local" },
      jobs: { type: "string", help: "local: runs at once (default: one per core on the cpu backend, 1 on a GPU)" },
      devices: { type: "string", help: "local: comma-separated CUDA devices, one per slot in turn (e.g. 0,1)" },
      partition: { type: "string", help: "slurm: --partition" },
      gres: { type: "string", help: "slurm: --gres per task (e.g. gpu:1)" },
      "cpus-per-task": { type: "string", help: "slurm: --cpus-per-task" },
      mem: { type: "string", help: "slurm: --mem per task (e.g. 16G)" },
      time: { type: "string", help: "slurm: --time per task (e.g. 02:00:00)" },
      "max-parallel": { type: "string", help: "slurm: the array's % limit, tasks at once" },
      account: { type: "string", help: "slurm: --account" },
      qos: { type: "string", help: "slurm: --qos" },
      "no-requeue": { type: "boolean", help: "slurm: --no-requeue (default --requeue: a requeued task resumes)" },
      node: { type: "string", help: "slurm: the node binary on the compute nodes (default: this one)" },
      "dry-run": { type: "boolean", help: "slurm: write the sbatch script, do not submit it" },
    },
  },
  status: {
    summary: "status SPEC: counts of done, running, pending and failed runs; the failed ones with their errors",
    flags: { all: { type: "boolean", help: "list every run, not only the failed and running ones" }, json: { type: "boolean", help: "print every run's state as JSON" } },
  },
  collect: { summary: "collect SPEC: sweep.csv, sweep.json and report.html in the sweep folder", flags: { out: { type: "string", help: "write them to this folder instead" } } },
  task: { summary: "task RUN_DIR: train one prepared run (what each local slot and Slurm array task runs)", flags: { backend: { type: "string", help: "auto | cuda | webgpu | cpu (default: the spec's)" } } },
};

const USAGE = `usage: npm run sweep -- <command> SPEC [flags]

${Object.values(COMMANDS)
  .map((c) => `  ${c.summary}`)
  .join("\n")}

npm run sweep -- <command> --help lists a command's flags.`;

runCli(async () => {
  const [command, target, ...rest] = process.argv.slice(2);
  if (command === undefined || command === "--help" || command === "-h") {
    console.log(USAGE);
    return;
  }
  const def = COMMANDS[command];
  if (!def) throw new UsageError(`unknown command "${command}": one of ${Object.keys(COMMANDS).join(", ")} (see --help)`);
  if (target === "--help" || rest.includes("--help")) parseFlags("sweep", def.summary, def.flags, ["--help"]);
  if (target === undefined || target.startsWith("--")) throw new UsageError(`missing ${command === "task" ? "RUN_DIR" : "SPEC"}: npm run sweep -- ${command} ${command === "task" ? "RUN_DIR" : "SPEC"} (see --help)`);
  const f = parseFlags("sweep", def.summary, def.flags, rest) as Record<string, string | boolean | undefined>;

  if (command === "task") {
    const { runTask } = await import("../sweep/task.ts");
    const result = await runTask(target, { backend: f.backend as string | undefined });
    return result.outcome === "done" ? 0 : 1;
  }
  const plan = await readSpec(target)
    .then((spec) => planSweep(spec))
    .catch((e) => {
      throw e instanceof SpecError ? new UsageError(e.message) : e;
    });

  if (command === "plan") {
    if (f.json) console.log(JSON.stringify(plan, null, 2));
    else console.log(`${planTable(plan)}\n\n${plan.runs.length} runs in ${plan.out}/runs, ${plan.splits.length} split(s)`);
    return;
  }
  if (command === "status") {
    const statuses = await runStatuses(plan, await queueStates(plan));
    if (f.json) console.log(JSON.stringify(statuses.map((s) => ({ run: s.run.id, state: s.state, detail: s.detail, epochsDone: s.epochsDone })), null, 2));
    else console.log(statusText(plan, statuses, { all: Boolean(f.all) }));
    return;
  }
  if (command === "collect") {
    const collected = await collectSweep(plan, { queue: await queueStates(plan) });
    const files = await writeSweepResults(collected, { dir: f.out as string | undefined });
    console.log(`${collectedText(collected)}\n\n${files.csv}\n${files.json}\nopen ${files.html}`);
    return;
  }

  const executor = f.executor as string;
  if (executor !== "local" && executor !== "slurm") throw new UsageError(`--executor must be local or slurm, got "${executor}"`);
  const n = (name: string) => numberFlag(name, f[name] as string | undefined, { integer: true, min: 1 });
  const slurm: SlurmSettings = Object.fromEntries(
    Object.entries({
      partition: f.partition,
      gres: f.gres,
      cpusPerTask: n("cpus-per-task"),
      mem: f.mem,
      time: f.time,
      maxParallel: n("max-parallel"),
      account: f.account,
      qos: f.qos,
      node: f.node,
      requeue: f["no-requeue"] ? false : undefined,
    }).filter(([, v]) => v !== undefined),
  );
  const { runSweep } = await import("../sweep/run.ts");
  const { startBackend } = await import("../backends/index.ts");
  const { defaultWorkers } = await import("../train/pool.ts");
  const result = await runSweep(plan, {
    executor,
    // One run per core on the cpu backend, one at a time on a GPU: which one "auto" gives, starting it tells.
    jobs: n("jobs") ?? (executor === "local" ? defaultWorkers((await startBackend({ prefer: plan.backend, log: () => {} })).name) : 1),
    devices: (f.devices as string | undefined)?.split(",").map((d) => d.trim()),
    slurm,
    dryRun: Boolean(f["dry-run"]),
    log: console.log,
  });
  if (executor === "slurm") {
    if (result.jobId) console.log(`follow it: npm run sweep -- status ${target}   (logs: ${plan.out}/slurm/logs)`);
    return;
  }
  const collected = await collectSweep(plan);
  const files = await writeSweepResults(collected);
  console.log(`\n${collectedText(collected)}\n\nopen ${files.html}`);
  const failed = result.local?.failed ?? [];
  if (failed.length) {
    console.log(`${failed.length} of ${result.started.length} runs failed (errors in their folders; npm run sweep -- status ${target}); running the same command again retries them`);
    return 1;
  }
});
