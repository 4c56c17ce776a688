/**
 * SLO checks: each compares one measured value with one threshold from bench/slo.json.
 * `seed` targets are what users were promised; `strict` ones are our own.
 *
 * @example
 * const c = withNoiseMargin({ name: 'p50 vs baseline', kind: 'strict', value: 1.3, limit: 1.2, op: '<=', unit: 'x' }, 0.15);
 * passed(c); // limit is now 1.23: the margin widens the overhead (0.2), not the ratio
 */
export type Check = {
  name: string;
  kind: 'seed' | 'strict';
  value: number;
  limit: number;
  /** '<=' : value must not exceed limit; '>=' : value must reach it. */
  op: '<=' | '>=';
  unit: string;
  /** The limit slo.json sets, when the run checked a wider one (the CI noise margin). */
  sloLimit?: number;
  /**
   * Set when slo.json's `knownMisses` names this check ("<scenario>: <check name>"): the
   * issue that fixes it. A known miss is measured and reported as KNOWN MISS everywhere
   * but does not fail the run.
   */
  knownMiss?: string;
  /** What a miss needs explained beyond its number (e.g. the first error a load saw). */
  detail?: string;
};

export const passed = (c: Check) => (c.op === '<=' ? c.value <= c.limit : c.value >= c.limit);

/** The verdict as every report prints it: pass, **MISS**, or **KNOWN MISS** with its issue. */
export const verdict = (c: Check) =>
  passed(c) ? 'pass' : c.knownMiss ? `**KNOWN MISS** (${c.knownMiss})` : '**MISS**';

/** "p99 180 ms > 150 ms (20% over)" */
export function describeMiss(c: Check): string {
  const by = c.op === '<=' ? (c.value - c.limit) / c.limit : (c.limit - c.value) / c.limit;
  const miss = `${c.kind} target ${c.name}: ${c.value} ${c.unit} ${c.op === '<=' ? '>' : '<'} ${c.limit} ${c.unit} (${Math.round(by * 1000) / 10}% ${c.op === '<=' ? 'over' : 'short'})`;
  return c.detail ? `${miss}: ${c.detail}` : miss;
}

/**
 * The check a CI run applies: strict latency targets (ms) widen by the margin; strict
 * ratios (x) widen on their overhead only (1.2x becomes 1 + 0.2 * (1 + margin)), because
 * noise moves the overhead, not the part both sides share. Seed targets, counts and
 * recall get none. The returned check carries the limit it is judged by, so the file,
 * the summary and the exit code all give one verdict.
 */
export function withNoiseMargin(c: Check, margin: number): Check {
  if (margin <= 0 || c.kind !== 'strict' || (c.unit !== 'ms' && c.unit !== 'x') || c.op !== '<=') return c;
  const limit = c.unit === 'x' ? 1 + (c.limit - 1) * (1 + margin) : c.limit * (1 + margin);
  return { ...c, limit: Math.round(limit * 1000) / 1000, sloLimit: c.limit };
}
