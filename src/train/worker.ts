// A child process that trains runs for trainInWorkers() (pool.ts): it starts the parent's backend
// once, then trains each run it is sent and reports progress and the result over IPC. A run's
// files (checkpoints, metrics) are written by the child itself, so a crash loses nothing that a
// run in the parent would have kept.
import { startBackend, type BackendChoice } from "../backends/index.ts";
import { train } from "./learner.ts";
import type { ToWorker, FromWorker } from "./pool.ts";

const send = (message: FromWorker) => process.send!(message);
let started: Promise<unknown> | undefined;

process.on("message", async (message: ToWorker) => {
  if (message.type === "stop") process.exit(0);
  const { job, id } = message;
  try {
    started ??= startBackend({ prefer: job.info.backend as BackendChoice, log: () => {} });
    await started;
    const result = await train(job.config, {
      runDir: job.runDir,
      info: job.info,
      callbacks: {
        onBatch: (progress) => send({ type: "batch", id, progress }),
        onEpoch: (record) => send({ type: "epoch", id, record }),
      },
    });
    result.model.dispose();
    send({ type: "done", id, history: result.history, resumedAfter: result.resumedAfter });
  } catch (error) {
    send({ type: "error", id, message: error instanceof Error ? error.message : String(error) });
  }
});
