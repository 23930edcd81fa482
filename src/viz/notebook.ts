// Showing things in a notebook on the tslab kernel: plotly charts, tables, leaf images and live
// training progress, as Jupyter display data. The functions that build what is shown are pure
// and exported for tests; only `send` talks to the kernel.
//
// Why not tslab.display.raw()? It sends one MIME type per message, and a chart should go out as
// BOTH application/vnd.plotly.v1+json (drawn natively by JupyterLab's plotly extension and VS Code)
// and text/html (drawn by plotly.js in exported HTML and everywhere else). raw() hands its message
// to tslab's writer for the running cell, which takes any MIME bundle: we call that writer.
import { createRequire } from "node:module";
import sharp from "sharp";
import { curveFigure, type Figure } from "./charts.ts";
import { figureHtml, plotlyScript } from "./report.ts";
import { combineCallbacks, displayProgress, escapeHtml } from "../train/progress.ts";
import type { EpochRecord, TrainCallbacks } from "../train/learner.ts";
import { planRuns, runExperiment, type ExperimentOptions, type ExperimentResult, type VariantRun } from "../train/experiment.ts";
import { defaultWorkers } from "../train/pool.ts";
import type { RunInfo } from "../train/run-log.ts";

/** MIME type -> content (strings; binary content as base64). */
export type MimeBundle = Record<string, unknown>;

type Writer = (content: { data: MimeBundle; metadata: object; transient: { display_id?: string } }, update: boolean) => void;

/** tslab's display writer for the cell that is running, the one tslab.display.raw() uses. */
function kernelWriter(): Writer {
  const jupyter = createRequire(import.meta.url)("tslab/dist/jupyter.js") as { lastWriteDisplayData: Writer | null };
  if (!jupyter.lastWriteDisplayData) throw new Error("not running in a tslab kernel: the show* helpers only work in a notebook");
  return jupyter.lastWriteDisplayData;
}

let nextId = 0;
const uniqueId = (prefix: string) => `${prefix}-${process.pid}-${++nextId}`;

/**
 * One output area of a cell. The first show() adds it; later calls replace it in place
 * (Jupyter's update_display_data), which is how progress and charts update while a cell runs.
 * html() makes it usable by displayProgress().
 */
export class NotebookDisplay {
  private shown = false;
  constructor(private readonly id = uniqueId("display")) {}

  show(bundle: MimeBundle): void {
    kernelWriter()({ data: bundle, metadata: {}, transient: { display_id: this.id } }, this.shown);
    this.shown = true;
  }

  html(html: string): void {
    this.show({ "text/html": html, "text/plain": htmlToText(html) });
  }
}

/** Send a bundle once, as its own output. */
function send(bundle: MimeBundle): void {
  kernelWriter()({ data: bundle, metadata: {}, transient: {} }, false);
}

// ---- charts ---------------------------------------------------------------------------------

/**
 * plotly.js as a script output. Sent once per kernel (with the first chart of a notebook): in the
 * page, JupyterLab and exported HTML alike, it defines window.Plotly for every chart below it.
 * Once per kernel, not per cell, because it weighs 4.8 MB; the catch is that re-running only the
 * cell that carried it drops it from the saved notebook: Restart & Run All before saving or exporting.
 */
export function plotlyLoaderBundle(): MimeBundle {
  return { "text/html": `<script>${plotlyScript()}</script>`, "text/plain": "(plotly.js loaded)" };
}

let plotlySent = false;

/** The chart as plotly JSON and as a div drawn by plotly.js (which must be on the page already). */
export function figureBundle(fig: Figure, id = uniqueId("figure")): MimeBundle {
  const title = (fig.layout.title as { text?: string } | undefined)?.text ?? "chart";
  return {
    "application/vnd.plotly.v1+json": { data: fig.data, layout: fig.layout, config: { displaylogo: false } },
    "text/html": figureHtml(id, fig),
    "text/plain": `[plotly chart: ${title}]`,
  };
}

function ensurePlotly(): void {
  if (plotlySent) return;
  send(plotlyLoaderBundle());
  plotlySent = true;
}

/** Show a plotly figure (from src/viz/charts.ts). */
export function showFigure(fig: Figure): void {
  ensurePlotly();
  send(figureBundle(fig));
}

/** A chart that can be redrawn with new data while the cell runs. */
export function liveFigure(): { update(fig: Figure): void } {
  ensurePlotly();
  const display = new NotebookDisplay();
  return { update: (fig) => display.show(figureBundle(fig)) };
}

// ---- tables ---------------------------------------------------------------------------------

/** What showTable takes: a danfojs DataFrame (anything with columns and values), rows, or one record. */
export type TableInput = { columns: string[]; values: unknown[][] } | readonly object[] | object;

/** Columns and rows of any TableInput; a single record becomes a two-column (name, value) table. */
export function tableCells(input: TableInput): { columns: string[]; rows: unknown[][] } {
  if (Array.isArray(input)) {
    const columns = [...new Set((input as object[]).flatMap((r) => Object.keys(r)))];
    return { columns, rows: input.map((r) => columns.map((c) => (r as Record<string, unknown>)[c])) };
  }
  const maybeFrame = input as { columns?: unknown; values?: unknown };
  if (Array.isArray(maybeFrame.columns) && Array.isArray(maybeFrame.values))
    return { columns: maybeFrame.columns as string[], rows: maybeFrame.values as unknown[][] };
  return { columns: ["", "value"], rows: Object.entries(input as Record<string, unknown>) };
}

/** A cell as text: integers as they are, other numbers rounded, lists and records flattened. */
export function formatCell(v: unknown, digits = 3): string {
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : Number.isFinite(v) ? v.toFixed(digits) : String(v);
  if (v === undefined || v === null) return "";
  if (Array.isArray(v)) return v.map((x) => formatCell(x, digits)).join("; ");
  if (typeof v === "object") return Object.entries(v as object).map(([k, x]) => `${k}: ${formatCell(x, digits)}`).join(", ");
  return String(v);
}

/** An HTML table; numbers right-aligned and rounded to `digits` decimals. */
export function tableHtml(input: TableInput, opts: { digits?: number; caption?: string } = {}): string {
  const { columns, rows } = tableCells(input);
  const cell = (v: unknown, tag: "td" | "th") =>
    `<${tag} style="text-align:${typeof v === "number" ? "right" : "left"};padding:2px 10px">${escapeHtml(formatCell(v, opts.digits))}</${tag}>`;
  const head = `<tr>${columns.map((c) => cell(c, "th")).join("")}</tr>`;
  const body = rows.map((r) => `<tr>${r.map((v) => cell(v, "td")).join("")}</tr>`).join("\n");
  const caption = opts.caption ? `<caption style="caption-side:top;text-align:left">${escapeHtml(opts.caption)}</caption>` : "";
  return `<table class="finalbn-table" style="border-collapse:collapse">${caption}\n<thead>${head}</thead>\n<tbody>\n${body}\n</tbody></table>`;
}

/** The same table as aligned plain text (for consoles and text-only front ends). */
export function tableText(input: TableInput, opts: { digits?: number } = {}): string {
  const { columns, rows } = tableCells(input);
  const text = [columns, ...rows.map((r) => r.map((v) => formatCell(v, opts.digits)))];
  const widths = columns.map((_, i) => Math.max(...text.map((r) => String(r[i] ?? "").length)));
  return text.map((r) => r.map((c, i) => String(c ?? "").padEnd(widths[i])).join("  ").trimEnd()).join("\n");
}

/** Show a danfojs DataFrame, an array of rows or one record as an HTML table with rounded numbers. */
export function showTable(input: TableInput, opts: { digits?: number; caption?: string } = {}): void {
  send({ "text/html": tableHtml(input, opts), "text/plain": tableText(input, opts) });
}

/** One row per run with its last epoch's numbers, plus `extra` columns (e.g. the setting of a sweep): input for danfojs groupby. */
export function finalEpochRows(runs: readonly VariantRun[], extra: Record<string, string | number> = {}): Record<string, string | number>[] {
  return runs.map((run) => {
    const last = run.history[run.history.length - 1];
    return {
      ...extra,
      variant: run.finalBN ? "with final BN" : "without final BN",
      seed: run.seed,
      f1: last.f1,
      accuracy: last.accuracy,
      trainLoss: last.trainLoss,
      testLoss: last.testLoss,
    };
  });
}

// ---- images ---------------------------------------------------------------------------------

export interface ImageRow {
  /** Shown in the caption, e.g. "healthy". */
  title: string;
  files: readonly string[];
}

/** Image files as one PNG: a row per group, each image scaled to `size` pixels. */
export async function imageGrid(rows: readonly ImageRow[], opts: { size?: number; gap?: number } = {}): Promise<Buffer> {
  const size = opts.size ?? 64;
  const gap = opts.gap ?? 4;
  const columns = Math.max(1, ...rows.map((r) => r.files.length));
  const tiles = await Promise.all(
    rows.flatMap((row, r) =>
      row.files.map(async (file, c) => ({
        input: await sharp(file).resize(size, size, { fit: "cover" }).removeAlpha().png().toBuffer(),
        left: gap + c * (size + gap),
        top: gap + r * (size + gap),
      })),
    ),
  );
  return sharp({
    create: { width: gap + columns * (size + gap), height: gap + rows.length * (size + gap), channels: 3, background: "#ffffff" },
  })
    .composite(tiles)
    .png()
    .toBuffer();
}

/** Show image files as one grid image, a row per group, with a caption naming the rows. */
export async function showImages(rows: readonly ImageRow[], opts: { size?: number } = {}): Promise<void> {
  const png = (await imageGrid(rows, opts)).toString("base64");
  const caption = rows.map((r, i) => `row ${i + 1}: ${r.title}`).join(" · ");
  send({
    "text/html": `<figure style="margin:0"><img src="data:image/png;base64,${png}" alt="${escapeHtml(caption)}"><figcaption>${escapeHtml(caption)}</figcaption></figure>`,
    "image/png": png,
    "text/plain": caption,
  });
}

// ---- live training --------------------------------------------------------------------------

/** A progress block for one run, updated per batch (for runs too many to chart, as in a sweep). */
export function showProgress(label: string): TrainCallbacks {
  return displayProgress(label, new NotebookDisplay(), { everyBatches: 5 });
}

/** "vgg19_bn-fastai-finalbn-seed1" -> with final BN, seed 1 (see variantName in train/config.ts). */
export function parseVariantLabel(label: string): { finalBN: boolean; seed: number } {
  const m = /-(no)?finalbn-seed(-?\d+)$/.exec(label);
  if (!m) throw new Error(`not a variant label: ${label}`);
  return { finalBN: !m[1], seed: Number(m[2]) };
}

/**
 * Live training output for runExperiment: charts of minority F1, train loss and test loss that
 * gain a point per epoch (shown first, above everything), then a progress block per run. Given
 * the experiment's options, the charts have their axes and legend from the first frame. Runs
 * reused or resumed from an earlier session are drawn as soon as they are found (onStart).
 * finish() redraws the charts from the experiment's runs.
 *
 *   const live = liveTraining({ plan: options });
 *   const experiment = await runExperiment(options, { info, callbacksFor: live.callbacksFor });
 *   live.finish(experiment.runs);
 */
export function liveTraining(opts: { everyBatches?: number; plan?: ExperimentOptions } = {}): {
  callbacksFor: (label: string) => TrainCallbacks;
  finish: (runs: readonly VariantRun[]) => void;
} {
  const plan = opts.plan ? planRuns(opts.plan) : undefined;
  const epochs = plan?.base.epochs;
  // Every planned run is on the charts (and in the legend) before it has a point.
  let runs: VariantRun[] = (plan?.planned ?? []).map((p) => ({ label: p.label, finalBN: p.config.finalBN, seed: p.config.seed, runDir: p.runDir, history: [] }));
  const charts = (["f1", "trainLoss", "testLoss"] as const).map((metric) => ({ metric, chart: liveFigure() }));
  const redraw = () => charts.forEach(({ metric, chart }) => chart.update(curveFigure(runs, metric, { epochs })));
  redraw();
  const runFor = (label: string): VariantRun => {
    let run = runs.find((r) => r.label === label);
    if (!run) runs.push((run = { label, ...parseVariantLabel(label), runDir: "", history: [] as EpochRecord[] }));
    return run;
  };
  return {
    callbacksFor: (label) => {
      const run = runFor(label);
      const charted: TrainCallbacks = {
        onStart: (s) => {
          run.history = [...s.history];
          if (s.history.length) redraw();
        },
        onEpoch: (r) => {
          run.history.push(r);
          redraw();
        },
      };
      return combineCallbacks(displayProgress(label, new NotebookDisplay(), opts), charted);
    },
    finish: (finished) => {
      runs = [...finished];
      redraw();
    },
  };
}

/**
 * Train an experiment in the notebook, watching it: live charts and a progress block per run
 * (liveTraining), one run per core on the cpu backend. Kernel → Interrupt stops it after the
 * current batch; running the cell again resumes.
 */
export async function trainLive(
  options: ExperimentOptions,
  io: { info: RunInfo; workers?: number; log?: (line: string) => void },
): Promise<ExperimentResult> {
  const live = liveTraining({ plan: options });
  const experiment = await runExperiment(options, {
    info: io.info,
    callbacksFor: live.callbacksFor,
    workers: io.workers ?? defaultWorkers(io.info.backend),
    log: io.log,
  });
  live.finish(experiment.runs);
  return experiment;
}

/** Plain text of a small HTML fragment (tags dropped, entities decoded), for text/plain. */
function htmlToText(html: string): string {
  return html
    .replace(/<[^>]*>/g, "")
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&quot;/g, '"')
    .replace(/&amp;/g, "&");
}
