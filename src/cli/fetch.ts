// npm run data:fetch -- --manifest FILE --out DIR [--base-url URL] [--concurrency N] [--retries N]
// Downloads the images a manifest lists, checks each SHA-256, and can be rerun to resume.
import path from "node:path";
import { fetchDataset, DEFAULT_BASE_URL, DEFAULT_MAX_BYTES } from "../data/fetch.ts";
import { readManifest } from "../data/manifest.ts";
import { numberFlag, parseFlags, runCli, UsageError, type FlagSpec } from "./args.ts";

const SUMMARY =
  "Download the PlantVillage images a manifest lists into DIR/raw/color/<class>/, checking each\n" +
  "file's SHA-256. Rerun the same command to resume: files already present and correct are kept.";

const spec = {
  manifest: { type: "string", help: "manifest JSON listing the images", required: true },
  out: { type: "string", help: "folder to download into", required: true },
  "base-url": { type: "string", help: "where the original layout (raw/color/...) is served", default: DEFAULT_BASE_URL },
  concurrency: { type: "string", help: "downloads at once", default: "8" },
  retries: { type: "string", help: "extra attempts per file after a failure", default: "3" },
  timeout: { type: "string", help: "seconds allowed for one attempt", default: "60" },
  "max-mb": { type: "string", help: "largest answer accepted for one image, in MB", default: String(DEFAULT_MAX_BYTES / 1e6) },
} as const satisfies Record<string, FlagSpec>;

/** Progress on stderr: one rewritten line on a terminal, a plain line every 10% otherwise (logs, CI). */
function progressPrinter(stream: NodeJS.WriteStream) {
  let lastTenth = -1;
  return {
    update(done: number, total: number, file: string) {
      if (stream.isTTY) {
        const line = `${done}/${total} ${path.basename(file)}`;
        stream.write(`\r\x1b[K${line.slice(0, (stream.columns ?? 80) - 1)}`);
        return;
      }
      const tenth = Math.floor((done * 10) / total);
      if (tenth !== lastTenth) {
        lastTenth = tenth;
        stream.write(`fetch: ${done}/${total} files (${Math.floor((done * 100) / total)}%)\n`);
      }
    },
    end() {
      if (stream.isTTY) stream.write("\r\x1b[K");
    },
  };
}

runCli(async () => {
  const flags = parseFlags("data:fetch", SUMMARY, spec);
  const concurrency = numberFlag("concurrency", flags.concurrency, { integer: true, min: 1, max: 64 })!;
  const retries = numberFlag("retries", flags.retries, { integer: true, min: 0, max: 20 })!;
  const timeoutS = numberFlag("timeout", flags.timeout, { min: 1 })!;
  const maxMb = numberFlag("max-mb", flags["max-mb"], { min: 0.001 })!;
  const baseUrl = flags["base-url"]!;
  if (!/^https?:\/\/[^/]/.test(baseUrl)) throw new UsageError(`--base-url must be an http(s) URL, got "${baseUrl}"`);
  // A manifest that cannot be read is a wrong flag value: one line, exit 2.
  const manifest = await readManifest(flags.manifest).catch((err: Error) => {
    throw new UsageError(err.message);
  });

  console.log(`fetching ${manifest.images.length} images from ${baseUrl} into ${flags.out}`);
  const progress = progressPrinter(process.stderr);
  const summary = await fetchDataset(manifest, {
    outDir: flags.out,
    baseUrl,
    concurrency,
    retries,
    timeoutMs: timeoutS * 1000,
    maxBytes: Math.round(maxMb * 1e6),
    onProgress: progress.update,
  });
  progress.end();

  const { downloaded, skipped, failed } = summary;
  console.log(`done: ${downloaded} downloaded, ${skipped} already present, ${failed.length} failed`);
  if (failed.length === 0) return 0;
  console.error(`${failed.length} file(s) failed:`);
  for (const f of failed) console.error(`  ${f.path}: ${f.reason}`);
  console.error("rerun the same command to retry them; files already downloaded are kept");
  return 1;
});
