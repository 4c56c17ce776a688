/**
 * How a backup's objects are compressed. New backups use zstd level 1: on a tenant's COPY
 * data it is several times cheaper than gzip level 1 and smaller (20.9 MB of trade rows:
 * 22 ms of CPU to 23% of the size, against 144 ms to 32%; 15.6 MB of 384-dimension
 * embeddings: 37 ms against 426 ms, both to 90%). A backup is CPU-bound, so this is most
 * of its cost. Restores still read gzip, which backups of format 1 hold.
 *
 * @example
 * rows.pipe(compressor());                    // a new backup's object
 * download.pipe(decompressor(manifest.encoding.compression));
 */
import { Transform, type TransformCallback } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { DecompressStream } from 'zstd-napi';
import zstd from 'zstd-napi/binding.js';

export const COMPRESSIONS = ['gzip', 'zstd'] as const;
export type Compression = (typeof COMPRESSIONS)[number];

/** What new backups write. */
export const COMPRESSION: Compression = 'zstd';

/** zstd's level 1; higher levels cost more CPU for a few percent on this data. */
const ZSTD_LEVEL = 1;

/** New objects' name suffix, so an object says how to read it without its manifest (format 1's was `.bin.gz`). */
export const OBJECT_SUFFIX = '.bin.zst';

/** Compressed bytes are handed on in blocks of this size (the last one smaller). */
const OUTPUT_BLOCK_BYTES = 1024 * 1024;

/** Room kept free in the output block: zstd's bound for one compressed block. */
const BLOCK_ROOM = zstd.cStreamOutSize();

/**
 * A zstd frame with its content checksum, so a decompressor notices damage on its own too.
 * zstd emits one compressed block per 128 KiB of input, a few KiB for rows; each lands in
 * one 1 MiB output buffer until it is full, rather than in a buffer of its own, which the
 * upload would hold until its 8 MiB part is complete (and the collector would chase).
 */
class ZstdWriter extends Transform {
  #cctx = new zstd.CCtx();
  #out = Buffer.allocUnsafe(OUTPUT_BLOCK_BYTES);
  #used = 0;

  constructor() {
    super();
    this.#cctx.setParameter(zstd.CParameter.compressionLevel, ZSTD_LEVEL);
    this.#cctx.setParameter(zstd.CParameter.checksumFlag, 1);
  }

  #compress(input: Buffer, directive: zstd.EndDirective): void {
    for (;;) {
      const [left, produced, consumed] = this.#cctx.compressStream2(this.#out.subarray(this.#used), input, directive);
      this.#used += produced;
      input = input.subarray(consumed);
      // Keep room for a whole compressed block; a full buffer goes on.
      if (this.#out.length - this.#used < BLOCK_ROOM) this.#handOn();
      if (input.length === 0 && (directive === zstd.EndDirective.continue || left === 0)) return;
    }
  }

  #handOn(): void {
    if (this.#used === 0) return;
    this.push(this.#out.subarray(0, this.#used));
    this.#out = Buffer.allocUnsafe(OUTPUT_BLOCK_BYTES);
    this.#used = 0;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    try {
      this.#compress(chunk, zstd.EndDirective.continue);
    } catch (err) {
      done(err as Error);
      return;
    }
    done();
  }

  override _flush(done: TransformCallback): void {
    try {
      this.#compress(Buffer.alloc(0), zstd.EndDirective.end);
      this.#handOn();
    } catch (err) {
      done(err as Error);
      return;
    }
    done();
  }
}

export const compressor = (): Transform => new ZstdWriter();

/** Set on what a decompressor rejects: the object's bytes are damaged, the store is fine. */
const DAMAGED_OBJECT = 'BACKUP_OBJECT_DAMAGED';

/** zlib names its failures (Z_DATA_ERROR and the like); zstd's carry only a message. */
export const isDamagedObjectError = (err: unknown) => {
  const code = (err as { code?: unknown }).code;
  return code === DAMAGED_OBJECT || (typeof code === 'string' && code.startsWith('Z_'));
};

const damaged = (err: Error | null | undefined) => {
  if (err) Object.assign(err, { code: DAMAGED_OBJECT });
  return err;
};

class ZstdReader extends DecompressStream {
  override _transform(chunk: Buffer, encoding: BufferEncoding, done: TransformCallback) {
    super._transform(chunk, encoding, (err, data) => done(damaged(err), data));
  }

  override _flush(done: TransformCallback) {
    super._flush((err, data) => done(damaged(err), data));
  }
}

export const decompressor = (compression: Compression): Transform =>
  compression === 'zstd' ? new ZstdReader() : createGunzip();
