// The tslab kernel as this project runs it, for `npm run kernel:install` and `npm run notebooks`.
//
// tslab compiles every cell with its own TypeScript (5.0, fixed options, CommonJS output), which
// cannot compile this project's files (they import each other with ".ts" extensions and use
// import.meta). So the kernel runs under tsx, like every `npm run` command: notebooks load the
// project with `require("../src/....ts")` and tsx compiles those files, the same way as the CLI.
// That takes a kernelspec whose command is `node --import tsx src/cli/kernel.ts` (tslab with this
// project's fixes, see there), which `tslab install --binary` cannot express (it sets the first
// word only), so we write it ourselves. The kernel has a name of its own, so installing it leaves a
// user's own "tslab" kernel alone.
import { execFile } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";

export const KERNEL_NAME = "finalbn";
export const KERNEL_DISPLAY_NAME = "TypeScript (finalbn)";

/** The repository this file belongs to. */
export const PROJECT_ROOT = path.resolve(import.meta.dirname, "../..");

export interface KernelSpec {
  argv: string[];
  display_name: string;
  language: string;
}

/** The kernel.json: this Node, tsx's loader and this checkout's kernel (tslab from node_modules, no global install). */
export function kernelSpec(root = PROJECT_ROOT): KernelSpec {
  const require = createRequire(path.join(root, "package.json"));
  return {
    argv: [
      process.execPath,
      "--import",
      pathToFileURL(require.resolve("tsx")).href,
      path.join(root, "src", "cli", "kernel.ts"),
      "--config-path",
      "{connection_file}",
    ],
    display_name: KERNEL_DISPLAY_NAME,
    language: "typescript",
  };
}

/** Write <dir>/kernels/finalbn/kernel.json; with JUPYTER_PATH=<dir>, Jupyter finds it before any other. */
export async function writeKernelSpec(dir: string, root = PROJECT_ROOT): Promise<string> {
  const kernelDir = path.join(dir, "kernels", KERNEL_NAME);
  await mkdir(kernelDir, { recursive: true });
  await writeFile(path.join(kernelDir, "kernel.json"), JSON.stringify(kernelSpec(root), null, 2) + "\n");
  return kernelDir;
}

const run = promisify(execFile);

/**
 * The first Python that can import all of `modules`: `prefer` if given, else python3 on the
 * PATH, else Debian's /usr/bin/python3 (a pyenv or venv python3 often lacks Debian's packages).
 */
export async function findPython(modules: readonly string[], prefer?: string): Promise<string | undefined> {
  const candidates = prefer ? [prefer] : ["python3", "/usr/bin/python3"];
  for (const python of candidates) {
    try {
      await run(python, ["-c", `import ${modules.join(", ")}`]);
      return python;
    } catch {
      // not this one
    }
  }
  return undefined;
}

// jupyter-notebook is the notebook server Debian 12 has (classic Notebook 6.4; no JupyterLab);
// nbconvert and nbclient run the notebooks headless (npm run notebooks).
export const JUPYTER_APT =
  "sudo apt-get install -y --no-install-recommends jupyter-notebook jupyter-nbconvert python3-nbclient python3-ipykernel";
