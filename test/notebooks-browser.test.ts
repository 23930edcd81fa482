// The exported 03-f1-versus-loss notebook in a real browser: the pipeline (npm run notebooks) runs it
// on the tslab kernel with tiny parameters, then headless Chromium opens the HTML export, offline,
// and must draw the F1-versus-loss chart without a console error.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { chromium } from "playwright-core";
import { findPython, JUPYTER_APT } from "../src/cli/jupyter.ts";

const REPO = path.resolve(import.meta.dirname, "..");
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

test("the exported F1-versus-loss notebook draws its chart in Chromium, with no console error", { timeout: 600_000 }, async (t) => {
  if (!(await findPython(["nbclient", "nbconvert"]))) return t.skip(`Jupyter is not installed (${JUPYTER_APT})`);
  if (!existsSync(CHROMIUM)) return t.skip(`no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`);
  const out = await mkdtemp(path.join(os.tmpdir(), "finalbn-notebooks-"));
  try {
    // Tiny: 99 healthy + 1 diseased leaf to train on (the fewest a 99:1 split can have), batches of 16, one epoch, 10 + 10 to test on.
    const args = ["--only", "03", "--out", out, "--epochs", "1", "--seeds", "1", "--train-majority", "99", "--test-per-class", "10", "--batch-size", "16", "--from-scratch", "--backend", "cpu", "--cache", path.join(out, "cache")];
    await promisify(execFile)(process.execPath, ["--import", "tsx", "src/cli/notebooks.ts", ...args], { cwd: REPO, maxBuffer: 16 << 20 });

    const browser = await chromium.launchPersistentContext(path.join(out, "chromium-profile"), {
      executablePath: CHROMIUM,
      headless: true,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    });
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on("console", (m) => {
        if (m.type() === "error") errors.push(m.text());
      });
      page.on("pageerror", (e) => errors.push(String(e)));
      await page.goto(pathToFileURL(path.join(out, "03-f1-versus-loss.html")).href, { waitUntil: "load" });
      const chart = page.locator(".js-plotly-plot", { has: page.locator(".gtitle", { hasText: "Minority F1 against loss" }) });
      await chart.waitFor({ timeout: 30_000 });
      // Two runs (with and without the final BN), each drawn against train loss and against test loss.
      assert.equal(await chart.locator(".scatterlayer .trace").count(), 4);
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
    }
  } finally {
    await rm(out, { recursive: true, force: true });
  }
});
