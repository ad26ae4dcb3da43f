import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Keyring } from '@clinical-ledger/chain';
import { ConfigError } from '@clinical-ledger/platform';
import type { AuditConfig } from '../config';

/** Verifier key strings in a text: separated by commas, whitespace or lines; `#` starts a comment. */
export function splitKeys(text: string): string[] {
  return text
    .split('\n')
    .map((line) => line.replace(/#.*$/, ''))
    .flatMap((line) => line.split(/[\s,]+/))
    .filter(Boolean);
}

function readKeyFiles(path: string): string[] {
  const st = statSync(path);
  const files = st.isDirectory()
    ? readdirSync(path)
        .filter((n) => !n.startsWith('.'))
        .sort()
        .map((n) => join(path, n))
        .filter((f) => statSync(f).isFile())
    : [path];
  return files.flatMap((f) => splitKeys(readFileSync(f, 'utf8')));
}

/**
 * The auditor's own trust anchor: the public keys configured for audit (AUDIT_VERIFIER_KEYS
 * and/or AUDIT_VERIFIER_KEYS_FILE). Never taken from the ledger's /v1/keys: a monitor that asks
 * the log which keys to trust cannot notice the log swapping its key. Start fails, naming the
 * variable, when none is configured or one does not parse.
 */
export function loadVerifierKeyring(config: Pick<AuditConfig, 'AUDIT_VERIFIER_KEYS' | 'AUDIT_VERIFIER_KEYS_FILE'>): Keyring {
  const problems: { variable: string; message: string }[] = [];
  const ring = new Keyring();
  const add = (variable: string, keys: string[]) => {
    for (const k of keys) {
      try {
        ring.addVerifierKey(k);
      } catch (err) {
        // The key text is public, but keep the message short and never echo whole files.
        problems.push({ variable, message: `not a C2SP verifier key "${k.slice(0, 40)}": ${err instanceof Error ? err.message : String(err)}` });
      }
    }
  };
  if (config.AUDIT_VERIFIER_KEYS) add('AUDIT_VERIFIER_KEYS', splitKeys(config.AUDIT_VERIFIER_KEYS));
  if (config.AUDIT_VERIFIER_KEYS_FILE) {
    try {
      add('AUDIT_VERIFIER_KEYS_FILE', readKeyFiles(config.AUDIT_VERIFIER_KEYS_FILE));
    } catch (err) {
      problems.push({ variable: 'AUDIT_VERIFIER_KEYS_FILE', message: `cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}` });
    }
  }
  if (!problems.length && ring.kids().length === 0) {
    problems.push({
      variable: 'AUDIT_VERIFIER_KEYS',
      message: 'no verifier key configured (AUDIT_VERIFIER_KEYS or AUDIT_VERIFIER_KEYS_FILE): the monitor needs the ledger public keys the auditor trusts',
    });
  }
  if (problems.length) throw new ConfigError(problems);
  return ring;
}
