/**
 * A backup object's compression: new objects are zstd, objects of format-1 backups are
 * gzip, and both read back byte for byte. (The equality test in backup-restore.test.ts
 * covers a real tenant's objects end to end.)
 */
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { compressor, decompressor, isDamagedObjectError } from '../../src/backup/compression.ts';

const rows = (n: number) => Buffer.from(Array.from({ length: n }, (_, i) => `AAPL\tbuy\t${i % 50}\t101.25\n`).join(''));

const through = (input: Buffer[], transform: NodeJS.ReadWriteStream) =>
  buffer(Readable.from(input, { objectMode: false }).pipe(transform));

describe('backup object compression', () => {
  it('round-trips rows and incompressible bytes through zstd, in order', async () => {
    const parts = [rows(20_000), randomBytes(300 * 1024), rows(10)];
    const stored = await through(parts, compressor());
    expect(stored.length).toBeLessThan(Buffer.concat(parts).length);
    const back = await through([stored], decompressor('zstd'));
    expect(back.equals(Buffer.concat(parts))).toBe(true);
  });

  it('shrinks rows of numbers and text severalfold', async () => {
    const raw = rows(50_000);
    const stored = await through([raw], compressor());
    expect(stored.length).toBeLessThan(raw.length / 4);
  });

  it('rejects damaged or cut objects as damaged (a 422 for the restore, not a store outage)', async () => {
    const zstd = await through([rows(20_000)], compressor());
    const gzip = gzipSync(rows(20_000));
    const flipped = (b: Buffer) => {
      const copy = Buffer.from(b);
      copy[Math.floor(copy.length / 2)]! ^= 0x01;
      return copy;
    };
    const cases: [Buffer, 'zstd' | 'gzip'][] = [
      [flipped(zstd), 'zstd'], // caught by zstd's frame checksum
      [zstd.subarray(0, zstd.length - 100), 'zstd'],
      [flipped(gzip), 'gzip'],
      [gzip.subarray(0, gzip.length - 100), 'gzip'],
    ];
    for (const [bytes, compression] of cases) {
      const err = await through([bytes], decompressor(compression)).catch((e: unknown) => e);
      expect(err, compression).toBeInstanceOf(Error);
      expect(isDamagedObjectError(err), `${compression}: ${(err as Error).message}`).toBe(true);
    }
  });

  it('reads the gzip objects of format-1 backups', async () => {
    const raw = rows(5_000);
    const back = await through([gzipSync(raw)], decompressor('gzip'));
    expect(back.equals(raw)).toBe(true);
  });
});
