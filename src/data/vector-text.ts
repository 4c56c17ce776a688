/**
 * pgvector's text form of a vector, `[1,2.5,-3e-7]`: what a `::vector` cast reads.
 * Written here rather than taken from the `pgvector` package: its `toSql` produces the
 * same text (test/data/vector-text.test.ts checks that against the package) but maps
 * every element through `Number()` and `JSON.stringify`, measured 3.6-3.9 times slower
 * per 384-dimension vector (docs/measurements.md), and a 1,000-item batch serialises
 * 1,000 of them per request. Elements are finite numbers (the request schema checks).
 *
 * @example
 * tx`select ${toVector([0.1, 0.2])}::vector`   // '[0.1,0.2]'
 */
export const toVector = (v: readonly number[]): string => `[${v.join(',')}]`;
