/**
 * The row counter of binary COPY streams, fed the same bytes cut at every boundary: the
 * counts a backup records and a restore checks depend on it.
 */
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { describe, expect, it } from 'vitest';
import { CopyRowCounter } from '../../src/backup/copy-rows.ts';

const header = (extension = Buffer.alloc(0)) => {
  const fixed = Buffer.alloc(19);
  Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1').copy(fixed);
  fixed.writeUInt32BE(extension.length, 15);
  return Buffer.concat([fixed, extension]);
};

/** One row: its fields' bytes, null for NULL. */
const row = (...fields: (Buffer | null)[]) => {
  const count = Buffer.alloc(2);
  count.writeInt16BE(fields.length);
  const parts: Buffer[] = [count];
  for (const f of fields) {
    const length = Buffer.alloc(4);
    length.writeInt32BE(f === null ? -1 : f.length);
    parts.push(length);
    if (f) parts.push(f);
  }
  return Buffer.concat(parts);
};

const trailer = Buffer.from([0xff, 0xff]);

const copy = Buffer.concat([
  header(Buffer.from('ext')),
  row(Buffer.from('AAPL'), null, Buffer.alloc(0), Buffer.alloc(70_000, 1)),
  row(),
  ...Array.from({ length: 50 }, (_, i) => row(Buffer.from(String(i)), null)),
  trailer,
]);

const count = async (chunks: Buffer[]) => {
  const counter = new CopyRowCounter();
  const out = await buffer(Readable.from(chunks, { objectMode: false }).pipe(counter));
  return { rows: counter.rows, bytes: counter.bytes, complete: counter.complete, out };
};

const cut = (bytes: Buffer, size: number) =>
  Array.from({ length: Math.ceil(bytes.length / size) }, (_, i) => bytes.subarray(i * size, (i + 1) * size));

describe('CopyRowCounter', () => {
  it('counts rows (with NULLs, empty fields, zero fields and large fields) however the stream is cut', async () => {
    for (const size of [1, 2, 3, 5, 7, 19, 20, 4096, copy.length]) {
      const seen = await count(cut(copy, size));
      expect(seen, `chunks of ${size}`).toMatchObject({ rows: 52, bytes: copy.length, complete: true });
      expect(seen.out.equals(copy)).toBe(true);
    }
  });

  it('refuses what is not binary COPY, a stream cut short, and bytes after its end', async () => {
    await expect(count([Buffer.from('id\tsymbol\n1\tAAPL\n'.repeat(3))])).rejects.toThrow(/bad signature/);
    await expect(count([copy.subarray(0, copy.length - 2)])).rejects.toThrow(/ended early \(after 52 rows\)/);
    await expect(count([copy, Buffer.from([0])])).rejects.toThrow(/after the end/);
  });
});
