import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.ts';

describe('configuration', () => {
  it('has working defaults: embedded database, port 3000', () => {
    const config = loadConfig({});
    expect(config.databaseUrl).toBeUndefined();
    expect(config.port).toBe(3000);
    expect(config.statementTimeoutMs).toBe(5_000);
    expect(config.deletedRetentionMs).toBe(30 * 86_400_000);
  });

  it.each([
    ['PORT', 'abc', /PORT="abc": .*number/i],
    ['PORT', '70000', /PORT="70000": .*65535/],
    ['DATABASE_URL', 'mysql://x', /DATABASE_URL="mysql:\/\/x": must be a postgres:\/\/ or postgresql:\/\/ URL/],
    [
      'TENANTFORGE_STATEMENT_TIMEOUT',
      '5 seconds',
      /TENANTFORGE_STATEMENT_TIMEOUT="5 seconds": must be a whole number with a unit/,
    ],
    ['LOG_LEVEL', 'loud', /LOG_LEVEL="loud": .*info/],
  ])('names %s, the bad value and the accepted form', (name, value, message) => {
    expect(() => loadConfig({ [name]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ [name]: value })).toThrow(message);
  });

  it('never echoes a secret or a password in a URL', () => {
    expect(() => loadConfig({ TENANTFORGE_ADMIN_TOKEN: 'short' })).toThrow(
      /TENANTFORGE_ADMIN_TOKEN="<redacted>": must be at least 16/,
    );
    let message: string | undefined;
    try {
      loadConfig({ DATABASE_URL: 'postgres://u:hunter2@h/db', PORT: 'x' });
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      message = (err as Error).message;
    }
    // It must have thrown (PORT is bad), named what was wrong, and kept the password out.
    expect(message).toMatch(/PORT="x"/);
    expect(message).not.toContain('hunter2');
    // A bad URL with a password in it: the URL is named, its password redacted.
    expect(() => loadConfig({ DATABASE_URL: 'mysql://u:hunter2@h/db' })).toThrow(ConfigError);
    expect(() => loadConfig({ DATABASE_URL: 'mysql://u:hunter2@h/db' })).not.toThrow(/hunter2/);
  });
});
