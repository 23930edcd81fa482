// Aligned plain-text tables for the benches: the first `left` columns left-aligned (names), the
// rest right-aligned (numbers).
export function textTable(header: readonly string[], rows: readonly (readonly string[])[], left = 1): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i < left ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join("  ")
      .trimEnd();
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}

/** A number with `digits` decimals, or "-" when there is none. */
export function fixed(value: number | null | undefined, digits: number, suffix = ""): string {
  return value === null || value === undefined || !Number.isFinite(value) ? "-" : value.toFixed(digits) + suffix;
}
