// The pieces behind the notebooks: calibration metrics, the new charts, what the display helpers
// send, parameter injection, and the rules every committed notebook follows.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import sharp from "sharp";
import { expectedCalibrationError, reliabilityBins, topProbabilities } from "../src/train/metrics.ts";
import { confidenceHistogramFigure, reliabilityFigure, sweepFigure } from "../src/viz/charts.ts";
import { figureBundle, finalEpochRows, formatCell, imageGrid, parseVariantLabel, tableCells, tableHtml, tableText } from "../src/viz/notebook.ts";
import { committedNotebooks, injectParameters, listNotebooks, notebookProblems, parameterNames, readNotebook, type Notebook } from "../src/cli/notebook-files.ts";
import { KERNEL_NAME } from "../src/cli/jupyter.ts";
import type { VariantRun } from "../src/train/experiment.ts";
import { CLASSROOM } from "../src/train/presets.ts";
import { sourceText } from "../src/cli/notebook-files.ts";
import type { EpochRecord } from "../src/train/learner.ts";

test("top probabilities, reliability bins and ECE by hand", () => {
  // Four images, two classes: confident and right, confident and wrong, unsure and right twice.
  const probs = [0.95, 0.05, 0.9, 0.1, 0.45, 0.55, 0.6, 0.4];
  const labels = [0, 1, 1, 0];
  assert.deepEqual(Array.from(topProbabilities(probs, 2), (p) => Number(p.toFixed(2))), [0.95, 0.9, 0.55, 0.6]);
  const bins = reliabilityBins(probs, labels, 2, 10);
  assert.equal(bins.length, 10);
  assert.equal(bins.reduce((s, b) => s + b.count, 0), 4);
  const high = bins[9]; // 0.9 and 0.95: one right, one wrong
  assert.equal(high.count, 2);
  assert.ok(Math.abs(high.confidence - 0.925) < 1e-6);
  assert.equal(high.accuracy, 0.5);
  assert.equal(bins[5].count, 1); // 0.55, right
  assert.equal(bins[6].count, 1); // 0.6, right
  // ECE = 2/4 * |0.5 - 0.925| + 1/4 * |1 - 0.55| + 1/4 * |1 - 0.6|
  const expected = 0.5 * 0.425 + 0.25 * 0.45 + 0.25 * 0.4;
  assert.ok(Math.abs(expectedCalibrationError(bins) - expected) < 1e-6);
  // Perfectly calibrated (and trivially so): certain and always right.
  assert.equal(expectedCalibrationError(reliabilityBins([1, 0, 0, 1], [0, 1], 2)), 0);
  assert.equal(expectedCalibrationError(reliabilityBins([], [], 2)), 0);
});

test("calibration and sweep figures carry one trace per variant, coloured by variant", () => {
  const conf = confidenceHistogramFigure([
    { name: "a", finalBN: false, confidence: new Float32Array([0.6, 0.9]) },
    { name: "b", finalBN: true, confidence: [0.7] },
  ]);
  assert.deepEqual(conf.data.map((d) => d.type), ["histogram", "histogram"]);
  assert.notEqual(JSON.stringify(conf.data[0].marker), JSON.stringify(conf.data[1].marker));
  const bins = reliabilityBins([0.9, 0.1, 0.6, 0.4], [0, 1], 2);
  const rel = reliabilityFigure([{ name: "a", finalBN: true, bins, ece: expectedCalibrationError(bins) }]);
  assert.equal(rel.data.length, 2); // the diagonal and one variant
  assert.deepEqual(rel.data[1].x, bins.filter((b) => b.count).map((b) => b.confidence));
  const sweep = sweepFigure(
    [
      { x: "99:1", finalBN: false, mean: 0.1, std: 0 },
      { x: "99:1", finalBN: true, mean: 0.6, std: 0.1 },
      { x: "50:50", finalBN: true, mean: 0.9, std: 0 },
    ],
    { title: "t", xTitle: "ratio" },
  );
  assert.deepEqual(sweep.data.map((d) => d.x), [["99:1"], ["99:1", "50:50"]]);
  assert.deepEqual((sweep.data[1].error_y as { array: number[] }).array, [0.1, 0]);
});

test("a figure goes out as plotly JSON and as HTML that draws it", () => {
  const fig = { data: [{ type: "scatter", x: [1], y: [2] }], layout: { title: { text: "T</script>" } } };
  const bundle = figureBundle(fig, "fig-1");
  assert.deepEqual((bundle["application/vnd.plotly.v1+json"] as { data: unknown }).data, fig.data);
  const html = bundle["text/html"] as string;
  assert.match(html, /<div id="fig-1"/);
  assert.match(html, /Plotly\.newPlot\("fig-1"/);
  assert.ok(!html.includes("T</script>"), "a title cannot end the script early");
  assert.equal(bundle["text/plain"], "[plotly chart: T</script>]");
});

test("tables from a DataFrame shape, rows or one record, with rounded numbers and escaped text", () => {
  const frame = { columns: ["name", "f1"], values: [["<b>", 0.123456], ["x", 2]] };
  assert.deepEqual(tableCells(frame), { columns: ["name", "f1"], rows: frame.values });
  assert.deepEqual(tableCells([{ a: 1 }, { b: 2 }]), { columns: ["a", "b"], rows: [[1, undefined], [undefined, 2]] });
  assert.deepEqual(tableCells({ backend: "cpu" }), { columns: ["", "value"], rows: [["backend", "cpu"]] });
  const html = tableHtml(frame, { caption: "c" });
  assert.match(html, /<td style="text-align:right;padding:2px 10px">0\.123<\/td>/);
  assert.match(html, /&lt;b&gt;/);
  assert.match(html, /<caption[^>]*>c<\/caption>/);
  assert.equal(tableText(frame), "name  f1\n<b>   0.123\nx     2");
  assert.equal(formatCell([{ name: "cuda", reason: "missing" }]), "name: cuda, reason: missing");
  assert.equal(formatCell(NaN), "NaN");
});

test("run labels and final-epoch rows for danfojs", () => {
  assert.deepEqual(parseVariantLabel("vgg19_bn-fastai-finalbn-seed12"), { finalBN: true, seed: 12 });
  assert.deepEqual(parseVariantLabel("resnet34-classic-nofinalbn-seed1"), { finalBN: false, seed: 1 });
  assert.throws(() => parseVariantLabel("something"), /not a variant label/);
  const epoch = (e: number, f1: number) => ({ epoch: e, f1, accuracy: 0.5, trainLoss: 1 / e, testLoss: 2 / e }) as EpochRecord;
  const runs = [{ label: "x", finalBN: true, seed: 3, runDir: "", history: [epoch(1, 0.1), epoch(2, 0.4)] }] as VariantRun[];
  assert.deepEqual(finalEpochRows(runs, { ratio: "99:1" }), [
    { ratio: "99:1", variant: "with final BN", seed: 3, f1: 0.4, accuracy: 0.5, trainLoss: 0.5, testLoss: 1 },
  ]);
});

test("an image grid is one PNG, a row per group", async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), "finalbn-grid-"));
  try {
    const files = await Promise.all(
      ["#ff0000", "#00ff00", "#0000ff"].map(async (colour, i) => {
        const file = path.join(dir, `${i}.png`);
        await sharp({ create: { width: 20, height: 10, channels: 3, background: colour } }).png().toFile(file);
        return file;
      }),
    );
    const png = await imageGrid([{ title: "a", files: files.slice(0, 2) }, { title: "b", files: files.slice(2) }], { size: 8, gap: 2 });
    const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
    assert.deepEqual([info.width, info.height], [2 + 2 * 10, 2 + 2 * 10]);
    const pixel = (x: number, y: number) => Array.from(data.subarray((y * info.width + x) * info.channels, (y * info.width + x) * info.channels + 3));
    assert.deepEqual(pixel(5, 5), [255, 0, 0]); // row 1, column 1
    assert.deepEqual(pixel(15, 5), [0, 255, 0]); // row 1, column 2
    assert.deepEqual(pixel(5, 15), [0, 0, 255]); // row 2, column 1
    assert.deepEqual(pixel(15, 15), [255, 255, 255]); // row 2 has one image: background
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("parameters are injected after the parameters cell, for declared names only", () => {
  const nb: Notebook = {
    nbformat: 4,
    nbformat_minor: 5,
    metadata: { kernelspec: { name: KERNEL_NAME } },
    cells: [
      { cell_type: "markdown", source: "# t", metadata: {} },
      { cell_type: "code", source: ["const epochs = 8;\n", "const seeds = [1];\n"], metadata: { tags: ["parameters"] }, outputs: [], execution_count: null },
      { cell_type: "code", source: "epochs", metadata: {}, outputs: [], execution_count: null },
    ],
  };
  assert.deepEqual(notebookProblems(nb), []);
  assert.deepEqual(parameterNames(nb), ["epochs", "seeds"]);
  const { notebook, injected } = injectParameters(nb, { epochs: 1, seeds: [3, 4], size: 64, backend: undefined });
  assert.deepEqual(injected, ["epochs", "seeds"]);
  assert.equal(notebook.cells.length, 4);
  assert.deepEqual(notebook.cells[2].metadata.tags, ["injected-parameters"]);
  assert.equal(notebook.cells[2].source, "// Injected by npm run notebooks\nconst epochs = 1;\nconst seeds = [3,4];");
  assert.equal(nb.cells.length, 3, "the original is unchanged");

  const executed = structuredClone(nb);
  executed.cells[2].outputs = [{ output_type: "stream" }];
  executed.cells[1].metadata = {};
  assert.deepEqual(notebookProblems(executed), [`0 cells tagged "parameters" (want exactly one)`, "code cell 2 has outputs or an execution count: clear them before committing"]);
});

// What git has committed, not the working tree: a notebook open in Jupyter gets saved with outputs
// (npm run notebooks:clean clears them), which must not fail the tests of the one who opened it.
test("committed notebooks: no outputs, one parameters cell first among code cells, the finalbn kernel", async (t) => {
  const committed = await committedNotebooks().catch((error: Error) => error);
  if (committed instanceof Error) return t.skip(`not a git checkout (${committed.message.split("\n")[0]})`);
  assert.ok(committed.length >= 6, `expected the six notebooks, found ${committed.length}`);
  for (const { file, notebook } of committed) assert.deepEqual(notebookProblems(notebook), [], file);
});

test("notebooks 02-04 train at the classroom preset the demo uses (their parameter cells spell it out)", async () => {
  const wanted = { size: CLASSROOM.size, width: CLASSROOM.width, epochs: CLASSROOM.epochs, seeds: CLASSROOM.seeds, batchSize: CLASSROOM.batchSize, lr: CLASSROOM.lr, trainMajority: CLASSROOM.trainMajority, testPerClass: CLASSROOM.testPerClass, lesionScale: CLASSROOM.lesionScale, pretrain: CLASSROOM.pretrain !== null };
  for (const file of (await listNotebooks()).filter((f) => /\/0[234]-/.test(f))) {
    const cell = (await readNotebook(file)).cells.find((c) => c.metadata.tags?.includes("parameters"))!;
    const values: Record<string, unknown> = {};
    // Each parameter is one `const name = literal;` line: evaluate the literal (numbers, 1 / 16, arrays, booleans).
    for (const m of sourceText(cell).matchAll(/^const (\w+) = ([^;]+);/gm)) if (m[1] in wanted) values[m[1]] = Function(`return (${m[2]})`)();
    assert.deepEqual(values, wanted, path.basename(file));
  }
});
