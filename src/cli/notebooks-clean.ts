// npm run notebooks:clean: clear the outputs and execution counts of notebooks/*.ipynb in place,
// before a commit. Running a notebook in Jupyter saves its outputs into the file (02 grows to
// megabytes of embedded charts); committed notebooks carry none (a test checks what git has).
// Everything else in the files stays byte for byte, so the diff shows only the outputs going.
import { readFile, rename, writeFile } from "node:fs/promises";
import path from "node:path";
import { existingPath, parseFlags, runCli } from "./args.ts";
import { clearOutputs, listNotebooks, NOTEBOOKS_DIR } from "./notebook-files.ts";

const spec = {
  dir: { type: "string", help: "folder of notebooks (default: this checkout's notebooks/)" },
  check: { type: "boolean", help: "change nothing; list the notebooks with outputs and exit 1 if any" },
} as const;

runCli(async () => {
  const f = parseFlags("notebooks:clean", "Clear outputs and execution counts of the notebooks in notebooks/, in place.", spec);
  const dir = f.dir === undefined ? NOTEBOOKS_DIR : existingPath("dir", f.dir, "folder");
  let dirty = 0;
  for (const file of await listNotebooks(dir)) {
    const before = await readFile(file, "utf8");
    let result: ReturnType<typeof clearOutputs>;
    try {
      result = clearOutputs(before);
    } catch (error) {
      throw new Error(`${file} is not a notebook's JSON (${(error as Error).message}); nothing was changed in it`);
    }
    const { text, cleared } = result;
    if (!cleared) continue;
    dirty++;
    const cells = `${cleared} code cell${cleared === 1 ? "" : "s"}`;
    if (f.check) {
      console.log(`${path.basename(file)}: ${cells} with outputs or execution counts`);
      continue;
    }
    // Beside it, then renamed over it: an interrupted clean never leaves half a notebook.
    await writeFile(`${file}.clean-tmp`, text);
    await rename(`${file}.clean-tmp`, file);
    console.log(`${path.basename(file)}: cleared ${cells} (${Buffer.byteLength(before)} -> ${Buffer.byteLength(text)} bytes)`);
  }
  if (!dirty) console.log("all notebooks are clean");
  else if (f.check) console.log("run npm run notebooks:clean to clear them");
  return f.check && dirty ? 1 : 0;
});
