// Swapping some of a tfjs backend's kernels for ours, and back. Every set of faster kernels in
// this folder (cpu convolutions, cpu elementwise ops, the webgpu filter gradient) works the same
// way: keep the stock kernel for fallbacks and comparisons, count how often ours really ran.
import * as tf from "@tensorflow/tfjs";

type KernelArgs = Parameters<tf.KernelFunc>[0];
type KernelResult = tf.TensorInfo | tf.TensorInfo[];
export type CallCounts<N extends string> = Record<N, { fast: number; fallback: number }>;

export interface KernelSet<N extends string> {
  /**
   * Replace the stock kernels with ours: all of them, or only those named in `only` (the others
   * get their stock kernel back). Safe to call twice.
   */
  register(only?: readonly N[]): void;
  /** Put the stock kernels back. */
  unregister(): void;
  /** Whether any of ours is registered. */
  registered(): boolean;
  /** The names whose kernel is ours right now. */
  active(): N[];
  /** The stock kernel function, whether or not ours are registered. */
  stock(name: N): tf.KernelFunc;
  /** Counts of fast-path and fallback calls per kernel since the process started. */
  calls(): CallCounts<N>;
  /** Note that a kernel took our fast path. */
  fast(name: N): void;
  /** Run the stock kernel for a case ours does not cover, and count it. */
  fallback(name: N, args: KernelArgs): KernelResult;
}

/** `ours` is a function so kernel modules can define their kernels below the set that registers them. */
export function kernelSet<N extends string>(backendName: string, names: readonly N[], ours: () => Record<N, tf.KernelFunc>): KernelSet<N> {
  const stockKernels = new Map<N, tf.KernelFunc>();
  const counts = Object.fromEntries(names.map((name) => [name, { fast: 0, fallback: 0 }])) as CallCounts<N>;
  const active = new Set<N>(); // names whose registered kernel is ours

  const stock = (name: N): tf.KernelFunc => {
    const saved = stockKernels.get(name);
    if (saved) return saved;
    const config = tf.getKernel(name, backendName);
    if (!config) throw new Error(`tfjs has no ${backendName} kernel ${name}: start the ${backendName} backend first (startBackend does)`);
    return config.kernelFunc;
  };
  // Registers ours for the names in `wanted` and the stock kernel for the rest, touching only
  // the names whose kernel changes.
  const select = (wanted: ReadonlySet<N>) => {
    const kernels = ours();
    for (const name of names) {
      if (wanted.has(name) === active.has(name)) continue;
      tf.unregisterKernel(name, backendName);
      tf.registerKernel({ kernelName: name, backendName, kernelFunc: wanted.has(name) ? kernels[name] : stock(name) });
      if (wanted.has(name)) active.add(name);
      else active.delete(name);
    }
  };

  return {
    register(only = names) {
      // Remember every stock kernel before the first swap: afterwards tf.getKernel may return ours.
      for (const name of names) stockKernels.set(name, stock(name));
      select(new Set(only));
    },
    unregister() {
      select(new Set());
    },
    registered: () => active.size > 0,
    active: () => names.filter((name) => active.has(name)),
    stock,
    calls: () => structuredClone(counts),
    fast(name) {
      counts[name].fast++;
    },
    fallback(name, args) {
      counts[name].fallback++;
      return stock(name)(args);
    },
  };
}
