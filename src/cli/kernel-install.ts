// npm run kernel:install: register this checkout's kernel (tslab, see src/cli/kernel.ts) as the
// Jupyter kernel "finalbn" for the current user (~/.local/share/jupyter/kernels/finalbn), then say
// how to open the notebooks. A kernel named "tslab" the user installed is left alone.
// It makes the same jupyter_client call as `tslab install --user`, with a command line that loads
// tsx first (see src/cli/jupyter.ts for why).
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { parseFlags, runCli, UsageError } from "./args.ts";
import { findPython, JUPYTER_APT, KERNEL_DISPLAY_NAME, KERNEL_NAME, kernelSpec, writeKernelSpec } from "./jupyter.ts";

const spec = {
  python: { type: "string", help: "a Python with jupyter_client (default: python3, else /usr/bin/python3)" },
  "dry-run": { type: "boolean", help: "print the kernel.json, install nothing" },
} as const;

const INSTALL = `
import sys
from jupyter_client.kernelspec import KernelSpecManager
print(KernelSpecManager().install_kernel_spec(sys.argv[1], sys.argv[2], user=True))
`;

runCli(async () => {
  const f = parseFlags("kernel:install", `Register the TypeScript kernel "${KERNEL_NAME}" (tslab from this checkout) with Jupyter for the current user.`, spec);
  if (f["dry-run"]) {
    console.log(JSON.stringify(kernelSpec(), null, 2));
    return;
  }
  const python = await findPython(["jupyter_client"], f.python);
  if (!python)
    throw new UsageError(`no Python with jupyter_client${f.python ? ` at ${f.python}` : ""}; on Debian/Ubuntu: ${JUPYTER_APT} (or pip install notebook, or jupyterlab)`);

  const tmp = await mkdtemp(path.join(os.tmpdir(), "finalbn-kernel-"));
  try {
    const source = await writeKernelSpec(tmp);
    const { stdout } = await promisify(execFile)(python, ["-c", INSTALL, source, KERNEL_NAME]);
    console.log(`installed kernel "${KERNEL_NAME}" (${kernelSpec().argv.slice(0, 4).join(" ")}) in ${stdout.trim()}`);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  console.log(`
Open the notebooks (the kernel is "${KERNEL_DISPLAY_NAME}"):
  jupyter notebook notebooks/     # Debian/Ubuntu: the notebook server from apt-get install jupyter-notebook
  jupyter lab notebooks/          # JupyterLab, if you installed it (pip install jupyterlab, or conda)
or in VS Code with the Jupyter extension: open notebooks/00-setup.ipynb and pick the kernel "${KERNEL_DISPLAY_NAME}".
Run them all headless, with HTML exports in out/notebooks:  npm run notebooks
Before committing a notebook, clear its outputs:  npm run notebooks:clean
After moving this checkout or changing Node, run npm run kernel:install again (the kernel names absolute paths).`);
});
