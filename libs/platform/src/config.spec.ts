import { BaseConfig, ConfigError, loadConfig } from './config';

describe('loadConfig', () => {
  it('takes defaults and environment values, converting numbers', () => {
    const cfg = loadConfig(BaseConfig, { HTTP_PORT: '9090', NATS_URL: 'nats://a:1,nats://b:2' });
    expect(cfg.HTTP_PORT).toBe(9090);
    expect(cfg.NATS_URL).toBe('nats://a:1,nats://b:2');
    expect(cfg.MONGO_DB).toBe('clinical_ledger');
  });

  it('names every bad variable and never echoes its value', () => {
    let error: unknown;
    try {
      loadConfig(BaseConfig, { HTTP_PORT: 'eighty', MONGO_URL: 'postgres://secret-password@db', LOG_LEVEL: 'loud' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems.map((p) => p.variable).sort();
    expect(problems).toEqual(['HTTP_PORT', 'LOG_LEVEL', 'MONGO_URL']);
    expect((error as Error).message).not.toContain('secret-password');
  });

  it('validates optional variables only when set', () => {
    expect(() => loadConfig(BaseConfig, { AUTH_JWKS_URL: 'not a url' })).toThrow(/AUTH_JWKS_URL/);
    expect(loadConfig(BaseConfig, {}).AUTH_JWKS_URL).toBeUndefined();
  });

  it('requires issuer and audience in production only, naming each missing variable', () => {
    expect(loadConfig(BaseConfig, {}).AUTH_ISSUER).toBeUndefined();
    let error: unknown;
    try {
      loadConfig(BaseConfig, { NODE_ENV: 'production' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems.map((p) => p.variable).sort()).toEqual(['AUTH_AUDIENCE', 'AUTH_ISSUER']);
    const cfg = loadConfig(BaseConfig, { NODE_ENV: 'production', AUTH_ISSUER: 'https://idp.example', AUTH_AUDIENCE: 'clinical-ledger' });
    expect(cfg.AUTH_MAX_TOKEN_LIFETIME_S).toBe(43_200);
    expect(() => loadConfig(BaseConfig, { AUTH_MAX_TOKEN_LIFETIME_S: 'forever' })).toThrow(/AUTH_MAX_TOKEN_LIFETIME_S/);
  });

  it('lets a service extend the base with its own variables and defaults', () => {
    class LedgerLike extends BaseConfig {
      override SERVICE_NAME = 'ledger';
    }
    expect(loadConfig(LedgerLike, {}).SERVICE_NAME).toBe('ledger');
    expect(loadConfig(LedgerLike, { SERVICE_NAME: 'ledger-2' }).SERVICE_NAME).toBe('ledger-2');
  });
});
