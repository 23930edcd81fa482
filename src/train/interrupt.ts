// Stopping training cleanly: Ctrl-C in a terminal, Kernel → Interrupt in a notebook.
//
// Training checks an AbortSignal after every batch and, when it is set, stops before the epoch
// is finished: nothing of that epoch is written, so the run folder keeps the last finished epoch
// and running the same command (or cell) again resumes after it. The signal comes from
// trainingStop(): in a notebook the kernel (cli/kernel.ts) calls onInterrupt() on SIGINT; on the
// command line, where nobody else listens, trainingStop() listens itself while training runs
// (a second Ctrl-C quits at once).
import { inspect } from "node:util";

/** Where a run was stopped. */
export interface StopPoint {
  label: string;
  epoch: number;
  batch: number;
  batches: number;
  /** Epochs finished and saved before the stop. */
  saved: number;
}

/** Thrown by training that was asked to stop; its message is the one line a user needs. */
export class Interrupted extends Error {
  constructor(readonly stops: readonly StopPoint[] = []) {
    super(interruptedMessage(stops));
    this.name = "Interrupted";
  }

  // Shown as its message alone (tslab prints a failed cell's error with console.error).
  [inspect.custom](): string {
    return this.message;
  }
}

export function interruptedMessage(stops: readonly StopPoint[]): string {
  const where = stops.length
    ? ` (${stops.map((s) => `${s.label} in epoch ${s.epoch}, batch ${s.batch} of ${s.batches}, ${s.saved ? `epochs 1-${s.saved} saved` : "no epoch saved yet"}`).join("; ")})`
    : "";
  return `Interrupted: training stopped${where}. Run it again to resume after the last saved epoch.`;
}

export function isInterrupted(error: unknown): error is Interrupted {
  return error instanceof Interrupted || (error instanceof Error && error.name === "Interrupted");
}

// Kept on globalThis: in the notebook kernel this module is loaded twice, once by the kernel
// (cli/kernel.ts, as an ES module) and once by the cells (require("finalbn"), through tsx's
// CommonJS hook), and both copies must see the same trainings and the same flag below.
const globals = globalThis as Record<symbol, unknown>;
const REGISTRY = Symbol.for("finalbn.activeTrainings");
const active = (globals[REGISTRY] ??= new Set<AbortController>()) as Set<AbortController>;

// Set by the notebook kernel, which routes SIGINT to onInterrupt() itself. (Counting SIGINT
// listeners cannot tell: while tslab runs a cell's synchronous part, vm's breakOnSigint removes
// them all, and a second listener that exits on a repeated Ctrl-C would then kill the kernel.)
const KERNEL = Symbol.for("finalbn.kernelRoutesSigint");

/** Say that this process's SIGINT handler calls onInterrupt() (the notebook kernel does). */
export function routeSigintHere(): void {
  globals[KERNEL] = true;
}

/** Ask every training in this process to stop; false if none is running. */
export function onInterrupt(): boolean {
  if (!active.size) return false;
  for (const controller of active) controller.abort();
  return true;
}

/**
 * A stop signal for one training call; release() when it ends. Outside the notebook kernel (a
 * terminal, a test), it listens for Ctrl-C itself meanwhile. A caller's own signal, when given, is
 * used as it is instead.
 */
export function trainingStop(given?: AbortSignal): { signal: AbortSignal; release(): void } {
  if (given) return { signal: given, release: () => {} };
  const controller = new AbortController();
  active.add(controller);
  const listen = !globals[KERNEL];
  const onSigint = () => {
    if (controller.signal.aborted) process.exit(130);
    process.stderr.write("\nstopping after the current batch (Ctrl-C again to quit now)\n");
    controller.abort();
  };
  if (listen) process.on("SIGINT", onSigint);
  return {
    signal: controller.signal,
    release: () => {
      active.delete(controller);
      if (listen) process.off("SIGINT", onSigint);
    },
  };
}
