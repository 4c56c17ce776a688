/**
 * Joins small chunks into blocks of at least `size` bytes; a chunk that size or larger
 * passes as it is. A COPY stream can arrive one chunk per row (a CopyData message each,
 * ~100 bytes for a trade) when the server sends slowly; handed on one by one, every row
 * would cost a compressor call, a hash update and a stream turn each, several times
 * the cost of the COPY itself.
 *
 * @example
 * await pipeline(copyStream, new Coalesce(32 * 1024), compressor(), upload);
 */
import { Transform, type TransformCallback } from 'node:stream';

export class Coalesce extends Transform {
  #chunks: Buffer[] = [];
  #length = 0;

  constructor(readonly size: number) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.#chunks.push(chunk);
    this.#length += chunk.length;
    if (this.#length >= this.size) this.#emit();
    done();
  }

  override _flush(done: TransformCallback): void {
    if (this.#length > 0) this.#emit();
    done();
  }

  #emit(): void {
    this.push(this.#chunks.length === 1 ? this.#chunks[0] : Buffer.concat(this.#chunks, this.#length));
    this.#chunks = [];
    this.#length = 0;
  }
}
