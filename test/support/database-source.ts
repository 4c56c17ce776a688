/**
 * Which PostgreSQL the test run uses: DATABASE_URL when set; else a container when a
 * Docker engine answers; else a throwaway local cluster built from the bootstrap.
 */
import { existsSync } from 'node:fs';
import { request } from 'node:http';

export type DatabaseSource = 'environment' | 'testcontainers' | 'local-cluster';

export function chooseDatabaseSource(
  env: Record<string, string | undefined>,
  dockerReachable: boolean,
): DatabaseSource {
  if (env.DATABASE_URL) return 'environment';
  if (dockerReachable) return 'testcontainers';
  return 'local-cluster';
}

/** Whether a Docker engine answers on its socket (testcontainers fails hard without one). */
export function dockerReachable(
  socket = process.env.DOCKER_HOST?.replace(/^unix:\/\//, '') ?? '/var/run/docker.sock',
): Promise<boolean> {
  if (!existsSync(socket)) return Promise.resolve(false);
  return new Promise((resolve) => {
    const req = request({ socketPath: socket, path: '/_ping', timeout: 2_000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => {
      req.destroy();
      resolve(false);
    });
    req.end();
  });
}
