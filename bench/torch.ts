// --with-torch: run bench/torch_step.py (the same VGG19 steps in PyTorch) under a python that has
// torch, and read back its JSON line.
import { execFile } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { UsageError } from "../src/cli/args.ts";

const run = promisify(execFile);
const SCRIPT = path.join(path.dirname(fileURLToPath(import.meta.url)), "torch_step.py");

export interface TorchResult {
  torch: string;
  device: string;
  /** The first row's clock (each row has its own). */
  clock: "cpu" | "wall";
  tf32Convolutions: boolean;
  python: string;
  rows: TorchRow[];
}

export interface TorchRow {
  arch: string;
  finalBN: boolean;
  /** torch.set_num_threads on the CPU; null on a GPU. */
  threads: number | null;
  /** "cpu": CPU time of the process (one CPU thread, like the tfjs side); "wall": more threads, or a GPU. */
  clock: "cpu" | "wall";
  msPerStep: number;
  imagesPerSec: number;
}

export interface TorchOptions {
  /** A python that imports torch (findTorchPython finds one). */
  python: string;
  arch: string;
  size: number;
  batch: number;
  width: number;
  rounds: number;
  minMs: number;
  /** CPU thread counts to time, as on the tfjs side (default: torch's own). */
  threads?: readonly number[];
}

/** The first candidate python that can import torch, with the reasons the others could not. */
export async function findTorchPython(candidates: readonly string[]): Promise<string> {
  const tried: string[] = [];
  for (const python of candidates) {
    try {
      await run(python, ["-c", "import torch"], { timeout: 60_000 });
      return python;
    } catch (error) {
      const e = error as NodeJS.ErrnoException & { stderr?: string };
      tried.push(`${python}: ${e.code === "ENOENT" ? "not found" : (e.stderr?.trim().split("\n").pop() ?? e.message)}`);
    }
  }
  throw new UsageError(
    `--with-torch needs a python with PyTorch (pip install torch, or apt-get install python3-torch); tried ${tried.join("; ")}`,
  );
}

/** The pythons to try: the one asked for, else $FINALBN_PYTHON, python3 and /usr/bin/python3 (Debian's, under a pyenv). */
export function torchCandidates(python?: string): string[] {
  if (python) return [python];
  return [...new Set([process.env.FINALBN_PYTHON, "python3", "/usr/bin/python3"].filter((p): p is string => !!p))];
}

export async function runTorchSteps(o: TorchOptions, log: (line: string) => void = () => {}): Promise<TorchResult> {
  const { python } = o;
  log(`PyTorch steps with ${python} ...`);
  const args = [SCRIPT, "--arch", o.arch, "--size", String(o.size), "--batch", String(o.batch), "--width", String(o.width)];
  args.push("--rounds", String(o.rounds), "--min-ms", String(o.minMs));
  if (o.threads?.length) args.push("--threads", o.threads.join(","));
  let stdout: string;
  try {
    ({ stdout } = await run(python, args, { timeout: 30 * 60_000, maxBuffer: 16 * 1024 * 1024 }));
  } catch (error) {
    const stderr = ((error as { stderr?: string }).stderr ?? "").trim().split("\n").slice(-3).join(" | ");
    throw new Error(`bench/torch_step.py failed: ${stderr || (error as Error).message}`);
  }
  const last = stdout.trim().split("\n").pop() ?? "";
  const result = JSON.parse(last) as Omit<TorchResult, "python">;
  for (const r of result.rows) {
    const threads = r.threads === null ? "" : `, ${r.threads} thread${r.threads > 1 ? "s" : ""}`;
    log(`torch ${r.arch} ${r.finalBN ? "with" : "without"} final BN${threads}: ${r.msPerStep.toFixed(0)} ms/step (${r.clock} clock)`);
  }
  return { ...result, python };
}
