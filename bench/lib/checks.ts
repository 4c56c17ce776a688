/**
 * SLO checks: each compares one measured value with one threshold from bench/slo.json.
 * `seed` targets are what users were promised; `strict` ones are our own.
 */
export type Check = {
  name: string;
  kind: 'seed' | 'strict';
  value: number;
  limit: number;
  /** '<=' : value must not exceed limit; '>=' : value must reach it. */
  op: '<=' | '>=';
  unit: string;
  /**
   * A target this build is known to miss, and why (slo.json's `knownMisses`): it is
   * measured and shown as KNOWN MISS in every report, but does not fail the run.
   */
  knownMiss?: string;
};

export const passed = (c: Check) => (c.op === '<=' ? c.value <= c.limit : c.value >= c.limit);

/** "p99 180 ms > 150 ms (20% over)" */
export function describeMiss(c: Check): string {
  const by = c.op === '<=' ? (c.value - c.limit) / c.limit : (c.limit - c.value) / c.limit;
  return `${c.kind} target ${c.name}: ${c.value} ${c.unit} ${c.op === '<=' ? '>' : '<'} ${c.limit} ${c.unit} (${Math.round(by * 1000) / 10}% ${c.op === '<=' ? 'over' : 'short'})`;
}
