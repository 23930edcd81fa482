// Two things every part of finalbn does with files: hash them (manifests, the pixel cache, fetches
// and checkpoints all key on SHA-256) and write them so a crash never leaves half a file under the
// final name.
import { createHash, randomBytes } from "node:crypto";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";

export function sha256Hex(bytes: Uint8Array | string): string {
  return createHash("sha256").update(bytes).digest("hex");
}

export async function sha256File(file: string): Promise<string> {
  return sha256Hex(await readFile(file));
}

/**
 * Write under a temporary name in the same folder, then rename into place (atomic on one file
 * system). `tmp` names the temporary file when a caller needs to recognise its leftovers.
 */
export async function writeFileAtomic(file: string, data: Uint8Array | string, opts: { tmp?: string } = {}): Promise<void> {
  await mkdir(path.dirname(path.resolve(file)), { recursive: true });
  const tmp = opts.tmp ?? `${file}.${process.pid}-${randomBytes(4).toString("hex")}.tmp`;
  try {
    await writeFile(tmp, data);
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/** Whether a process still runs: a temporary file or folder named after a live pid is not a leftover. */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0); // signal 0 only asks whether the process exists
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM"; // exists, owned by someone else
  }
}
