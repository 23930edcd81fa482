// The one place every command line parses its flags: a wrong or missing flag becomes a
// one-line error and exit code 2, never a stack trace.
import { statSync } from "node:fs";
import { parseArgs } from "node:util";
import { isInterrupted } from "../train/interrupt.ts";

export interface FlagSpec {
  type: "string" | "boolean";
  /** One line for --help. */
  help: string;
  required?: boolean;
  default?: string | boolean;
}

export type Flags<S extends Record<string, FlagSpec>> = {
  [K in keyof S]: S[K]["type"] extends "boolean" ? boolean : S[K]["required"] extends true ? string : string | undefined;
};

/** A user-facing error: printed as one line, without a stack. */
export class UsageError extends Error {}

export function usage(command: string, summary: string, spec: Record<string, FlagSpec>): string {
  const lines = [`usage: npm run ${command} -- [flags]`, "", summary, "", "flags:"];
  for (const [name, s] of Object.entries(spec)) {
    const arg = s.type === "string" ? ` <${name.replace(/-/g, "_").toUpperCase()}>` : "";
    const def = s.default !== undefined && s.type === "string" ? ` (default ${s.default})` : "";
    lines.push(`  --${name}${arg}`.padEnd(34) + " " + s.help + (s.required ? " (required)" : "") + def);
  }
  lines.push(`  --help`.padEnd(34) + " show this help");
  return lines.join("\n");
}

/** Parse argv against a spec; prints help and exits on --help. Throws UsageError on bad input. */
export function parseFlags<S extends Record<string, FlagSpec>>(
  command: string,
  summary: string,
  spec: S,
  argv: string[] = process.argv.slice(2),
): Flags<S> {
  const options: Record<string, { type: "string" | "boolean" }> = { help: { type: "boolean" } };
  for (const [name, s] of Object.entries(spec)) options[name] = { type: s.type };
  let values: Record<string, unknown>;
  try {
    ({ values } = parseArgs({ args: joinNegativeValues(argv, spec), options, strict: true, allowPositionals: false }));
  } catch (err) {
    throw new UsageError(`${(err as Error).message.split("\n")[0]} (see --help)`);
  }
  if (values.help) {
    console.log(usage(command, summary, spec));
    process.exit(0);
  }
  const out: Record<string, unknown> = {};
  for (const [name, s] of Object.entries(spec)) {
    const v = values[name] ?? s.default;
    if (s.required && (v === undefined || v === "")) throw new UsageError(`missing --${name} (see --help)`);
    out[name] = s.type === "boolean" ? Boolean(v) : v;
  }
  return out as Flags<S>;
}

/**
 * parseArgs takes the "-1" in `--seed -1` for a flag and fails with "argument is ambiguous".
 * Join such a value to its flag (`--seed=-1`) so that the flag's own check can say what is wrong.
 */
function joinNegativeValues(argv: string[], spec: Record<string, FlagSpec>): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const next = argv[i + 1];
    const name = flag.startsWith("--") && !flag.includes("=") ? flag.slice(2) : undefined;
    if (name && Object.hasOwn(spec, name) && spec[name].type === "string" && next !== undefined && /^-[\d.]/.test(next)) {
      out.push(`${flag}=${next}`);
      i++;
    } else out.push(flag);
  }
  return out;
}

/** Parse a flag as a number within bounds, or throw a UsageError naming the flag. */
export function numberFlag(name: string, value: string | undefined, opts: { integer?: boolean; min?: number; max?: number } = {}): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || (opts.integer && !Number.isInteger(n)))
    throw new UsageError(`--${name} must be ${opts.integer ? "an integer" : "a number"}, got "${value}"`);
  if (opts.min !== undefined && n < opts.min) throw new UsageError(`--${name} must be ≥ ${opts.min}, got ${n}`);
  if (opts.max !== undefined && n > opts.max) throw new UsageError(`--${name} must be ≤ ${opts.max}, got ${n}`);
  return n;
}

/** A path flag that must name an existing file (or folder): a UsageError naming the flag otherwise. */
export function existingPath(name: string, value: string, kind: "file" | "folder"): string {
  const st = statSync(value, { throwIfNoEntry: false });
  if (!st) throw new UsageError(`--${name} ${value} does not exist`);
  if (kind === "folder" && !st.isDirectory()) throw new UsageError(`--${name} ${value} is not a folder`);
  if (kind === "file" && !st.isFile()) throw new UsageError(`--${name} ${value} is not a file`);
  return value;
}

/**
 * Run a command's main function: user errors print one line and exit 2; other errors print
 * one line with a hint (set FINALBN_DEBUG=1 for the stack) and exit 1.
 */
export function runCli(main: () => Promise<number | void> | number | void): void {
  // A reader that stops early (`| head`) is not an error of ours: finish quietly.
  process.stdout.on("error", (err: NodeJS.ErrnoException) => {
    if (err.code === "EPIPE") process.exit(process.exitCode ?? 0);
    throw err;
  });
  Promise.resolve()
    .then(main)
    .then((code) => {
      if (typeof code === "number") process.exitCode = code;
    })
    .catch((err: unknown) => {
      const e = err as Error;
      if (err instanceof UsageError) {
        console.error(`error: ${e.message}`);
        process.exitCode = 2;
        return;
      }
      if (isInterrupted(err)) {
        // Ctrl-C: where training stopped and how to resume is all there is to say (130, as a shell reports SIGINT).
        console.error(e.message);
        process.exitCode = 130;
        return;
      }
      console.error(`error: ${e?.message ?? String(err)}`);
      if (process.env.FINALBN_DEBUG) console.error(e?.stack);
      else console.error("(set FINALBN_DEBUG=1 to see the stack trace)");
      process.exitCode = 1;
    });
}
