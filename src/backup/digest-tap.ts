/**
 * A pass-through stream that hashes (SHA-256) and counts the bytes flowing through it:
 * what a backup object's manifest entry records on upload, and what restore checks.
 *
 * @example
 * const tap = digestTap();
 * await pipeline(source, tap, sink);
 * console.log(tap.bytes(), tap.sha256());
 */
import { createHash } from 'node:crypto';
import { Transform } from 'node:stream';

export type DigestTap = Transform & { bytes(): number; sha256(): string };

export function digestTap(): DigestTap {
  const hash = createHash('sha256');
  let bytes = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      bytes += chunk.length;
      done(null, chunk);
    },
  });
  return Object.assign(tap, { bytes: () => bytes, sha256: () => hash.digest('hex') });
}
