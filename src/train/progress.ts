// Progress for long training runs: a line rewritten per batch on a terminal, a line per epoch
// in a log file, and an updating HTML block in a notebook (anything with an html() method, such
// as tslab's newDisplay()).
import type { BatchProgress, EpochRecord, RunStart, TrainCallbacks } from "./learner.ts";

const fmt = (x: number, d = 4) => (Number.isFinite(x) ? x.toFixed(d) : String(x));

export function batchLine(label: string, p: BatchProgress): string {
  return `${label} epoch ${p.epoch}/${p.epochs} batch ${p.batch}/${p.batches} loss ${fmt(p.loss)} lr ${p.lr.toExponential(1)} ${p.imagesPerSec.toFixed(1)} img/s`;
}

/** How a run begins: afresh (nothing to say), resumed from its checkpoint, or reused whole. */
export function startLine(label: string, s: RunStart): string | undefined {
  const done = s.history.length;
  if (!done) return undefined;
  return done >= s.epochs
    ? `${label}: reused, all ${s.epochs} epochs were trained earlier (delete its folder to train it again)`
    : `${label}: resuming after epoch ${done} of ${s.epochs}`;
}

export function epochLine(label: string, r: EpochRecord): string {
  return (
    `${label} epoch ${r.epoch}: train loss ${fmt(r.trainLoss)} test loss ${fmt(r.testLoss)} ` +
    `minority F1 ${fmt(r.f1, 3)} (P ${fmt(r.precision, 3)} R ${fmt(r.recall, 3)}) acc ${fmt(r.accuracy, 3)} ${r.seconds.toFixed(1)} s`
  );
}

/**
 * Progress of runs that train at the same time (trainInWorkers): one terminal line shows every
 * active run's epoch and batch side by side, and each finished epoch gets a line of its own.
 * Per-batch updates only where the stream is a terminal (a log file gets the epoch lines).
 * Returns a callbacksFor(label) to hand to runExperiment or pretrainBody.
 */
export function terminalProgressBoard(stream: NodeJS.WriteStream = process.stderr): (label: string) => TrainCallbacks {
  const tty = Boolean(stream.isTTY);
  const active = new Map<string, BatchProgress>();
  const redraw = () => {
    const runs = [...active];
    const line = runs.length === 1 ? batchLine(...runs[0]) : runs.map((r) => shortBatchLine(...r)).join(" | ");
    stream.write(`\r\x1b[K${line.slice(0, Math.max(20, (stream.columns ?? 120) - 1))}`);
  };
  return (label) => ({
    onStart: (s) => {
      const line = startLine(label, s);
      if (line) stream.write(`${tty ? "\r\x1b[K" : ""}${line}\n`);
    },
    onBatch: (p) => {
      if (!tty) return;
      active.set(label, p);
      redraw();
    },
    onEpoch: (r) => {
      stream.write(`${tty ? "\r\x1b[K" : ""}${epochLine(label, r)}\n`);
      if (active.get(label)?.epochs === r.epoch) active.delete(label);
      if (tty && active.size) redraw();
    },
  });
}

function shortBatchLine(label: string, p: BatchProgress): string {
  return `${label} ${p.epoch}/${p.epochs}:${p.batch}/${p.batches} loss ${fmt(p.loss, 3)}`;
}

/** Callbacks that keep one notebook output up to date (tslab: pass newDisplay()). */
export function displayProgress(label: string, display: { html(s: string): void }, opts: { everyBatches?: number } = {}): TrainCallbacks {
  const every = opts.everyBatches ?? 1;
  const epochs: string[] = [];
  let current = "";
  const render = () =>
    display.html(`<pre style="margin:0">${[...epochs, current].filter(Boolean).map(escapeHtml).join("\n")}</pre>`);
  return {
    onStart: (s) => {
      epochs.push(...s.history.map((r) => epochLine(label, r)));
      current = startLine(label, s) ?? "";
      render();
    },
    onBatch: (p) => {
      current = batchLine(label, p);
      if (p.batch % every === 0 || p.batch === p.batches) render();
    },
    onEpoch: (r) => {
      epochs.push(epochLine(label, r));
      current = "";
      render();
    },
  };
}

/** Run several callback sets as one. */
export function combineCallbacks(...all: TrainCallbacks[]): TrainCallbacks {
  return {
    onStart: (s) => all.forEach((c) => c.onStart?.(s)),
    onBatch: (p) => all.forEach((c) => c.onBatch?.(p)),
    onEpoch: (r) => all.forEach((c) => c.onEpoch?.(r)),
    stopAfterEpoch: all.find((c) => c.stopAfterEpoch !== undefined)?.stopAfterEpoch,
  };
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]!);
}
