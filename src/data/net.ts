// What the two downloaders (images: fetch.ts, weights: models/download.ts) share: a failed
// request explained in words, and a response body streamed to disk with its SHA-256 computed on
// the way and a cap on its size, so a huge or endless answer never fills memory or the disk.
import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { pipeline } from "node:stream/promises";

/** Thrown when a body passes its cap; the caller deletes what was written. */
export class TooLargeError extends Error {}

/** What undici's codes mean for someone at a keyboard. */
const CAUSES: Record<string, string> = {
  ENOTFOUND: "host not found (no network, or no DNS)",
  EAI_AGAIN: "host name lookup failed (no network, or no DNS)",
  ECONNREFUSED: "connection refused",
  ECONNRESET: "connection reset",
  ETIMEDOUT: "connection timed out",
  ENETUNREACH: "network unreachable",
  EHOSTUNREACH: "host unreachable",
  UND_ERR_CONNECT_TIMEOUT: "connection timed out",
  UND_ERR_HEADERS_TIMEOUT: "no answer in time",
  UND_ERR_SOCKET: "connection closed by the other side",
};

/**
 * A short reason for a failed fetch. fetch() itself only says "fetch failed"; the useful part
 * (ENOTFOUND, ECONNREFUSED, a certificate problem) is in its cause.
 */
export function networkReason(err: unknown, timeoutMs?: number): string {
  const e = err as Error & { cause?: { code?: string; message?: string } };
  if (e?.name === "TimeoutError") return timeoutMs === undefined ? "timed out" : `timed out after ${timeoutMs} ms`;
  const code = e?.cause?.code;
  if (code) return CAUSES[code] ? `${CAUSES[code]} (${code})` : `${e.cause?.message ?? e.message} (${code})`;
  const cause = e?.cause?.message;
  return cause ? `${e.message} (${cause})` : String(e?.message ?? err);
}

/**
 * Write a body to `file` (a temporary name: the caller renames it once it is checked), hashing
 * it on the way. Past `maxBytes` it stops with a TooLargeError; `file` is then partial.
 */
export async function saveBody(body: AsyncIterable<Uint8Array>, file: string, maxBytes = Infinity): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash("sha256");
  let bytes = 0;
  await pipeline(
    body,
    async function* (chunks: AsyncIterable<Uint8Array>) {
      for await (const chunk of chunks) {
        bytes += chunk.length;
        if (bytes > maxBytes) throw new TooLargeError(`larger than the ${formatBytes(maxBytes)} allowed`);
        hash.update(chunk);
        yield chunk;
      }
    },
    createWriteStream(file),
  );
  return { sha256: hash.digest("hex"), bytes };
}

/** 20 MB, 512 KB, 300 bytes: sizes as a person reads them. */
export function formatBytes(n: number): string {
  if (n >= 1e6) return `${+(n / 1e6).toFixed(1)} MB`;
  if (n >= 1e3) return `${+(n / 1e3).toFixed(1)} KB`;
  return `${n} bytes`;
}
