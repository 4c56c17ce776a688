/**
 * The object store backups live in: an S3 bucket (AWS, MinIO or any S3-compatible
 * server), under `<prefix>/tenants/<tenant id>/<backup id>/`. Streams go up as multipart
 * uploads (memory bounded by part size x queue size, whatever the object's size) and
 * come down as streams; nothing touches the local disk.
 *
 * @example
 * const store = openStore(config.backup);
 * const { bytes, sha256 } = await store.upload(store.key('tenants', id, backupId, 'trades.bin.zst'), readable);
 */
import { digestTap } from './digest-tap.ts';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type ServerSideEncryption,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { BackupConfig } from '../config.ts';
import { AppError } from '../errors.ts';

/** 8 MiB parts, 2 in flight: at most ~16 MiB buffered per upload (objects up to ~78 GiB at 10,000 parts). */
const PART_SIZE = 8 * 1024 * 1024;
const QUEUE_SIZE = 2;

export type StoredObject = { key: string; bytes: number; sha256: string };

/**
 * The store failed a request (after the SDK's own retries). Wherever it surfaces (a
 * restore, a listing, the CLI) it is a 503 `backup_store_unavailable` naming the key and
 * the store's answer; a backup job records it as its error and retries.
 */
export class StoreError extends AppError {
  override name = 'StoreError';
  constructor(detail: string, options: { cause: unknown }) {
    super(503, 'backup_store_unavailable', 'Backup store unavailable', detail);
    this.cause = options.cause;
  }
}

export class BackupStore {
  readonly client: S3Client;

  constructor(readonly config: BackupConfig & { bucket: string }) {
    this.client = new S3Client({
      region: config.region,
      endpoint: config.endpoint,
      forcePathStyle: config.forcePathStyle,
      credentials: config.accessKeyId
        ? { accessKeyId: config.accessKeyId, secretAccessKey: config.secretAccessKey! }
        : undefined,
      // The SDK's default (since 3.729) adds CRC32 checksums to every request, and sends a
      // streamed body with aws-chunked framing. S3-compatible servers such as s3rver store
      // that framing verbatim inside the object, and R2 answers 501: ask for checksums only
      // where S3 requires them. Integrity is ours anyway: the manifest holds a SHA-256 of
      // every object, checked on restore.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: 3,
    });
  }

  /** A key under the configured prefix. */
  key(...parts: string[]): string {
    return [this.config.prefix, ...parts].filter(Boolean).join('/');
  }

  get #sse(): { ServerSideEncryption?: ServerSideEncryption } {
    return this.config.sse === 'off' ? {} : { ServerSideEncryption: this.config.sse };
  }

  /**
   * Streams `body` into one object; returns its size and SHA-256 (of the stored bytes).
   * A failure aborts the multipart upload (no parts are left behind by this client).
   */
  async upload(key: string, body: Readable, options: { signal?: AbortSignal } = {}): Promise<StoredObject> {
    const tap = digestTap();
    const upload = new Upload({
      client: this.client,
      params: {
        Bucket: this.config.bucket,
        Key: key,
        Body: tap,
        ContentType: 'application/octet-stream',
        ...this.#sse,
      },
      partSize: PART_SIZE,
      queueSize: QUEUE_SIZE,
      leavePartsOnError: false,
    });
    const abort = () => void upload.abort().catch(() => {});
    options.signal?.addEventListener('abort', abort, { once: true });
    try {
      // Both sides must finish: the source (COPY, compression) and the upload.
      await Promise.all([pipeline(body, tap), upload.done()]).catch(async (err) => {
        body.destroy();
        tap.destroy();
        await upload.abort().catch(() => {});
        throw err;
      });
    } catch (err) {
      throw new StoreError(`upload of ${key} failed: ${describeS3Error(err)}`, { cause: err });
    } finally {
      options.signal?.removeEventListener('abort', abort);
    }
    return { key, bytes: tap.bytes(), sha256: tap.sha256() };
  }

  /** Writes a small JSON object in one request. */
  async putJson(key: string, value: unknown): Promise<void> {
    const body = Buffer.from(JSON.stringify(value, null, 2));
    try {
      await this.client.send(
        new PutObjectCommand({
          Bucket: this.config.bucket,
          Key: key,
          Body: body,
          ContentType: 'application/json',
          ContentLength: body.length,
          ...this.#sse,
        }),
      );
    } catch (err) {
      throw new StoreError(`writing ${key} failed: ${describeS3Error(err)}`, { cause: err });
    }
  }

  /** A small JSON object, or undefined when it does not exist. */
  async getJson(key: string): Promise<unknown | undefined> {
    const stream = await this.download(key);
    if (!stream) return undefined;
    const chunks: Buffer[] = [];
    for await (const chunk of stream) chunks.push(chunk as Buffer);
    try {
      return JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      return undefined;
    }
  }

  /** An object's bytes as a stream, or undefined when it does not exist. */
  async download(key: string): Promise<Readable | undefined> {
    try {
      const res = await this.client.send(new GetObjectCommand({ Bucket: this.config.bucket, Key: key }));
      return res.Body as Readable;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw new StoreError(`reading ${key} failed: ${describeS3Error(err)}`, { cause: err });
    }
  }

  /** Which server-side encryption the store reports for an object ('none' when it reports none). */
  async encryptionOf(key: string): Promise<string> {
    const head = await this.client.send(new HeadObjectCommand({ Bucket: this.config.bucket, Key: key }));
    return head.ServerSideEncryption ?? 'none';
  }

  /** Deletes every object under a prefix (a backup's folder). Returns how many. */
  async deletePrefix(prefix: string): Promise<number> {
    let deleted = 0;
    let token: string | undefined;
    do {
      const page = await this.client.send(
        new ListObjectsV2Command({ Bucket: this.config.bucket, Prefix: `${prefix}/`, ContinuationToken: token }),
      );
      const keys = (page.Contents ?? []).map((o) => ({ Key: o.Key! }));
      if (keys.length) {
        await this.client.send(
          new DeleteObjectsCommand({ Bucket: this.config.bucket, Delete: { Objects: keys, Quiet: true } }),
        );
        deleted += keys.length;
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return deleted;
  }

  async deleteObject(key: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.config.bucket, Key: key }));
  }

  /** Keys under a prefix (tests and diagnostics). */
  async list(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const page = await this.client.send(
        new ListObjectsV2Command({ Bucket: this.config.bucket, Prefix: prefix, ContinuationToken: token }),
      );
      keys.push(...(page.Contents ?? []).map((o) => o.Key!));
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return keys;
  }

  /** Creates the bucket when missing (development stores; in production the bucket is made beforehand). */
  async ensureBucket(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.config.bucket }));
    } catch (err) {
      if (!isNotFound(err))
        throw new StoreError(`bucket ${this.config.bucket} is not reachable: ${describeS3Error(err)}`, { cause: err });
      await this.client.send(new CreateBucketCommand({ Bucket: this.config.bucket }));
    }
  }

  close(): void {
    this.client.destroy();
  }
}

/** The store for this configuration, or a 503 saying how to configure one. */
export function openStore(config: BackupConfig): BackupStore {
  if (!config.bucket) throw notConfigured();
  return new BackupStore({ ...config, bucket: config.bucket });
}

export const notConfigured = () =>
  new AppError(
    503,
    'backups_not_configured',
    'Backups are not configured',
    'set TENANTFORGE_BACKUP_URL=s3://<bucket>[/<prefix>] (and AWS_* credentials, AWS_ENDPOINT_URL_S3 for S3-compatible stores)',
  );

function isNotFound(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return (
    e.name === 'NoSuchKey' || e.name === 'NotFound' || e.name === 'NoSuchBucket' || e.$metadata?.httpStatusCode === 404
  );
}

/** One line: the store's error code and message, or the network error. */
export function describeS3Error(err: unknown): string {
  const e = err as { name?: string; message?: string; code?: string; $metadata?: { httpStatusCode?: number } };
  const status = e.$metadata?.httpStatusCode ? ` (HTTP ${e.$metadata.httpStatusCode})` : '';
  return `${e.name ?? 'Error'}: ${e.message ?? String(err)}${status}`;
}
