// Trusted witnesses and a quorum (C2SP tlog-cosignature): which witnesses cosigned a checkpoint
// note, and whether enough of them did. Like the ledger keys, witness keys come only from the
// command line or files, never from the ledger.
import { readFileSync } from 'node:fs';
import { ChainError, checkQuorum, parseCosignerKey, verifyCosignatures, type CosignerKey } from '@clinical-ledger/chain';
import { InputError } from './errors';

export interface WitnessOptions {
  /** Witness cosignature/v1 verifier keys. */
  witness?: string[];
  /** Files with one witness key a line. */
  witnessFile?: string[];
  /** Cosignatures required (0: report who cosigned, require nobody). */
  quorum?: number;
}

export interface WitnessPolicy {
  keys: CosignerKey[];
  quorum: number;
}

/** What the witnesses said about one checkpoint. */
export interface WitnessReport {
  /** Kids of the trusted witnesses whose cosignatures verified. */
  cosignedBy: string[];
  /** Trusted witnesses given. */
  trusted: number;
  quorum: number;
}

function lines(path: string): string[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new InputError('FILE_UNREADABLE', `cannot read witness key file ${path}: ${(e as NodeJS.ErrnoException).code ?? 'EIO'}`);
  }
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
}

/** The witnesses and quorum from the options; undefined when none were given. */
export function buildWitnessPolicy(o: WitnessOptions): WitnessPolicy | undefined {
  const sources = [...(o.witness ?? []).map((k) => ({ k, from: '--witness' })), ...(o.witnessFile ?? []).flatMap((f) => lines(f).map((k) => ({ k, from: f })))];
  const quorum = o.quorum ?? 0;
  if (sources.length === 0) {
    if (quorum > 0) throw new InputError('USAGE', `--quorum ${quorum} needs the witnesses' keys: --witness <vkey> or --witness-file <file>`);
    return undefined;
  }
  const keys: CosignerKey[] = [];
  for (const { k, from } of sources) {
    try {
      const key = parseCosignerKey(k);
      if (!keys.some((x) => x.kid === key.kid)) keys.push(key);
    } catch (e) {
      throw new InputError('BAD_KEY', `${from}: bad witness key: ${e instanceof ChainError ? e.message : String(e)}`);
    }
  }
  if (quorum > keys.length) throw new InputError('USAGE', `--quorum ${quorum} is more than the ${keys.length} witness key(s) given`);
  return { keys, quorum };
}

/**
 * Checks a note's cosignatures. Throws CosignatureError (COSIGNATURE_INVALID: a trusted witness's
 * line does not verify; COSIGNATURE_QUORUM_NOT_MET: too few cosigned) with the report attached.
 */
export function checkWitnesses(note: string, policy: WitnessPolicy): WitnessReport {
  const cosigned = verifyCosignatures(note, policy.keys);
  const report: WitnessReport = { cosignedBy: cosigned.map((c) => c.kid), trusted: policy.keys.length, quorum: policy.quorum };
  try {
    checkQuorum(cosigned, policy.quorum);
  } catch (e) {
    Object.assign(e as object, { report });
    throw e;
  }
  return report;
}

/** The report a failed check carried, if any. */
export function witnessReportOf(e: unknown): WitnessReport | undefined {
  return (e as { report?: WitnessReport } | undefined)?.report;
}

export function renderWitnesses(w: WitnessReport): string {
  const who = w.cosignedBy.length ? `: ${w.cosignedBy.join(', ')}` : '';
  return `cosigned by ${w.cosignedBy.length} of ${w.trusted} trusted witness${w.trusted === 1 ? '' : 'es'}${who}${w.quorum ? ` (quorum ${w.quorum})` : ''}`;
}
