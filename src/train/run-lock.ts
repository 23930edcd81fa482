// One trainer per run folder. A second training of the same run (a notebook cell run again while
// the first still trains, the same command in two terminals) would write the same checkpoint from
// two processes. The lock is a file holding the trainer's process id; a lock whose process is
// gone (killed, crashed, machine rebooted) is stale and taken over. On a shared file system (a
// cluster) a lock from another machine cannot be checked by its process id, so the holder touches
// the file every minute and a lock untouched for five minutes is stale.
import { hostname } from "node:os";
import { mkdir, open, readFile, rm, stat, utimes } from "node:fs/promises";
import path from "node:path";
import { processAlive } from "../data/files.ts";

export const LOCK_FILE = "train.lock";
const HEARTBEAT_MS = 60_000;
const OTHER_HOST_STALE_MS = 5 * 60_000;

interface LockContent {
  pid: number;
  host: string;
  since: string;
}

export class RunLockedError extends Error {
  constructor(readonly runDir: string, readonly holder: LockContent) {
    super(
      `${runDir} is being trained by process ${holder.pid}${holder.host === hostname() ? "" : ` on ${holder.host}`} since ${holder.since}; ` +
        `wait for it to finish or stop it (Kernel → Interrupt in its notebook, Ctrl-C in its terminal), then run this again`,
    );
    this.name = "RunLockedError";
  }
}

/** Run folders locked by this process (a lock file with our own pid is ours only if listed here). */
const heldHere = new Set<string>();

/** Is this lock held by a live trainer? */
async function held(lock: LockContent, file: string): Promise<boolean> {
  if (lock.host !== hostname()) {
    const touched = await stat(file).then((s) => s.mtimeMs, () => 0);
    return Date.now() - touched < OTHER_HOST_STALE_MS;
  }
  if (lock.pid === process.pid) return heldHere.has(file);
  return processAlive(lock.pid);
}

/** Take runDir's lock or throw RunLockedError; returns the function that releases it. */
export async function lockRun(runDir: string): Promise<() => Promise<void>> {
  await mkdir(runDir, { recursive: true });
  const file = path.resolve(runDir, LOCK_FILE);
  const content: LockContent = { pid: process.pid, host: hostname(), since: new Date().toISOString() };
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const handle = await open(file, "wx");
      await handle.writeFile(JSON.stringify(content) + "\n");
      await handle.close();
      heldHere.add(file);
      const heartbeat = setInterval(() => {
        const now = new Date();
        utimes(file, now, now).catch(() => {});
      }, HEARTBEAT_MS);
      heartbeat.unref();
      return async () => {
        clearInterval(heartbeat);
        heldHere.delete(file);
        await rm(file, { force: true });
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
    const existing = await readLock(file);
    if (existing && (await held(existing, file))) throw new RunLockedError(runDir, existing);
    await rm(file, { force: true }); // stale (or unreadable: a lock cut short by a crash)
  }
  throw new Error(`could not take the lock ${file}: another process keeps creating it`);
}

async function readLock(file: string): Promise<LockContent | undefined> {
  try {
    const lock = JSON.parse(await readFile(file, "utf8")) as LockContent;
    return Number.isInteger(lock.pid) ? lock : undefined;
  } catch {
    return undefined;
  }
}
