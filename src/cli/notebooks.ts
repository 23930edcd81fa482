// npm run notebooks: run every notebook in notebooks/ headless on the finalbn kernel (tslab), at
// their own (classroom) parameters or with the flags' values injected after each one's
// `parameters` cell (--quick: small ones), and write the executed copies and self-contained HTML
// exports to out/notebooks. The executed copies are signed with this user's Jupyter secret, so
// they open trusted (charts drawn) in Jupyter on this machine. Any failing cell fails the command,
// naming the notebook and the cell.
import { spawn } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { numberFlag, parseFlags, runCli, UsageError } from "./args.ts";
import { findPython, JUPYTER_APT, KERNEL_NAME, PROJECT_ROOT, writeKernelSpec } from "./jupyter.ts";
import { injectParameters, listNotebooks, NOTEBOOKS_DIR, readNotebook } from "./notebook-files.ts";

const spec = {
  only: { type: "string", help: "comma-separated notebooks, by name or number prefix (e.g. 03 or 00,01)" },
  out: { type: "string", help: "output folder for executed notebooks, HTML exports and runs", default: "out/notebooks" },
  quick: { type: "boolean", help: "small parameters: 1 epoch, seed 1, 198 + 2 training and 50 + 50 test images" },
  epochs: { type: "string", help: "epochs per training run (notebook default if not given)" },
  seeds: { type: "string", help: "comma-separated seeds (notebook default if not given)" },
  "train-majority": { type: "string", help: "majority images in each training set (notebook default if not given)" },
  "test-per-class": { type: "string", help: "test images per class (notebook default if not given)" },
  "from-scratch": { type: "boolean", help: "no pretrained body (notebook default: pretrained on other leaves)" },
  "batch-size": { type: "string", help: "batch size (notebook default if not given)" },
  size: { type: "string", help: "image size in pixels (notebook default if not given)" },
  width: { type: "string", help: "channel width multiplier (notebook default if not given)" },
  data: { type: "string", help: "PlantVillage folder (default: the synthetic leaves)" },
  crop: { type: "string", help: "crop, e.g. Pepper (default: Synthetic, or Pepper with --data)" },
  backend: { type: "string", help: "auto | cuda | webgpu | cpu (notebook default if not given)" },
  cache: { type: "string", help: "folder for generated leaves and resized pixels (notebook default: .cache)" },
  "keep-runs": { type: "boolean", help: "reuse the finished runs in OUT/runs (default: start afresh)" },
  timeout: { type: "string", help: "seconds a cell may run", default: "1800" },
  python: { type: "string", help: "a Python with nbclient and nbconvert (default: python3, else /usr/bin/python3)" },
} as const;

runCli(async () => {
  const f = parseFlags("notebooks", "Execute the notebooks headless (their own parameters, or --quick); write executed copies and HTML exports.", spec);
  // --quick's values, overridden by any flag given with it.
  const quick = f.quick ? { epochs: "1", seeds: "1", "train-majority": "198", "test-per-class": "50" } : {};
  const flag = (name: keyof typeof quick) => f[name] ?? quick[name];
  const seeds = flag("seeds")?.split(",").map((s) => numberFlag("seeds", s.trim(), { integer: true, min: 0 })!);
  const out = path.resolve(f.out!);
  const params: Record<string, unknown> = {
    epochs: numberFlag("epochs", flag("epochs"), { integer: true, min: 1 }),
    seeds,
    trainMajority: numberFlag("train-majority", flag("train-majority"), { integer: true, min: 1 }),
    testPerClass: numberFlag("test-per-class", flag("test-per-class"), { integer: true, min: 1 }),
    pretrain: f["from-scratch"] ? false : undefined,
    batchSize: numberFlag("batch-size", f["batch-size"], { integer: true, min: 2 }),
    size: numberFlag("size", f.size, { integer: true, min: 32 }),
    width: numberFlag("width", f.width, { min: 1 / 64, max: 1 }),
    data: f.data === undefined ? undefined : path.resolve(f.data),
    crop: f.crop,
    backend: f.backend,
    runs: path.join(out, "runs"),
    cache: f.cache === undefined ? undefined : path.resolve(f.cache),
  };
  if (f.backend !== undefined && !["auto", "cuda", "webgpu", "cpu"].includes(f.backend))
    throw new UsageError(`--backend must be one of auto, cuda, webgpu, cpu, got "${f.backend}"`);
  const timeout = numberFlag("timeout", f.timeout, { integer: true, min: 1 })!;

  let notebooks = await listNotebooks();
  if (f.only) {
    const wanted = f.only.split(",").map((s) => s.trim().replace(/\.ipynb$/, ""));
    const unknown = wanted.filter((w) => !notebooks.some((n) => path.basename(n).startsWith(w)));
    if (unknown.length) throw new UsageError(`no notebook matches ${unknown.join(", ")} in ${NOTEBOOKS_DIR}`);
    notebooks = notebooks.filter((n) => wanted.some((w) => path.basename(n).startsWith(w)));
  }
  const python = await findPython(["nbclient", "nbconvert"], f.python);
  if (!python) throw new UsageError(`no Python with nbclient and nbconvert; on Debian/Ubuntu: ${JUPYTER_APT}`);

  // A private kernelspec (this checkout's kernel under tsx) that wins over any installed one.
  const tmp = await mkdtemp(path.join(os.tmpdir(), "finalbn-notebooks-"));
  await writeKernelSpec(tmp);
  // Fresh runs unless asked, so the notebooks really train (02, 03 and 04 share them within one call).
  if (!f["keep-runs"]) await rm(params.runs as string, { recursive: true, force: true });
  await mkdir(out, { recursive: true });

  const results: { name: string; seconds: number; error?: string }[] = [];
  try {
    for (const file of notebooks) {
      const name = path.basename(file, ".ipynb");
      const { notebook, injected } = injectParameters(await readNotebook(file), params);
      const input = path.join(tmp, `${name}.ipynb`);
      await writeFile(input, JSON.stringify(notebook, null, 1) + "\n");
      console.log(`${name}: ${injected.map((k) => `${k}=${JSON.stringify(params[k])}`).join(" ") || "(its own parameters)"}`);
      const started = performance.now();
      const error = await execute(python, {
        input,
        output: path.join(out, `${name}.ipynb`),
        html: path.join(out, `${name}.html`),
        cwd: path.dirname(file),
        jupyterPath: tmp,
        timeout,
      });
      const seconds = (performance.now() - started) / 1000;
      results.push({ name, seconds, error });
      console.log(`${name}: ${error ? "FAILED" : "ok"} in ${seconds.toFixed(0)} s -> ${path.join(out, `${name}.html`)}`);
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }

  console.log("\nnotebook                      seconds");
  for (const r of results) console.log(`${r.name.padEnd(30)}${r.seconds.toFixed(0).padStart(7)}${r.error ? "  FAILED" : ""}`);
  const total = results.reduce((s, r) => s + r.seconds, 0);
  console.log(`${"total".padEnd(30)}${total.toFixed(0).padStart(7)}`);
  const failed = results.filter((r) => r.error);
  for (const r of failed) console.error(`error: notebook ${r.name}: ${r.error}`);
  return failed.length ? 1 : 0;
});

/** Run src/cli/run-notebook.py; per-cell lines pass through. Resolves to the error, or undefined. */
function execute(
  python: string,
  o: { input: string; output: string; html: string; cwd: string; jupyterPath: string; timeout: number },
): Promise<string | undefined> {
  const script = path.join(PROJECT_ROOT, "src", "cli", "run-notebook.py");
  const args = [script, o.input, o.output, o.html, "--cwd", o.cwd, "--kernel", KERNEL_NAME, "--timeout", String(o.timeout)];
  const child = spawn(python, args, {
    env: { ...process.env, JUPYTER_PATH: o.jupyterPath },
    stdio: ["ignore", "inherit", "pipe"],
  });
  // The runner's last lines after "error in cell" are the message to repeat at the end.
  let error: string[] | undefined;
  createInterface({ input: child.stderr }).on("line", (line) => {
    if (line.startsWith("error ")) error = [];
    if (error) error.push(line);
    console.error(line);
  });
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code) => {
      if (code === 0) resolve(undefined);
      else resolve(error?.join("\n") ?? `the notebook runner exited with code ${code}`);
    });
  });
}
