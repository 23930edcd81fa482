// A child process that trains runs for trainInWorkers() (pool.ts): it starts the parent's backend
// once, then trains each run it is sent and reports progress and the result over IPC. A run's
// files (checkpoints, metrics) are written by the child itself, so a crash loses nothing that a
// run in the parent would have kept. Stopping: the parent's "interrupt" message, or SIGINT itself
// (Ctrl-C in a terminal and Jupyter's interrupt reach the whole process group), ends the run after
// its current batch; losing the parent (it quit, the kernel restarted) ends the child.
import { startBackend, type BackendChoice } from "../backends/index.ts";
import { train } from "./learner.ts";
import { isInterrupted, type Interrupted } from "./interrupt.ts";
import type { ToWorker, FromWorker } from "./pool.ts";

// A parent that is gone (quit, restarted kernel) gets nothing; 'disconnect' below ends this child.
const send = (message: FromWorker) => {
  if (process.connected) process.send!(message, undefined, {}, () => {});
};
let started: Promise<unknown> | undefined;
let running: AbortController | undefined;

process.on("SIGINT", () => running?.abort());
process.on("disconnect", () => process.exit(130));

process.on("message", async (message: ToWorker) => {
  if (message.type === "stop") process.exit(0);
  if (message.type === "interrupt") return running?.abort();
  const { job, id } = message;
  const controller = (running = new AbortController());
  try {
    started ??= startBackend({ prefer: job.info.backend as BackendChoice, log: () => {} });
    await started;
    const result = await train(job.config, {
      runDir: job.runDir,
      info: job.info,
      signal: controller.signal,
      callbacks: {
        onStart: (start) => send({ type: "start", id, start }),
        onBatch: (progress) => send({ type: "batch", id, progress }),
        onEpoch: (record) => send({ type: "epoch", id, record }),
      },
    });
    result.model.dispose();
    send({ type: "done", id, history: result.history, resumedAfter: result.resumedAfter });
  } catch (error) {
    if (isInterrupted(error)) send({ type: "interrupted", id, stops: [...(error as Interrupted).stops] });
    else send({ type: "error", id, message: error instanceof Error ? error.message : String(error) });
  }
});
