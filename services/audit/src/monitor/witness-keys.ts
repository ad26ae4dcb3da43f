import { parseCosignerKey, type CosignerKey } from '@clinical-ledger/chain';
import { ConfigError } from '@clinical-ledger/platform';
import type { AuditConfig } from '../config';
import { splitKeys } from './verifier-keys';

/** The witnesses the auditor trusts and how many of them must cosign the ledger's latest checkpoint. */
export interface WitnessPolicy {
  keys: CosignerKey[];
  quorum: number;
}

/** Provider token of the WitnessPolicy. */
export const WITNESS_POLICY = Symbol('WITNESS_POLICY');

/**
 * AUDIT_WITNESS_KEYS (C2SP cosignature/v1 verifier keys) and AUDIT_WITNESS_QUORUM, configured by
 * the auditor like the ledger's keys, never learnt from the ledger. Start fails, naming the
 * variable, on a key that does not parse or a quorum the keys can never meet.
 */
export function loadWitnessPolicy(config: Pick<AuditConfig, 'AUDIT_WITNESS_KEYS' | 'AUDIT_WITNESS_QUORUM'>): WitnessPolicy {
  const problems: { variable: string; message: string }[] = [];
  const keys: CosignerKey[] = [];
  for (const k of splitKeys(config.AUDIT_WITNESS_KEYS ?? '')) {
    try {
      const key = parseCosignerKey(k);
      if (!keys.some((x) => x.kid === key.kid)) keys.push(key);
    } catch (err) {
      problems.push({ variable: 'AUDIT_WITNESS_KEYS', message: `not a witness (cosignature/v1) key "${k.slice(0, 40)}": ${err instanceof Error ? err.message : String(err)}` });
    }
  }
  const quorum = config.AUDIT_WITNESS_QUORUM ?? 0;
  if (quorum > keys.length && !problems.length) {
    problems.push({ variable: 'AUDIT_WITNESS_QUORUM', message: `${quorum} cosignatures can never come from ${keys.length} trusted witness key(s) (AUDIT_WITNESS_KEYS)` });
  }
  if (problems.length) throw new ConfigError(problems);
  return { keys, quorum };
}
