// The notebooks as files: finding them, reading them as git has them committed, checking the rules
// committed notebooks follow, clearing their outputs (npm run notebooks:clean), and injecting
// parameters after the cell tagged `parameters` (papermill's convention: the injected cell
// redeclares some of its constants, which a later cell may do in tslab).
import { execFile } from "node:child_process";
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { KERNEL_NAME } from "./jupyter.ts";

export interface NotebookCell {
  cell_type: "code" | "markdown" | "raw";
  source: string | string[];
  metadata: { tags?: string[]; [key: string]: unknown };
  outputs?: unknown[];
  execution_count?: number | null;
  [key: string]: unknown;
}

export interface Notebook {
  cells: NotebookCell[];
  metadata: { kernelspec?: { name?: string }; [key: string]: unknown };
  nbformat: number;
  nbformat_minor: number;
}

export const NOTEBOOKS_DIR = path.resolve(import.meta.dirname, "../../notebooks");

/** The notebooks of a folder, in name order (00-..., 01-...): absolute paths. */
export async function listNotebooks(dir = NOTEBOOKS_DIR): Promise<string[]> {
  const names = (await readdir(dir)).filter((n) => n.endsWith(".ipynb")).sort();
  return names.map((n) => path.join(dir, n));
}

export async function readNotebook(file: string): Promise<Notebook> {
  return JSON.parse(await readFile(file, "utf8")) as Notebook;
}

/**
 * The notebooks of a folder as committed at `rev` (not as the working tree has them: a notebook
 * open in Jupyter is saved with outputs), by path relative to the repository root.
 */
export async function committedNotebooks(dir = NOTEBOOKS_DIR, rev = "HEAD"): Promise<{ file: string; notebook: Notebook }[]> {
  const git = async (...args: string[]) => (await promisify(execFile)("git", args, { cwd: dir, maxBuffer: 256 << 20 })).stdout;
  const names = (await git("ls-tree", "-z", "--name-only", "--full-name", rev, "./")).split("\0").filter((n) => n.endsWith(".ipynb")).sort();
  return Promise.all(names.map(async (file) => ({ file, notebook: JSON.parse(await git("show", `${rev}:${file}`)) as Notebook })));
}

export const sourceText = (cell: NotebookCell): string => (Array.isArray(cell.source) ? cell.source.join("") : cell.source);

const isParameters = (cell: NotebookCell) => cell.metadata.tags?.includes("parameters") ?? false;

/** What is wrong with a notebook as committed: outputs, the parameters cell, the kernel. */
export function notebookProblems(nb: Notebook): string[] {
  const problems: string[] = [];
  const code = nb.cells.filter((c) => c.cell_type === "code");
  const tagged = nb.cells.filter(isParameters);
  if (tagged.length !== 1) problems.push(`${tagged.length} cells tagged "parameters" (want exactly one)`);
  else if (code[0] !== tagged[0]) problems.push(`the "parameters" cell is not the first code cell`);
  code.forEach((c) => {
    if ((c.outputs?.length ?? 0) > 0 || (c.execution_count ?? null) !== null)
      problems.push(`code cell ${code.indexOf(c) + 1} has outputs or an execution count: clear them before committing`);
  });
  if (nb.metadata.kernelspec?.name !== KERNEL_NAME) problems.push(`kernel is ${nb.metadata.kernelspec?.name ?? "not set"}, not ${KERNEL_NAME}`);
  return problems;
}

/** Names the parameters cell declares with `const NAME =`. */
export function parameterNames(nb: Notebook): string[] {
  const cell = nb.cells.find(isParameters);
  if (!cell) return [];
  return [...sourceText(cell).matchAll(/^\s*(?:const|let)\s+([A-Za-z_$][\w$]*)\s*=/gm)].map((m) => m[1]);
}

/**
 * A copy of the notebook with a cell after the parameters cell that sets the given values
 * (JSON literals), for the names the notebook declares; returns the copy and the names set.
 */
export function injectParameters(nb: Notebook, values: Record<string, unknown>): { notebook: Notebook; injected: string[] } {
  const at = nb.cells.findIndex(isParameters);
  if (at < 0) throw new Error(`no cell tagged "parameters"`);
  const declared = new Set(parameterNames(nb));
  const injected = Object.keys(values).filter((k) => declared.has(k) && values[k] !== undefined);
  const lines = ["// Injected by npm run notebooks", ...injected.map((k) => `const ${k} = ${JSON.stringify(values[k])};`)];
  const cell: NotebookCell = {
    id: "injected-parameters",
    cell_type: "code",
    execution_count: null,
    metadata: { tags: ["injected-parameters"] },
    outputs: [],
    source: lines.join("\n"),
  };
  const cells = [...nb.cells.slice(0, at + 1), cell, ...nb.cells.slice(at + 1)];
  return { notebook: { ...nb, cells }, injected };
}

/**
 * A notebook's text with every code cell's outputs and execution count cleared; every other byte
 * as it was (key order, the file's indentation, the final newline), so a clean notebook comes back
 * unchanged and a cleared one diffs only where outputs were. `cleared` counts the cells changed.
 */
export function clearOutputs(text: string): { text: string; cleared: number } {
  const nb = JSON.parse(text) as Notebook;
  let cleared = 0;
  for (const cell of nb.cells) {
    if (cell.cell_type !== "code") continue;
    const dirty = (cell.outputs?.length ?? 0) > 0 || (cell.execution_count ?? null) !== null;
    if (!dirty) continue;
    if ("outputs" in cell) cell.outputs = [];
    if ("execution_count" in cell) cell.execution_count = null;
    cleared++;
  }
  if (cleared === 0) return { text, cleared };
  // nbformat writes one space per level (Jupyter and VS Code too); keep whatever the file has.
  const indent = /^\{\r?\n([ \t]+)"/.exec(text)?.[1] ?? " ";
  const newline = text.endsWith("\n") ? "\n" : "";
  return { text: JSON.stringify(nb, null, indent) + newline, cleared };
}
