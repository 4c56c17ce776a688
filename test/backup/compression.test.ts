/**
 * The gzip level of a backup object follows its first block, which stays in the stream.
 * (The equality test in backup-restore.test.ts sees the levels a real tenant's objects get.)
 */
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import { createGzip } from 'node:zlib';
import { buffer } from 'node:stream/consumers';
import { describe, expect, it } from 'vitest';
import { GZIP_LEVEL, gzipLevelFor } from '../../src/backup/compression.ts';

const blocks = (...parts: Buffer[]) => Readable.from(parts, { objectMode: false });
const rows = (n: number) => Buffer.from(Array.from({ length: n }, (_, i) => `AAPL\tbuy\t${i % 50}\t101.25\n`).join(''));

describe('gzipLevelFor', () => {
  it('keeps level 1 for rows that compress, level 0 for bytes that do not', async () => {
    expect(await gzipLevelFor(blocks(rows(5_000)))).toBe(GZIP_LEVEL);
    expect(await gzipLevelFor(blocks(randomBytes(128 * 1024)))).toBe(0);
    expect(await gzipLevelFor(blocks())).toBe(GZIP_LEVEL);
  });

  it('leaves the peeked block in place: the object holds every byte, in order', async () => {
    const parts = [randomBytes(128 * 1024), rows(2_000), randomBytes(1000)];
    const stream = blocks(...parts);
    const level = await gzipLevelFor(stream);
    const stored = await buffer(stream.pipe(createGzip({ level })));
    expect(gunzipSync(stored).equals(Buffer.concat(parts))).toBe(true);
  });

  it('rejects when the stream fails before its first block', async () => {
    const failing = new Readable({
      read() {
        this.destroy(new Error('COPY failed'));
      },
    });
    await expect(gzipLevelFor(failing)).rejects.toThrow('COPY failed');
  });
});
