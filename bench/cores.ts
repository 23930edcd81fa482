// How many cores this process really gets right now: the same busy loop on one worker thread, then
// on `threads` at once. On a machine shared with other work a second core may be taken, and then no
// thread pool can go faster: the thread guard needs to know before it judges our kernels.
import { Worker } from "node:worker_threads";

// A fixed amount of integer work (about 0.2-0.4 s on one core), reporting its own wall time.
const SPIN = `
const { parentPort } = require("node:worker_threads");
let x = 0;
const t0 = performance.now();
for (let i = 0; i < 2e8; i++) x = (x + i) % 1000003;
parentPort.postMessage(performance.now() - t0 + x * 0);
`;

function spin(): Promise<number> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(SPIN, { eval: true });
    worker.once("message", (ms: number) => (resolve(ms), void worker.terminate()));
    worker.once("error", reject);
  });
}

/** The speed-up `threads` busy threads get over one here and now (about `threads` on an idle machine). */
export async function parallelCapacity(threads: number): Promise<number> {
  const one = await spin();
  const many = await Promise.all(Array.from({ length: threads }, spin));
  return (threads * one) / Math.max(...many);
}
