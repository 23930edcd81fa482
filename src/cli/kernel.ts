// The Jupyter kernel process: tslab, started from this checkout under tsx, with two fixes to how it
// talks to Jupyter (applied here at start-up; nothing in node_modules is edited).
//
// 1. Busy while a cell runs. tslab handles every shell message as soon as it arrives, without
//    waiting for the one before. So while a training cell runs, any other request from the
//    notebook UI (completion, kernel info, comm info) publishes "busy" then "idle", and the kernel
//    looks idle for the rest of the cell; a cell run again meanwhile even executes alongside the
//    first. Here shell messages are handled one after another, as Jupyter's protocol expects (the
//    control channel, which carries shutdown, is not queued).
// 2. Interrupt that stops. tslab answers SIGINT by abandoning the cell's promise (it prints
//    "Interrupted asynchronously" and a stack trace) while the work goes on. When finalbn's training
//    is running, SIGINT instead asks it to stop at the end of the current batch (see
//    train/interrupt.ts); the cell then ends with one line. Other cells keep tslab's behaviour.
import { createRequire } from "node:module";
import { parseArgs } from "node:util";
import { onInterrupt, routeSigintHere } from "../train/interrupt.ts";

interface ZmqServerLike {
  control: unknown;
  handleShellMessage(sock: unknown, ...frames: unknown[]): Promise<void>;
}

const require = createRequire(import.meta.url);
const { ZmqServer } = require("tslab/dist/jupyter.js") as { ZmqServer: { prototype: ZmqServerLike } };
const { startKernel } = require("tslab/dist/main.js") as {
  startKernel(options: { configPath: string; enableFindLocal: boolean }): void;
};

const handle = ZmqServer.prototype.handleShellMessage;
let queue: Promise<void> = Promise.resolve();
ZmqServer.prototype.handleShellMessage = function (this: ZmqServerLike, sock, ...frames) {
  if (sock === this.control) return handle.call(this, sock, ...frames);
  const next = () => handle.call(this, sock, ...frames);
  queue = queue.then(next, next);
  return queue;
};

const { values } = parseArgs({ options: { "config-path": { type: "string" } } });
if (!values["config-path"]) {
  console.error("usage: kernel --config-path CONNECTION_FILE (Jupyter starts this; see npm run kernel:install)");
  process.exit(2);
}
startKernel({ configPath: values["config-path"], enableFindLocal: false });

// tslab's own SIGINT listener stays for cells that are not training.
const tslabListeners = process.listeners("SIGINT");
process.removeAllListeners("SIGINT");
routeSigintHere();
process.on("SIGINT", () => {
  if (onInterrupt()) return;
  for (const listener of tslabListeners) (listener as () => void)();
});
