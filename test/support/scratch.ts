/**
 * Temporary folders for tests (data dirs, copies of sql/, bench output): each is made
 * inside the run's own folder, which the global setup deletes when the run ends, so no
 * test leaves anything behind in the system's temp dir, whether or not it cleans up.
 *
 * @example
 * const dataDir = scratchDir('tf-data-');
 */
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { inject } from 'vitest';

export function scratchDir(prefix: string): string {
  return mkdtempSync(join(inject('scratchRoot'), prefix));
}
