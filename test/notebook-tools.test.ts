// The Jupyter side of the notebooks: the kernelspec npm run kernel:install writes, clearing outputs
// before a commit (npm run notebooks:clean), and signing the executed copies so they open trusted.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { findPython, KERNEL_DISPLAY_NAME, KERNEL_NAME, kernelSpec, PROJECT_ROOT } from "../src/cli/jupyter.ts";
import { clearOutputs, listNotebooks, type Notebook } from "../src/cli/notebook-files.ts";

const run = promisify(execFile);

async function tempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "finalbn-nbtools-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test("the kernelspec is finalbn's own and starts src/cli/kernel.ts under tsx", () => {
  const spec = kernelSpec();
  assert.equal(KERNEL_NAME, "finalbn", "not tslab: installing must not replace a user's own tslab kernel");
  assert.equal(spec.display_name, KERNEL_DISPLAY_NAME);
  assert.deepEqual(spec.argv.slice(-3), [path.join(PROJECT_ROOT, "src", "cli", "kernel.ts"), "--config-path", "{connection_file}"]);
  assert.equal(spec.argv[0], process.execPath);
  assert.equal(spec.argv[1], "--import");
  assert.match(spec.argv[2], /^file:.*\/tsx\//);
});

/** What Jupyter writes into a notebook when its cells run: streams, a plotly chart, a PNG, a result. */
function executed(nb: Notebook): Notebook {
  const copy = structuredClone(nb);
  let count = 0;
  for (const cell of copy.cells) {
    if (cell.cell_type !== "code") continue;
    cell.execution_count = ++count;
    cell.outputs = [
      { name: "stdout", output_type: "stream", text: ["backend: cpu — chosen\n"] },
      {
        data: { "application/vnd.plotly.v1+json": { data: [{ x: [1, 2], y: [0.5, 1e-5] }] }, "text/html": ["<div id=\"p\"></div>\n", "<script>Plotly.newPlot(\"p\")</script>"], "image/png": "iVBORw0KGgo=\n" },
        metadata: {},
        output_type: "display_data",
      },
      { data: { "text/plain": ["0.25"] }, execution_count: count, metadata: {}, output_type: "execute_result" },
    ];
  }
  return copy;
}

/** The first notebook as it is after a run, written (with `indent`) into a folder of the test's own. */
async function executedCopy(t: { after: (fn: () => Promise<void>) => void }, indent?: number) {
  const dir = await tempDir(t);
  const [original] = await listNotebooks();
  const committed = clearOutputs(await readFile(original, "utf8")).text; // as committed, even if someone ran it here
  const file = path.join(dir, path.basename(original));
  await writeFile(file, JSON.stringify(executed(JSON.parse(committed) as Notebook), null, indent) + "\n");
  return { dir, file, committed };
}

test("clearing outputs gives back the committed notebook byte for byte; a clean notebook is left alone", async () => {
  for (const file of await listNotebooks()) {
    const committed = await readFile(file, "utf8");
    const clean = clearOutputs(committed);
    if (clean.cleared) continue; // this working copy has outputs (someone ran it): the committed test covers it
    assert.equal(clean.text, committed, path.basename(file));
    const ran = JSON.stringify(executed(JSON.parse(committed) as Notebook), null, 1) + "\n";
    const cleared = clearOutputs(ran);
    assert.ok(cleared.cleared > 0, path.basename(file));
    assert.equal(cleared.text, committed, `${path.basename(file)}: only outputs and execution counts change`);
  }
});

test("clearing keeps the file's own indentation, key order and missing final newline", () => {
  const nb = { metadata: { z: 1, a: 2 }, cells: [{ source: "x", cell_type: "code", outputs: [{ output_type: "stream", text: "é" }], execution_count: 3, metadata: {} }], nbformat: 4, nbformat_minor: 5 };
  const clean = { ...nb, cells: [{ ...nb.cells[0], outputs: [], execution_count: null }] };
  assert.deepEqual(clearOutputs(JSON.stringify(nb, null, 2)), { text: JSON.stringify(clean, null, 2), cleared: 1 });
  assert.deepEqual(clearOutputs(JSON.stringify(nb, null, 1) + "\n"), { text: JSON.stringify(clean, null, 1) + "\n", cleared: 1 });
});

test("a notebook Jupyter saved after a run (nbformat's writer) is cleared to what nbformat writes without outputs", async (t) => {
  const python = await findPython(["nbformat"]);
  if (!python) return t.skip("no Python with nbformat");
  const { dir, file: source } = await executedCopy(t);
  // Written as the notebook server saves: nbformat.write (sorted keys, one-space indent).
  const save = [
    "import nbformat, sys",
    "nb = nbformat.read(sys.argv[1], 4)",
    "nbformat.write(nb, sys.argv[2])",
    "for c in nb.cells:",
    "    if c.cell_type == 'code': c.update(outputs=[], execution_count=None)",
    "nbformat.write(nb, sys.argv[3])",
  ].join("\n");
  const saved = path.join(dir, "saved.ipynb");
  const expected = path.join(dir, "expected.ipynb");
  await run(python, ["-c", save, source, saved, expected]);
  const { text, cleared } = clearOutputs(await readFile(saved, "utf8"));
  assert.ok(cleared > 0);
  assert.equal(text, await readFile(expected, "utf8"));
});

test("npm run notebooks:clean clears a real notebook in place, and --check lists without writing", async (t) => {
  const { dir, file: copy, committed } = await executedCopy(t, 1);
  const name = path.basename(copy);
  const cli = path.join(PROJECT_ROOT, "src", "cli", "notebooks-clean.ts");
  const clean = (...args: string[]) =>
    run(process.execPath, ["--import", "tsx", cli, "--dir", dir, ...args], { cwd: PROJECT_ROOT }).then(
      (r) => ({ code: 0, ...r }),
      (e: { code: number; stdout: string; stderr: string }) => e,
    );

  const check = await clean("--check");
  assert.equal(check.code, 1);
  assert.match(check.stdout, new RegExp(`${name}: \\d+ code cells with outputs`));
  assert.notEqual(await readFile(copy, "utf8"), committed, "--check wrote nothing");

  const cleared = await clean();
  assert.equal(cleared.code, 0, cleared.stderr);
  assert.match(cleared.stdout, /cleared \d+ code cells \(\d+ -> \d+ bytes\)/);
  assert.equal(await readFile(copy, "utf8"), committed);
  assert.deepEqual(await readdir(dir), [name], "no temporary file left");
  assert.match((await clean("--check")).stdout, /all notebooks are clean/);

  await writeFile(path.join(dir, "broken.ipynb"), "{ not json");
  const broken = await clean();
  assert.equal(broken.code, 1);
  assert.match(broken.stderr, /broken\.ipynb is not a notebook's JSON .*nothing was changed in it/);
});

test("an executed notebook is signed with the user's secret, so Jupyter opens it trusted", async (t) => {
  const python = await findPython(["nbformat"]);
  if (!python) return t.skip("no Python with nbformat");
  const { dir, file: nbFile } = await executedCopy(t, 1);
  // run-notebook.py's sign(), then the check the notebook server makes when it opens a notebook,
  // both in a Jupyter data dir of the test's own (JUPYTER_DATA_DIR, where the secret and the
  // signature database live).
  const script = path.join(PROJECT_ROOT, "src", "cli", "run-notebook.py");
  const code = [
    "import importlib.util, sys, nbformat",
    "from nbformat.sign import NotebookNotary",
    "spec = importlib.util.spec_from_file_location('runner', sys.argv[1]); runner = importlib.util.module_from_spec(spec); spec.loader.exec_module(runner)",
    "nb = nbformat.read(sys.argv[2], 4)",
    "before = NotebookNotary().check_signature(nb)",
    "runner.sign(sys.argv[2])",
    "print(before, NotebookNotary().check_signature(nbformat.read(sys.argv[2], 4)))",
  ].join("\n");
  const env = { ...process.env, JUPYTER_DATA_DIR: path.join(dir, "jupyter-data") };
  const { stdout } = await run(python, ["-c", code, script, nbFile], { env });
  assert.equal(stdout.trim(), "False True");
});
