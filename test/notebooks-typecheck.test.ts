// Every notebook compiles in tslab, cell after cell, as the kernel compiles it: with tslab's own
// TypeScript, from the notebooks folder, against the typed API ("finalbn", dist/types). At the
// notebooks' own parameters and with npm run notebooks --quick's injected below them, since a
// literal parameter narrows types (a `const epochs = 9` compared with 1 is a type error that
// only the classroom values showed, in CI). Seconds, where executing them takes many minutes.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { injectParameters, listNotebooks, NOTEBOOKS_DIR, readNotebook, sourceText, type Notebook } from "../src/cli/notebook-files.ts";

interface Converter {
  convert(prevDecl: string, src: string): { diagnostics: { messageText: string; start: { line: number } }[]; declOutput?: string };
  complete(prevDecl: string, src: string, position: number): { candidates: string[] };
  close(): void;
}

const ROOT = path.resolve(import.meta.dirname, "..");
const QUICK = { epochs: 1, seeds: [1], trainMajority: 198, testPerClass: 50 };
let converter: Converter;

before(() => {
  assert.ok(existsSync(path.join(ROOT, "dist/types/index.d.ts")), "dist/types/index.d.ts is missing: npm install (its prepare script) writes it");
  // tslab resolves "finalbn" and writes its scratch files relative to the working directory,
  // which in Jupyter is the notebook's folder.
  process.chdir(NOTEBOOKS_DIR);
  const { createConverter } = createRequire(import.meta.url)("tslab/dist/converter.js") as { createConverter(): Converter };
  converter = createConverter();
});

// tslab's converter watches files; closed, it lets the test process end.
after(() => converter?.close());

/** The compile errors of a notebook's code cells, in order, each cell seeing the ones before. */
function compileErrors(nb: Notebook): string[] {
  const errors: string[] = [];
  let declarations = "";
  nb.cells.forEach((cell, i) => {
    if (cell.cell_type !== "code") return;
    const result = converter.convert(declarations, sourceText(cell));
    if (result.diagnostics.length) {
      for (const d of result.diagnostics) errors.push(`cell ${i + 1}, line ${d.start.line + 1}: ${d.messageText}`);
    } else declarations = result.declOutput ?? "";
  });
  return errors;
}

test("every notebook compiles in tslab at its own parameters and at --quick's", async () => {
  const notebooks = await listNotebooks();
  assert.ok(notebooks.length >= 6);
  for (const file of notebooks) {
    const nb = await readNotebook(file);
    assert.deepEqual(compileErrors(nb), [], `${path.basename(file)} at its own parameters`);
    const quick = injectParameters(nb, QUICK).notebook;
    assert.deepEqual(compileErrors(quick), [], `${path.basename(file)} with --quick's parameters`);
  }
});

test("cells see the API's types: a wrong call is a compile error, and completion lists an object's fields", () => {
  const imported = converter.convert("", 'import { showTable, CLASSROOM } from "finalbn";');
  assert.deepEqual(imported.diagnostics, []);
  const declarations = imported.declOutput ?? "";
  const wrong = converter.convert(declarations, 'showTable(42, "no", "such");');
  assert.match(wrong.diagnostics.map((d) => d.messageText).join("\n"), /Expected 1-2 arguments, but got 3/);
  const src = "CLASSROOM.";
  assert.ok(converter.complete(declarations, src, src.length).candidates.includes("epochs"));
});
