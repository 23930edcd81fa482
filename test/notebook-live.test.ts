// The live classroom, in a real notebook server: Debian's Jupyter Notebook on 127.0.0.1 with a
// token and this checkout's kernel, a copy of notebook 02 with small parameters, driven in headless
// Chromium. Run All draws the charts and the kernel reports busy for as long as training runs (even
// when the page asks the kernel something meanwhile); then a longer training is interrupted: the
// cell ends within seconds with one line, no progress advances after that, and running the cell
// again resumes after the last finished epoch.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { chromium, type Page } from "playwright-core";
import { writeKernelSpec } from "../src/cli/jupyter.ts";
import { injectParameters, NOTEBOOKS_DIR, readNotebook } from "../src/cli/notebook-files.ts";

const REPO = path.resolve(import.meta.dirname, "..");
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const JUPYTER_NOTEBOOK = "/usr/bin/jupyter-notebook";
/** Where the screenshot stays after the test (out/ is ignored by git). */
export const SCREENSHOT = path.join(REPO, "out", "screenshots", "notebook-live-interrupt.png");

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
    server.on("error", reject);
  });

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined | false>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await sleep(250);
  }
}

async function startServer(dir: string, kernels: string): Promise<{ url: string; token: string; server: ChildProcess; log: string[] }> {
  const port = await freePort();
  const token = randomBytes(16).toString("hex");
  const log: string[] = [];
  const server = spawn(
    JUPYTER_NOTEBOOK,
    ["--no-browser", "--allow-root", "--ip=127.0.0.1", `--port=${port}`, `--NotebookApp.token=${token}`, `--NotebookApp.notebook_dir=${dir}`],
    {
      env: {
        ...process.env,
        JUPYTER_PATH: kernels,
        JUPYTER_CONFIG_DIR: path.join(kernels, "config"),
        JUPYTER_RUNTIME_DIR: path.join(kernels, "runtime"),
        JUPYTER_DATA_DIR: path.join(kernels, "data"),
      },
      stdio: ["ignore", "pipe", "pipe"],
      // Its own process group, as when started from a terminal: an interrupt is sent to the
      // kernel's process group, and must not reach this test.
      detached: true,
    },
  );
  server.stdout!.on("data", (d) => log.push(String(d)));
  server.stderr!.on("data", (d) => log.push(String(d)));
  const url = `http://127.0.0.1:${port}`;
  await until("the notebook server", 60_000, async () => {
    if (server.exitCode !== null) throw new Error(`jupyter-notebook exited: ${log.join("")}`);
    return fetch(`${url}/api/status?token=${token}`).then((r) => r.ok, () => false);
  });
  return { url, token, server, log };
}

/** The server's execution state of the one kernel (what idle-culling and other clients see). */
async function kernelState(url: string, token: string): Promise<string | undefined> {
  const kernels = (await (await fetch(`${url}/api/kernels?token=${token}`)).json()) as { execution_state: string }[];
  return kernels[0]?.execution_state;
}

/** Per code cell of the page: running?, and its outputs' text (stream text, HTML and plain text). */
function cellsOf(page: Page) {
  return page.evaluate(() => {
    const nb = (window as unknown as { Jupyter: any }).Jupyter.notebook;
    return nb
      .get_cells()
      .filter((c: any) => c.cell_type === "code")
      .map((c: any) => ({
        running: c.input_prompt_number === "*",
        count: c.input_prompt_number,
        text: c.output_area.outputs
          .map((o: any) => o.text ?? o.data?.["text/html"] ?? o.data?.["text/plain"] ?? (o.output_type === "error" ? `${o.ename}: ${o.evalue}` : ""))
          .join("\n"),
        stderr: c.output_area.outputs.filter((o: any) => o.name === "stderr").map((o: any) => o.text).join(""),
      })) as { running: boolean; count: unknown; text: string; stderr: string }[];
  });
}

test("a live notebook: busy while training, charts drawn, Kernel → Interrupt stops training within seconds and running again resumes", { timeout: 900_000 }, async (t) => {
  if (!existsSync(JUPYTER_NOTEBOOK)) return t.skip("no Jupyter Notebook server (apt-get install jupyter-notebook)");
  if (!existsSync(CHROMIUM)) return t.skip(`no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`);
  if (!existsSync(path.join(REPO, "dist/types/index.d.ts"))) return t.skip("dist/types is missing: run npm install");

  // The notebook lives inside the checkout (out/ is ignored), so that its cells resolve "finalbn".
  await mkdir(path.join(REPO, "out"), { recursive: true });
  const dir = await mkdtemp(path.join(REPO, "out", "live-notebook-"));
  const kernels = await mkdtemp(path.join(os.tmpdir(), "finalbn-jupyter-"));
  t.after(() => Promise.all([rm(dir, { recursive: true, force: true }), rm(kernels, { recursive: true, force: true })]));
  await writeKernelSpec(kernels);
  const small = injectParameters(await readNotebook(path.join(NOTEBOOKS_DIR, "02-train-both-variants.ipynb")), {
    epochs: 1, seeds: [1], trainMajority: 396, testPerClass: 50, pretrain: false, backend: "cpu",
    runs: path.join(dir, "runs"), cache: path.join(dir, "cache"),
  }).notebook;
  await writeFile(path.join(dir, "02-live.ipynb"), JSON.stringify(small, null, 1));

  const { url, token, server, log } = await startServer(dir, kernels);
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox", "--disable-gpu"] });
  t.after(async () => {
    await browser.close();
    // Shut the kernel down through the server, then the server itself.
    const ids = (await fetch(`${url}/api/kernels?token=${token}`).then((r) => r.json(), () => [])) as { id: string }[];
    for (const { id } of ids) await fetch(`${url}/api/kernels/${id}?token=${token}`, { method: "DELETE" }).catch(() => {});
    server.kill("SIGTERM");
    await Promise.race([new Promise((resolve) => server.once("exit", resolve)), sleep(10_000)]);
    if (server.exitCode === null) server.kill("SIGKILL");
  });

  const page = await browser.newPage({ viewport: { width: 1280, height: 1600 } });
  await page.goto(`${url}/notebooks/02-live.ipynb?token=${token}`);
  await page.waitForFunction(() => (window as any).Jupyter?.notebook?.kernel?.is_connected?.(), undefined, { timeout: 120_000 });

  // ---- Run All: busy for the whole training cell, even when the page asks the kernel something.
  await page.evaluate(() => (window as any).Jupyter.notebook.execute_all_cells());
  const training = await until("training to start", 300_000, async () => {
    const cells = await cellsOf(page);
    return cells.findIndex((c) => c.running && /epoch 1\/1 batch/.test(c.text)) + 1;
  });
  for (let i = 0; i < 4; i++) {
    await page.evaluate(() => (window as any).Jupyter.notebook.kernel.kernel_info(() => {}));
    await sleep(500);
    if (!(await cellsOf(page))[training - 1].running) break;
    assert.equal(await kernelState(url, token), "busy", "the server sees the kernel busy while the training cell runs");
    assert.ok(await page.evaluate(() => document.querySelector("#kernel_indicator_icon")!.className.includes("kernel_busy")), "the page shows it busy");
  }
  await until("Run All to finish", 600_000, async () => {
    const cells = await cellsOf(page);
    return cells.every((c) => !c.running && typeof c.count === "number") && (await kernelState(url, token)) === "idle";
  });
  const cells = await cellsOf(page);
  const failed = cells.map((c, i) => ({ i, stderr: c.stderr })).filter((c) => /error/i.test(c.stderr));
  assert.deepEqual(failed, [], "no cell failed");
  assert.ok((await page.locator(".js-plotly-plot").count()) >= 4, "the live charts and the paired chart are drawn");

  // ---- A longer training (new settings, so new runs), interrupted in its second epoch.
  const started = await page.evaluate(() => {
    const nb = (window as any).Jupyter.notebook;
    const cell = nb.insert_cell_at_bottom("code");
    cell.set_text('const again = await trainLive({ ...options, epochs: 4, title: "interrupted" }, { info: info });');
    cell.execute();
    return nb.get_cells().filter((c: any) => c.cell_type === "code").length;
  });
  const progress = async () => (await cellsOf(page))[started - 1];
  await until("the second epoch", 300_000, async () => /epoch 2\/4 batch [2-9]/.test((await progress()).text));
  const interruptedAt = Date.now();
  await page.evaluate(() => (window as any).Jupyter.notebook.kernel.interrupt());
  await until("the cell to end after Interrupt", 30_000, async () => !(await progress()).running);
  const seconds = (Date.now() - interruptedAt) / 1000;
  t.diagnostic(`the interrupted cell ended ${seconds.toFixed(1)} s after Kernel → Interrupt`);
  assert.ok(seconds < 10, `the cell ended ${seconds.toFixed(1)} s after the interrupt`);
  await sleep(1000); // the reply can come before the last output is drawn
  const stopped = await progress();
  await mkdir(path.dirname(SCREENSHOT), { recursive: true });
  await page.screenshot({ path: SCREENSHOT, fullPage: true });
  t.diagnostic(`screenshot: ${SCREENSHOT}`);
  const lines = stopped.stderr.trim().split("\n");
  assert.equal(lines.length, 1, `one line: ${stopped.stderr}`);
  assert.match(lines[0], /^Interrupted: training stopped \(.*in epoch 2, batch \d+ of \d+, epochs 1-1 saved.*\)\. Run it again to resume/);
  await sleep(5000);
  assert.equal((await progress()).text, stopped.text, "no progress line advanced after the interrupt");

  // ---- Running it again resumes after epoch 1 and finishes.
  await page.evaluate((n) => (window as any).Jupyter.notebook.get_cells().filter((c: any) => c.cell_type === "code")[n - 1].execute(), started);
  await until("the resumed cell to start", 60_000, async () => (await progress()).running);
  await until("the resumed training to finish", 600_000, async () => !(await progress()).running);
  const resumed = await progress();
  assert.match(resumed.text, /resumed after epoch 1/);
  assert.match(resumed.text, /epoch 4: train loss/);
  assert.doesNotMatch(resumed.stderr, /error|Interrupted/i);
  assert.ok(!log.join("").includes("Traceback"), "the server logged no Python error");
});
