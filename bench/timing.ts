// Timing kernels and training steps fairly: contenders alternate round by round, so a change in
// the machine's load hits all of them alike, and the median round is reported.
//
// Which clock: on the cpu backend with one thread, the CPU time of this process, which other
// people's jobs on a shared machine move much less than the wall clock; with more threads (the
// process's CPU time sums over them and would hide the gain), on a GPU (or lavapipe, whose worker
// threads would be missed too), wall time closed by a read-back.

export type Clock = "cpu" | "wall";

export function clockMs(clock: Clock): number {
  if (clock === "wall") return performance.now();
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** One thing to time: `run()` does one call and resolves once its result is really computed. */
export interface Contender {
  /** Called before each of its rounds (e.g. registers the kernels it needs). */
  before?: () => void;
  /** Its own clock, instead of the options' one (a threaded contender among single-threaded ones). */
  clock?: Clock;
  run: () => Promise<void>;
}

export interface TimingOptions {
  clock: Clock;
  /** Time each round aims for: fast calls are repeated within a round. */
  minMs: number;
  rounds: number;
  /** A contender whose warm-up call takes longer than this is timed by that one call alone. */
  slowMs?: number;
}

/**
 * Median milliseconds per call of each contender: warm-up calls, then `rounds` rounds in which every
 * contender takes its turn.
 */
export async function timeAlternating(contenders: readonly Contender[], options: TimingOptions): Promise<number[]> {
  const { minMs, rounds, slowMs = Infinity } = options;
  const timeCalls = async (c: Contender, reps: number): Promise<number> => {
    const clock = c.clock ?? options.clock;
    c.before?.();
    const start = clockMs(clock);
    for (let r = 0; r < reps; r++) await c.run();
    return (clockMs(clock) - start) / reps;
  };
  // Two warm-up calls each (the first compiles shaders and fills caches), the second sizing the rounds;
  // a contender slower than slowMs keeps its first call as its time.
  const warm: number[] = [];
  for (const c of contenders) {
    const first = await timeCalls(c, 1);
    warm.push(first > slowMs ? first : await timeCalls(c, 1));
  }
  const reps = warm.map((ms) => Math.max(1, Math.round(minMs / Math.max(ms, 1e-3))));
  const times: number[][] = contenders.map(() => []);
  for (let round = 0; round < rounds; round++) {
    for (const [i, c] of contenders.entries()) {
      if (warm[i]! > slowMs) continue;
      times[i]!.push(await timeCalls(c, reps[i]!));
    }
  }
  return times.map((t, i) => (t.length ? median(t) : warm[i]!));
}
