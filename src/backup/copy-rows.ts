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

// What the parser reads next.
const HEADER = 0;
const FIELD_COUNT = 1;
const FIELD_LENGTH = 2;
const DONE = 3;

export class CopyRowCounter extends Transform {
  rows = 0;
  /** Bytes seen. */
  bytes = 0;
  /** True once the end-of-data marker was seen. */
  complete = false;
  // Parser state: bytes still to skip inside a field, then what to read next.
  #skip = 0;
  #next = HEADER;
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

  // Runs once per field of every row (two million times for a 200,000-row backup): plain
  // locals and byte reads, the state written back once per chunk.
  #parse(chunk: Buffer): void {
    const buf = this.#pending.length ? Buffer.concat([this.#pending, chunk]) : chunk;
    const end = buf.length;
    let at = 0;
    let skip = this.#skip;
    let next = this.#next;
    let fieldsLeft = this.#fieldsLeft;
    let rows = this.rows;
    for (;;) {
      if (skip > 0) {
        if (end - at < skip) {
          skip -= end - at;
          at = end;
          break;
        }
        at += skip;
        skip = 0;
      }
      if (next === FIELD_LENGTH) {
        if (end - at < 4) break;
        // int32, -1 for NULL
        const length = (buf[at]! << 24) | (buf[at + 1]! << 16) | (buf[at + 2]! << 8) | buf[at + 3]!;
        at += 4;
        if (length > 0) skip = length;
        if (--fieldsLeft === 0) next = FIELD_COUNT;
      } else if (next === FIELD_COUNT) {
        if (end - at < 2) break;
        // int16, -1 at the end of the data
        const fields = (((buf[at]! << 8) | buf[at + 1]!) << 16) >> 16;
        at += 2;
        if (fields === -1) {
          this.complete = true;
          next = DONE;
        } else {
          rows++;
          fieldsLeft = fields;
          if (fields > 0) next = FIELD_LENGTH;
        }
      } else if (next === DONE) {
        if (at < end) throw new Error('data after the end of a binary COPY stream');
        break;
      } else {
        // Signature, flags, header extension length, then the extension.
        if (end - at < 19) break;
        if (!buf.subarray(at, at + 11).equals(SIGNATURE)) throw new Error('not a binary COPY stream (bad signature)');
        skip = buf.readUInt32BE(at + 15);
        at += 19;
        next = FIELD_COUNT;
      }
    }
    this.#skip = skip;
    this.#next = next;
    this.#fieldsLeft = fieldsLeft;
    this.rows = rows;
    // Only an incomplete header or length is kept back; field bytes are skipped as they pass.
    this.#pending = at < end ? Buffer.from(buf.subarray(at)) : Buffer.alloc(0);
  }
}
