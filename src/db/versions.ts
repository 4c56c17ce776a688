/**
 * Extension versions: comparing dotted versions, and which pgvector releases the
 * service warns about. pgvector 0.8.2 fixed a buffer overflow in parallel HNSW index
 * builds, 0.8.3 possible HNSW index corruption during vacuum, 0.8.4 a "hnsw graph not
 * repaired" error; older builds still work, so readiness warns instead of failing.
 *
 * @example
 * compareVersions('0.8.0', '0.8.3'); // -1
 * pgvectorWarning('0.8.0');           // "pgvector 0.8.0 is older than 0.8.3: ..."
 */
export const PGVECTOR_SAFE_VERSION = '0.8.3';

/** -1, 0 or 1, comparing numerically part by part ('0.8.10' > '0.8.9'); missing parts count as 0. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(/[.-]/).map((p) => Number.parseInt(p, 10) || 0);
  const pb = b.split(/[.-]/).map((p) => Number.parseInt(p, 10) || 0);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return 0;
}

/** A readiness warning for a pgvector version with known index defects, or undefined. */
export function pgvectorWarning(installed: string | null | undefined): string | undefined {
  if (!installed || compareVersions(installed, PGVECTOR_SAFE_VERSION) >= 0) return undefined;
  return (
    `pgvector ${installed} is older than ${PGVECTOR_SAFE_VERSION} (HNSW fixes: parallel build overflow, index corruption on vacuum): ` +
    'on Debian run `bash scripts/bootstrap-db.sh` and restart the service (start-up runs ALTER EXTENSION vector UPDATE), or upgrade pgvector on the server'
  );
}
