/**
 * Counts the rows of a PostgreSQL binary COPY stream as it passes, without copying it:
 * the backup records each table's row count from the very bytes it stores, and a
 * restore checks the count of the bytes it loads. Layout: an 11-byte signature, flags
 * and a header extension, then per row an int16 field count and per field an int32
 * length (-1 for NULL) and that many bytes; a field count of -1 ends the stream.
 *
 * @example
 * const counter = new CopyRowCounter();
 * await pipeline(copyStream, counter, upload);
 * counter.rows; // 100000 (throws in the pipeline if the stream is not binary COPY)
 */
import { Transform, type TransformCallback } from 'node:stream';

const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');

export class CopyRowCounter extends Transform {
  rows = 0;
  /** Bytes seen. */
  bytes = 0;
  /** True once the end-of-data marker was seen. */
  complete = false;
  // Parser state: bytes still to skip inside a field, then what to read next.
  #skip = 0;
  #need: 'header' | 'fields' | 'length' | 'done' = 'header';
  #fieldsLeft = 0;
  #pending = Buffer.alloc(0);

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length;
    try {
      this.#parse(chunk);
    } catch (err) {
      done(err as Error);
      return;
    }
    done(null, chunk);
  }

  override _flush(done: TransformCallback): void {
    done(this.complete ? null : new Error(`binary COPY stream ended early (after ${this.rows} rows)`));
  }

  #parse(chunk: Buffer): void {
    const buf = this.#pending.length ? Buffer.concat([this.#pending, chunk]) : chunk;
    let at = 0;
    for (;;) {
      if (this.#skip > 0) {
        const n = Math.min(this.#skip, buf.length - at);
        this.#skip -= n;
        at += n;
        if (this.#skip > 0) break;
      }
      if (this.#need === 'done') {
        if (at < buf.length) throw new Error('data after the end of a binary COPY stream');
        break;
      }
      const want = this.#need === 'header' ? 19 : this.#need === 'fields' ? 2 : 4;
      if (buf.length - at < want) break;
      switch (this.#need) {
        case 'header':
          if (!buf.subarray(at, at + 11).equals(SIGNATURE)) throw new Error('not a binary COPY stream (bad signature)');
          this.#skip = buf.readUInt32BE(at + 15);
          this.#need = 'fields';
          break;
        case 'fields': {
          const fields = buf.readInt16BE(at);
          if (fields === -1) {
            this.complete = true;
            this.#need = 'done';
          } else {
            this.rows++;
            this.#fieldsLeft = fields;
            this.#need = fields > 0 ? 'length' : 'fields';
          }
          break;
        }
        case 'length': {
          const length = buf.readInt32BE(at);
          if (length > 0) this.#skip = length;
          this.#need = --this.#fieldsLeft > 0 ? 'length' : 'fields';
          break;
        }
      }
      at += want;
    }
    // Only an incomplete header or length is kept back; field bytes are skipped as they pass.
    this.#pending = at < buf.length ? Buffer.from(buf.subarray(at)) : Buffer.alloc(0);
  }
}
