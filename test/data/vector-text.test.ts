/**
 * The vector text form we send is exactly the `pgvector` package's (the reference for
 * the wire format), for the values a request can carry.
 *
 * @example
 * npx vitest run test/data/vector-text.test.ts
 */
import pgvector from 'pgvector';
import { describe, expect, it } from 'vitest';
import { toVector } from '../../src/data/vector-text.ts';

describe('toVector', () => {
  it("writes what pgvector's toSql writes, and reads back through its fromSql", () => {
    const samples = [
      [0],
      [1, -2, 3.5],
      [1e-7, -4.2e-12, 3.4028234663852886e38, -3.4028234663852886e38],
      Array.from({ length: 384 }, (_, i) => Math.sin(i * 78.233) * (i % 5 ? 1 : 1e-9)),
    ];
    for (const v of samples) {
      expect(toVector(v)).toBe(pgvector.toSql(v));
      expect(pgvector.fromSql(toVector(v))).toEqual(v);
    }
  });

  it('can fail: a different separator is caught', () => {
    expect(`[${[1, 2].join(', ')}]`).not.toBe(pgvector.toSql([1, 2]));
  });
});
