// npm run bench: how fast training runs here, and how much of that our kernels buy.
//
//   1. layers  every distinct convolution of VGG19 and ResNet34: forward pass, input gradient and
//              filter gradient, tfjs's stock kernel against ours in the same run (ms, GFLOP/s, ratio);
//   2. steps   whole training steps (the learner's trainStep) of VGG19 with and without the final
//              BN, in images per second, with our kernels (and the stock ones where they finish);
//   3. torch   with --with-torch, the same VGG19 steps in PyTorch (bench/torch_step.py) and the ratio,
//              PyTorch on the same number of threads as ours;
//   4. threads with --parts threads (cpu), each convolution of step 1 with our kernels on each count
//              of --threads (default 1 and all), by the wall clock: what the thread pool buys.
//
//   npm run bench -- [--backend cpu|webgpu] [--size PX] [--batch N] [--parts layers,steps] [--json] [--out FILE]
//   npm run bench -- --backend cpu --parts steps --threads 1,2 [--with-torch]
//   npm run bench -- --backend cpu --parts threads --models vgg19 --layers conv2_2,conv3_2 --threads 1,2 --min-thread-speedup 1.5
//
// Sizes default to what the backend can do in a few minutes: 32 px (batch 4 on cpu, 2 on a software
// GPU such as lavapipe); 224 px, batch 32 on a real GPU. Read the ratios: absolute times move with
// whatever else the machine is doing, ratios taken side by side in one run much less.
import os from "node:os";
import * as tf from "@tensorflow/tfjs";
import { numberFlag, parseFlags, runCli, UsageError } from "../src/cli/args.ts";
import { writeFileAtomic } from "../src/data/files.ts";
import { startBackend, type StartedBackend } from "../src/backends/index.ts";
import { kernelThreads, setThreads } from "../src/backends/cpu/thread-pool.ts";
import { BENCH_MODELS, modelConvs, type BenchModel } from "./conv-shapes.ts";
import { benchOp, benchThreads, CONV_OPS, modelTotal, threadTotal, type ConvOp, type OpRow, type ThreadRow } from "./conv-ops.ts";
import { cpuSwitch, webGpuSwitch, type KernelSwitch, type Kernels } from "./kernel-switch.ts";
import { benchTrainSteps, threadSpeedups, type StepRow } from "./train-step.ts";
import { parallelCapacity } from "./cores.ts";
import { findTorchPython, runTorchSteps, torchCandidates, type TorchResult } from "./torch.ts";
import { fixed, textTable } from "./table.ts";

const PARTS = ["layers", "steps", "threads"] as const;
type Part = (typeof PARTS)[number];

/** Parse "a,b" against the allowed names, in the order given. */
function listFlag<T extends string>(name: string, value: string | undefined, allowed: readonly T[]): T[] {
  if (value === undefined) return [...allowed];
  const items = value.split(",").map((s) => s.trim()).filter(Boolean);
  const bad = items.filter((s) => !(allowed as readonly string[]).includes(s));
  if (bad.length || items.length === 0) throw new UsageError(`--${name} takes a comma-separated list of ${allowed.join(", ")}; got "${value}"`);
  return items as T[];
}

function parseBlock(value: string | undefined): { rowsPerThread: number; colsPerThread: number } | undefined {
  if (value === undefined) return undefined;
  const m = /^([48])x([48])$/.exec(value);
  if (!m) throw new UsageError(`--block must be 4x4, 4x8, 8x4 or 8x8, got "${value}"`);
  return { rowsPerThread: Number(m[1]), colsPerThread: Number(m[2]) };
}

function switchFor(backend: StartedBackend, block: string | undefined): KernelSwitch {
  if (backend.name === "cpu" && block) throw new UsageError("--block is for our webgpu kernels; the cpu backend has none");
  if (backend.name === "cpu") return cpuSwitch();
  if (backend.name === "webgpu") return webGpuSwitch({ block: parseBlock(block) });
  throw new UsageError(`the bench covers the cpu and webgpu backends; ${backend.name} has no kernels of ours`);
}

runCli(async () => {
  const flags = parseFlags("bench", "Time convolution kernels (stock tfjs against ours) and whole training steps.", {
    backend: { type: "string", help: "cpu or webgpu (default: as training would choose; FINALBN_BACKEND also works)" },
    parts: { type: "string", help: "what to time: layers, steps, threads (cpu: our convolutions on each --threads count)", default: "layers,steps" },
    models: { type: "string", help: "networks whose layers to time: vgg19, resnet34", default: "vgg19,resnet34" },
    ops: { type: "string", help: "forward, input (gradient), filter (gradient)", default: "forward,input,filter" },
    layers: { type: "string", help: "only the shapes of these layers, e.g. conv1_1,conv5_4,stem" },
    size: { type: "string", help: "image size in px (default 32; 224 on a real GPU)" },
    batch: { type: "string", help: "batch size (default 4 on cpu, 2 on a software GPU, 32 on a real GPU)" },
    arch: { type: "string", help: "network of the training steps: vgg19 or vgg19_bn", default: "vgg19" },
    width: { type: "string", help: "channel width multiplier of the networks (every part; the classroom uses 0.125)", default: "1" },
    "stock-steps": { type: "boolean", help: "on cpu, also time steps with the stock kernels (minutes); webgpu always does" },
    rounds: { type: "string", help: "timed rounds per contender (the median is reported)", default: "3" },
    "min-ms": { type: "string", help: "time each round aims for", default: "300" },
    block: { type: "string", help: "register block per thread of all our webgpu kernels, 4x4 to 8x8 (default: each kernel's own)" },
    "with-torch": { type: "boolean", help: "also run the VGG19 steps in PyTorch (bench/torch_step.py) and print the ratio" },
    python: { type: "string", help: "python with torch for --with-torch (default: $FINALBN_PYTHON, python3, /usr/bin/python3)" },
    "min-speedup": { type: "string", help: "fail (exit 1) if a network's total for an op is less than this many times stock (a speed guard for CI)" },
    threads: { type: "string", help: "cpu: kernel thread counts to time the steps on, e.g. 1,2 (default: FINALBN_THREADS, else one per core)" },
    "min-thread-speedup": { type: "string", help: "fail (exit 1) if our convolutions on the most threads of --threads are less than this many times faster than on 1 (the threads part's three products together, else the steps'; a CI guard)" },
    json: { type: "boolean", help: "print the results as one JSON object instead of tables" },
    out: { type: "string", help: "also write the JSON results to this file" },
  });
  const parts = listFlag<Part>("parts", flags.parts, PARTS);
  const models = listFlag<BenchModel>("models", flags.models, BENCH_MODELS);
  const ops = listFlag<ConvOp>("ops", flags.ops, CONV_OPS);
  const layerNames = flags.layers?.split(",").map((s) => s.trim());
  const arches = listFlag("arch", flags.arch, ["vgg19", "vgg19_bn"] as const);
  if (arches.length > 1) throw new UsageError(`--arch takes one network, got "${flags.arch}"`);
  const arch = arches[0]!;
  const width = numberFlag("width", flags.width, { min: 1 / 64, max: 1 })!;
  const rounds = numberFlag("rounds", flags.rounds, { integer: true, min: 1, max: 50 })!;
  const minMs = numberFlag("min-ms", flags["min-ms"], { min: 1, max: 60_000 })!;
  const minSpeedup = numberFlag("min-speedup", flags["min-speedup"], { min: 0 });
  if (minSpeedup !== undefined && !parts.includes("layers")) throw new UsageError("--min-speedup checks the per-layer totals: leave layers in --parts");
  if (layerNames) {
    const known = new Set(models.flatMap((m) => modelConvs(m, 224).flatMap((c) => c.names)));
    const unknown = layerNames.filter((name) => !known.has(name));
    if (unknown.length) throw new UsageError(`--layers: ${unknown.join(", ")} ${unknown.length > 1 ? "are not layers" : "is not a layer"} of ${models.join(", ")} (e.g. conv3_4, stem, layer2_0/downsample)`);
  }
  parseBlock(flags.block);
  if (flags.backend && !["cpu", "webgpu"].includes(flags.backend)) throw new UsageError(`--backend must be cpu or webgpu, got "${flags.backend}"`);
  const threadList = flags.threads?.split(",").map((t) => numberFlag("threads", t.trim(), { integer: true, min: 1, max: 256 })!);
  const minThreadSpeedup = numberFlag("min-thread-speedup", flags["min-thread-speedup"], { min: 0 });
  if (minThreadSpeedup !== undefined && ((!parts.includes("steps") && !parts.includes("threads")) || !threadList?.includes(1) || Math.max(...threadList) < 2)) {
    throw new UsageError("--min-thread-speedup compares our convolutions on 1 thread and on more: put threads or steps in --parts and give --threads 1,N");
  }
  // The pool starts with the backend, as many threads as the most asked for.
  if (threadList) process.env.FINALBN_THREADS = String(Math.max(...threadList));

  const progress = (line: string) => console.error(line);
  const backend = await startBackend({ prefer: (flags.backend as "cpu" | "webgpu" | undefined) ?? "auto", log: progress });
  if (flags.backend && backend.name !== flags.backend) throw new UsageError(`--backend ${flags.backend} did not start: ${backend.reason}`);
  const realGpu = backend.name !== "cpu" && backend.details.software !== "yes";
  const size = numberFlag("size", flags.size, { integer: true, min: 32, max: 512 }) ?? (realGpu ? 224 : 32);
  const batch = numberFlag("batch", flags.batch, { integer: true, min: 2, max: 256 }) ?? (realGpu ? 32 : backend.name === "cpu" ? 4 : 2);
  const kernels = switchFor(backend, flags.block);
  const stockSteps = flags["stock-steps"] || backend.name !== "cpu";
  if (flags["with-torch"] && !parts.includes("steps")) throw new UsageError("--with-torch compares training steps: leave steps in --parts");
  // Before the long part: a missing PyTorch should not cost the whole run first.
  const torchPython = flags["with-torch"] ? await findTorchPython(torchCandidates(flags.python)) : undefined;

  const layers: OpRow[] = [];
  let totals: OpRow[] = [];
  const threadRows: ThreadRow[] = [];
  let threadTotals: ThreadRow[] = [];
  let steps: StepRow[] = [];
  let torch: TorchResult | undefined;
  const capacities: number[] = []; // filled around the thread timings, below
  const result = () => ({
    date: new Date().toISOString(),
    machine: { backend: backend.name, device: backend.device, cpus: `${os.cpus().length} × ${os.cpus()[0]?.model.trim()}`, node: process.version, tfjs: tf.version.tfjs },
    options: { size, batch, arch, width, rounds, minMs, block: flags.block, clock: kernels.clock },
    layers,
    totals,
    threads: [...threadRows, ...threadTotals],
    parallelCapacity: capacities,
    steps,
    torch,
  });
  // With --out, what is measured so far is on disk after every row: a crash keeps it.
  const save = async () => {
    if (flags.out) await writeFileAtomic(flags.out, JSON.stringify(result(), null, 2) + "\n");
  };

  // 1. Per layer.
  if (parts.includes("layers")) {
    for (const model of models) {
      let shapes = modelConvs(model, size, width);
      if (layerNames) shapes = shapes.filter((s) => s.names.some((name) => layerNames.includes(name)));
      for (const shape of shapes) {
        for (const op of ops) {
          const row = await benchOp(shape, op, {
            batch,
            kernels,
            minMs,
            rounds,
            stockBatchOne: (o) => backend.name === "cpu" && o === "filter",
            // On the cpu the stock filter gradient takes seconds and the tests cover every kernel.
            check: backend.name === "webgpu",
          });
          layers.push(row);
          await save();
          progress(`${model} ${shape.name} ${op}: stock ${row.stockMs.toFixed(1)} ms, ours ${fixed(row.oursMs, 1, " ms")}`);
        }
      }
    }
  }
  totals = models.flatMap((m) => ops.map((op) => modelTotal(layers, m, op, { subset: layerNames !== undefined }))).filter((r): r is OpRow => r !== undefined);

  await save();

  // Before and after the thread timings: how much parallel speed the machine gives right now.
  const measureCapacity = async () => {
    if (!threadList || Math.max(...threadList) < 2) return;
    const capacity = await parallelCapacity(Math.max(...threadList));
    capacities.push(capacity);
    progress(`${Math.max(...threadList)} busy threads run ${capacity.toFixed(2)}x one here now`);
  };
  if (parts.includes("threads") || parts.includes("steps")) await measureCapacity();

  // 1b. Our convolutions on each thread count.
  if (parts.includes("threads")) {
    if (backend.name !== "cpu") throw new UsageError("--parts threads times the cpu kernels' thread pool: use --backend cpu");
    const counts = threadList ?? [...new Set([1, kernelThreads()])];
    for (const model of models) {
      let shapes = modelConvs(model, size, width);
      if (layerNames) shapes = shapes.filter((s) => s.names.some((name) => layerNames.includes(name)));
      for (const shape of shapes) {
        for (const op of ops) {
          const row = await benchThreads(shape, op, { batch, threads: counts, setThreads, minMs, rounds });
          threadRows.push(row);
          progress(`${model} ${shape.name} ${op}: ${row.ms.map((ms, i) => `${counts[i]} thread(s) ${ms.toFixed(1)} ms`).join(", ")}`);
        }
      }
    }
    threadTotals = models.flatMap((m) => ops.map((op) => threadTotal(threadRows.filter((r) => r.model === m && r.op === op)))).filter((r): r is ThreadRow => r !== undefined);
    setThreads(Math.max(...counts));
    await save();
  }

  // 2. Whole training steps.
  if (parts.includes("steps")) {
    const sets: Kernels[] = stockSteps ? ["ours", "stock"] : ["ours"];
    const threads = backend.name === "cpu" ? (threadList ?? [kernelThreads()]) : undefined;
    steps = await benchTrainSteps({ arch, size, batch, width, kernels, sets, rounds, minMs, threads }, progress);
    await save();
  }
  if (parts.includes("threads") || parts.includes("steps")) await measureCapacity();
  kernels.use("ours"); // leave the backend as training has it

  // 3. PyTorch on the same machine.
  if (torchPython) {
    // On the cpu, PyTorch on the same thread counts as ours (on a GPU backend it picks its own device).
    const threads = backend.name === "cpu" ? [...new Set(steps.map((r) => r.threads))] : undefined;
    torch = await runTorchSteps({ python: torchPython, arch, size, batch, width, rounds, minMs, threads }, progress);
    await save();
  }

  if (flags.json) console.log(JSON.stringify(result(), null, 2));
  else printTables(result());
  const wrong = layers.filter((r) => r.relError !== undefined && !(r.relError <= MAX_REL_ERROR));
  for (const r of wrong) console.error(`WRONG: our ${r.op} differs from stock on ${r.layer} (${r.shape}) by ${r.relError} relative`);
  const slow = minSpeedup === undefined ? 0 : checkSpeedups(totals, minSpeedup);
  const capacity = capacities.length ? Math.min(...capacities) : undefined;
  if (capacity !== undefined && !flags.json) console.log(`\nmachine: ${Math.max(...threadList!)} busy threads ran ${capacities.map((c) => `${c.toFixed(2)}x`).join(" and ")} one (before and after the timings)`);
  let slowThreads = 0;
  if (minThreadSpeedup !== undefined && capacity !== undefined && capacity < minThreadSpeedup + 0.2) {
    // Other work holds the cores: no pool could reach the bar, so the guard cannot judge ours.
    console.error(`thread guard: not judged: ${Math.max(...threadList!)} busy threads ran only ${capacity.toFixed(2)}x one on this machine now (other work holds its cores); it needs ${(minThreadSpeedup + 0.2).toFixed(2)}x`);
  } else if (minThreadSpeedup !== undefined) {
    slowThreads = threadTotals.length ? checkThreadTotals(threadTotals, minThreadSpeedup) : checkThreadSpeedups(steps, minThreadSpeedup);
  }
  return wrong.length > 0 || slow > 0 || slowThreads > 0 ? 1 : 0;
});

/** float32 results of differently ordered sums: the tests hold ours to 1e-4 of a float64 loop. */
const MAX_REL_ERROR = 1e-3;

function printTables(r: { machine: { backend: string; device: string }; options: { size: number; batch: number; width: number; clock: string }; layers: OpRow[]; totals: OpRow[]; threads: ThreadRow[]; steps: StepRow[]; torch?: TorchResult }): void {
  const { size, batch, width } = r.options;
  console.log(`backend ${r.machine.backend} on ${r.machine.device}; ${size}x${size}, batch ${batch}${width === 1 ? "" : `, width ${width}`}; layers timed by ${r.options.clock === "cpu" ? "the CPU time of this process" : "the wall clock"}`);
  if (r.layers.length) {
    console.log("");
    console.log(layerTable([...r.layers, ...r.totals], batch));
  }
  if (r.threads.length) {
    console.log("");
    console.log(threadTable(r.threads));
  }
  if (r.steps.length) {
    console.log("");
    console.log(stepTable(r.steps, r.torch));
  }
}

/** The speed guard: every network total of every op timed must be at least `min` times stock. */
function checkSpeedups(totals: readonly OpRow[], min: number): number {
  const slow = totals.filter((t) => t.speedup === null || t.speedup < min);
  for (const t of slow) {
    console.error(`speed guard: ${t.layer} ${t.op}: ${t.speedup === null ? "no kernel of ours ran" : `${t.speedup.toFixed(1)}x stock`}, below ${min}x`);
  }
  if (slow.length === 0) console.error(`speed guard: every total is at least ${min}x stock`);
  return slow.length ? 1 : 0;
}

/** Speed-up of the most threads timed over one thread. */
function threadRatio(r: ThreadRow): number {
  const one = r.ms[r.threads.indexOf(1)]!;
  const most = r.ms[r.threads.indexOf(Math.max(...r.threads))]!;
  return one / most;
}

/**
 * The guard judges each network's three products together (their summed time on one thread over that
 * on the most): a single product's ratio moves by 0.2 from run to run on a shared machine, their sum
 * much less, and a pool that does not start or split still shows 1.0x.
 */
function checkThreadTotals(totals: readonly ThreadRow[], min: number): number {
  let slow = 0;
  for (const model of new Set(totals.map((t) => t.model))) {
    const rows = totals.filter((t) => t.model === model);
    const threads = Math.max(...rows[0]!.threads);
    const at = (r: ThreadRow, n: number) => r.ms[r.threads.indexOf(n)]!;
    const ratio = rows.reduce((sum, r) => sum + at(r, 1), 0) / rows.reduce((sum, r) => sum + at(r, threads), 0);
    const detail = rows.map((t) => `${t.op} ${threadRatio(t).toFixed(2)}x`).join(", ");
    if (ratio >= min) {
      console.error(`thread guard: ${model}'s convolutions on ${threads} threads: ${ratio.toFixed(2)}x one thread, at least ${min}x (${detail})`);
    } else {
      console.error(`thread guard: ${model}'s convolutions on ${threads} threads: ${ratio.toFixed(2)}x one thread, below ${min}x (${detail})`);
      slow++;
    }
  }
  return slow ? 1 : 0;
}

function threadTable(rows: readonly ThreadRow[]): string {
  const counts = rows[0]!.threads;
  const most = Math.max(...counts);
  const body = rows.map((r) => [
    r.layer,
    r.shape,
    r.op,
    r.count ? String(r.count) : "",
    r.gflop.toFixed(3),
    ...r.ms.map((ms) => ms.toFixed(2)),
    ...r.ms.map((ms) => (r.gflop / (ms / 1000)).toFixed(1)),
    `${threadRatio(r).toFixed(2)}x`,
  ]);
  const header = ["layer", "shape", "op", "x", "GFLOP", ...counts.map((n) => `ms, ${n} thr`), ...counts.map((n) => `GFLOP/s, ${n} thr`), `${most} vs 1`];
  return [textTable(header, body, 3), "our convolution kernels on each kernel thread count, by the wall clock (the process's CPU time would sum over threads)"].join("\n");
}

function checkThreadSpeedups(steps: readonly StepRow[], min: number): number {
  const ratios = threadSpeedups(steps);
  const slow = ratios.filter((r) => r.conv === null || r.conv < min);
  for (const r of slow) {
    console.error(`thread guard: ${r.finalBN ? "with" : "without"} final BN: convolutions on ${r.threads} threads ${r.conv === null ? "not timed" : `${r.conv.toFixed(2)}x one thread`}, below ${min}x`);
  }
  if (ratios.length === 0) console.error("thread guard: no step was timed on both 1 and more threads");
  else if (slow.length === 0) console.error(`thread guard: convolutions on more threads are at least ${min}x one thread (${ratios.map((r) => `${r.conv!.toFixed(2)}x`).join(", ")})`);
  return slow.length || ratios.length === 0 ? 1 : 0;
}

function layerTable(rows: readonly OpRow[], batch: number): string {
  const body = rows.map((r) => [
    r.layer,
    r.shape,
    r.op,
    r.count ? String(r.count) : "",
    r.gflop.toFixed(3),
    fixed(r.stockMs, 2) + (r.stockBatch < batch ? "*" : ""),
    fixed(r.oursMs, 2),
    fixed(r.stockGflops, 2),
    fixed(r.oursGflops, 2),
    fixed(r.speedup, 1, "x"),
    r.relError === undefined ? "" : r.relError.toExponential(1),
  ]);
  const table = textTable(["layer", "shape", "op", "x", "GFLOP", "stock ms", "ours ms", "stock GFLOP/s", "ours GFLOP/s", "speed-up", "vs stock"], body, 3);
  const notes = [
    "x: convolutions of the network with this shape (the totals weight each shape by it); ours '-': the stock kernel handles this case here",
  ];
  if (rows.some((r) => r.relError !== undefined)) notes.push("vs stock: largest difference of our result from the stock kernel's on the same inputs, relative to its largest value");
  if (rows.some((r) => r.stockBatch < batch)) notes.push(`*: stock kernel run once on batch 1 and scaled by ${batch} (its cost is linear in the batch)`);
  return [table, ...notes].join("\n");
}

function stepTable(rows: readonly StepRow[], torch: TorchResult | undefined): string {
  const torchRow = (r: StepRow) => torch?.rows.find((x) => x.finalBN === r.finalBN && (x.threads === null || x.threads === r.threads));
  const body = rows.map((r) => {
    const t = torchRow(r);
    return [
      `${r.arch} ${r.finalBN ? "with" : "without"} final BN`,
      r.kernels,
      `${r.size} px, batch ${r.batch}${r.width === 1 ? "" : `, width ${r.width}`}`,
      String(r.threads),
      r.clock,
      r.msPerStep.toFixed(1),
      r.imagesPerSec.toFixed(2),
      r.gflops.toFixed(1),
      r.convShare === undefined ? "-" : `${(100 * r.convShare).toFixed(0)}%`,
      ...(torch ? [t ? `${t.imagesPerSec.toFixed(2)} (${t.threads ?? "-"}, ${t.clock})` : "-", t ? (r.imagesPerSec / t.imagesPerSec).toFixed(3) : "-"] : []),
    ];
  });
  const header = ["training step", "kernels", "setup", "threads", "clock", "ms/step", "images/s", "GFLOP/s", "in convs", ...(torch ? ["torch images/s (threads, clock)", "tfjs/torch"] : [])];
  const lines = [textTable(header, body, 3)];
  lines.push("clock: cpu = CPU time of this process (every row on one thread), wall = wall clock (a row on more threads: CPU time would sum over them)");
  lines.push("GFLOP/s: the convolutions' FLOPs of a step (forward, both gradients) over its time; in convs: share of the step's wall time inside our convolution kernels");
  const find = (bn: boolean, kernels: string) => rows.filter((r) => r.finalBN === bn && r.kernels === kernels);
  for (const bn of [false, true]) {
    for (const o of find(bn, "ours")) {
      const s = find(bn, "stock").find((r) => r.threads === o.threads);
      if (s) lines.push(`${o.arch} ${bn ? "with" : "without"} final BN, ${o.threads} thread(s): ours ${(s.msPerStep / o.msPerStep).toFixed(2)}x the stock kernels' speed`);
    }
  }
  for (const r of threadSpeedups(rows)) {
    lines.push(`${rows[0]!.arch} ${r.finalBN ? "with" : "without"} final BN on ${r.threads} threads: step ${r.step.toFixed(2)}x one thread, convolutions ${r.conv === null ? "-" : `${r.conv.toFixed(2)}x`}`);
  }
  if (torch) lines.push(`PyTorch ${torch.torch} on ${torch.device}${torch.tf32Convolutions ? " (TF32 convolutions)" : ""}`);
  return lines.join("\n");
}
