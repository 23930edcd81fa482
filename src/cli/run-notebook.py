"""Execute one notebook on a Jupyter kernel, save the executed copy, sign it and export it to HTML.

Used by `npm run notebooks` (src/cli/notebooks.ts); needs Debian's python3-nbclient and
jupyter-nbconvert (or pip's nbclient and nbconvert).

usage: python3 run-notebook.py IN.ipynb OUT.ipynb OUT.html --cwd DIR [--kernel finalbn] [--timeout S]

Prints one line per cell to stderr. On a failing cell it still writes both files (outputs up to
the failure), prints which cell failed with what the cell printed to stderr, and exits 1.
"""
import argparse
import os
import sys
import time

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
from nbconvert import HTMLExporter


def first_line(source):
    lines = [l for l in source.splitlines() if l.strip() and not l.strip().startswith("//")]
    return (lines[0] if lines else source.strip())[:100]


def stderr_text(cell):
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("name") == "stderr")


def export_html(nb, path, title):
    exporter = HTMLExporter(template_name="lab")
    # The lab template loads require.js and MathJax from file:// paths (Debian) or a CDN: neither is
    # needed here and either one fails offline (a console error). Empty scripts instead.
    exporter.require_js_url = "data:text/javascript,"
    exporter.mathjax_url = "data:text/javascript,"
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title}})
    with open(path, "w", encoding="utf-8") as f:
        f.write(body)


def sign(path):
    """Trust the executed copy as `jupyter trust` does: its signature goes into this user's notary
    database (nbsignatures.db in the Jupyter data dir, keyed with its notebook_secret), where a
    later `jupyter notebook` or JupyterLab on this machine finds it. Unsigned, the notebook opens
    "Not Trusted": its charts (HTML with scripts) stay blank. A failure here only warns."""
    try:
        from nbformat.sign import NotebookNotary

        notary = NotebookNotary()
        notary.sign(nbformat.read(path, as_version=4))  # as written, as the server will read it
    except Exception as err:  # a read-only home, no sqlite3: the notebook is still there, untrusted
        print(f"warning: could not sign {path}, so Jupyter will open it untrusted ({err}); try: jupyter trust {path}", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("html")
    ap.add_argument("--cwd", required=True, help="the kernel's working directory (the notebook's folder)")
    ap.add_argument("--kernel", default="finalbn")
    ap.add_argument("--timeout", type=int, default=1800, help="seconds per cell")
    args = ap.parse_args()

    nb = nbformat.read(args.input, as_version=4)
    total = len(nb.cells)
    started = {}

    def on_start(cell, cell_index, **_):
        started[cell_index] = time.monotonic()

    def on_executed(cell, cell_index, **_):
        seconds = time.monotonic() - started.get(cell_index, time.monotonic())
        print(f"  cell {cell_index + 1}/{total} {seconds:6.1f} s  {first_line(cell.source)}", file=sys.stderr, flush=True)

    client = NotebookClient(
        nb,
        kernel_name=args.kernel,
        timeout=args.timeout,
        resources={"metadata": {"path": args.cwd}},
        on_cell_start=on_start,
        on_cell_executed=on_executed,
    )
    failure = None
    try:
        client.execute()
    except (CellExecutionError, CellTimeoutError, DeadKernelError) as err:
        index = max(started) if started else None  # the cell that was running
        failure = (index, err)

    nbformat.write(nb, args.output)
    sign(args.output)
    export_html(nb, args.html, os.path.splitext(os.path.basename(args.output))[0])
    if failure:
        index, err = failure
        if index is None:
            print(f"error before the first cell: {err}", file=sys.stderr)
        else:
            cell = nb.cells[index]
            detail = stderr_text(cell).strip() or str(err).strip().splitlines()[-1]
            print(f"error in cell {index + 1} of {total}: {first_line(cell.source)}\n{detail}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
