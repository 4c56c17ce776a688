/**
 * Runs the HTTP service until SIGTERM/SIGINT, then stops accepting, drains in-flight
 * requests, closes the pools and stops the embedded cluster if this process started it.
 *
 * @example
 * await runServer(loadConfig(process.env), log);
 */
import type { Config } from './config.ts';
import { isDatabaseUnavailable } from './db/unavailable.ts';
import { createApp } from './app.ts';
import { startHttpServer } from './http/node-server.ts';
import type { Logger } from './log.ts';
import { secretsFile, startPlatform } from './platform.ts';

export async function runServer(config: Config, log: Logger): Promise<void> {
  // A database outage must not end the service. A driver promise that rejects with an
  // outage error nobody awaits any more is logged (as a bug to fix: the chaos test looks
  // for this line) and survived; any other unhandled rejection still ends the process.
  process.on('unhandledRejection', (reason) => {
    if (isDatabaseUnavailable(reason)) {
      log.error({ err: reason }, 'unhandled rejection of a database outage error (survived)');
      return;
    }
    log.fatal({ err: reason }, 'unhandled rejection');
    process.exit(1);
  });
  const platform = await startPlatform(config, log);
  const app = createApp(platform);
  const server = startHttpServer(app.fetch, { port: config.port, host: config.host, log }, (port) => {
    log.info(
      {
        url: `http://${config.host}:${port}`,
        database: platform.server.serverVersion,
        extensions: platform.server.extensions,
        adminToken: config.adminToken ? 'from TENANTFORGE_ADMIN_TOKEN' : `in ${secretsFile(config)}`,
      },
      'tenantforge is serving',
    );
  });

  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      log.info({ signal }, 'shutting down: draining requests');
      const force = setTimeout(() => {
        log.warn('drain timed out; closing open connections');
        server.closeAllConnections();
      }, config.shutdownTimeoutMs).unref();
      server.close(async () => {
        clearTimeout(force);
        await platform.close();
        log.info('stopped');
        resolve();
      });
      server.closeIdleConnections();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}
