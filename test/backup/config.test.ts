import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.ts';

describe('backup settings', () => {
  it('follow the AWS SDK variables plus TENANTFORGE_BACKUP_URL', () => {
    const { backup } = loadConfig({
      TENANTFORGE_BACKUP_URL: 's3://tf-backups/prod/eu/',
      AWS_REGION: 'eu-west-1',
      AWS_ACCESS_KEY_ID: 'AKIA1',
      AWS_SECRET_ACCESS_KEY: 'shh',
      AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:9000',
    });
    expect(backup).toMatchObject({
      bucket: 'tf-backups',
      prefix: 'prod/eu',
      region: 'eu-west-1',
      endpoint: 'http://127.0.0.1:9000',
      forcePathStyle: true,
      sse: 'AES256',
      workers: 1,
    });
    expect(loadConfig({}).backup).toMatchObject({
      bucket: undefined,
      forcePathStyle: false,
      scheduleIntervalMs: 60_000,
    });
    expect(loadConfig({ TENANTFORGE_BACKUP_URL: 's3://tf-backups' }).backup.prefix).toBe('');
  });

  it.each([
    [
      'TENANTFORGE_BACKUP_URL',
      'https://bucket/x',
      /TENANTFORGE_BACKUP_URL="https:\/\/bucket\/x": must be s3:\/\/<bucket>/,
    ],
    ['AWS_ENDPOINT_URL_S3', 'localhost:9000', /AWS_ENDPOINT_URL_S3=.*must be a URL/],
    ['TENANTFORGE_BACKUP_SSE', 'yes', /TENANTFORGE_BACKUP_SSE="yes"/],
  ])('names %s and the accepted form', (name, value, message) => {
    expect(() => loadConfig({ [name]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ [name]: value })).toThrow(message);
  });

  it('never echoes the secret key', () => {
    expect(() => loadConfig({ AWS_SECRET_ACCESS_KEY: 'hunter2', PORT: 'x' })).toThrow(/^(?!.*hunter2)/s);
    expect(() => loadConfig({ AWS_ACCESS_KEY_ID: 'AKIA1' })).toThrow(/AWS_SECRET_ACCESS_KEY must be set/);
  });
});
