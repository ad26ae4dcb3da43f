// The auditor's trust anchors: C2SP verifier keys given on the command line or in files. Only
// these keys verify entries and checkpoints; the ledger's own /v1/keys is never trusted.
import { readFileSync } from 'node:fs';
import { ChainError, Keyring } from '@clinical-ledger/chain';
import { InputError } from './errors';

export interface KeyOptions {
  /** C2SP verifier keys "<name>+<hash>+<base64>". */
  key?: string[];
  /** Files with one verifier key a line (`#` comments and blank lines allowed). */
  keyFile?: string[];
}

function readKeyFile(path: string): string[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new InputError('FILE_UNREADABLE', `cannot read key file ${path}: ${(e as NodeJS.ErrnoException).code ?? 'EIO'}`);
  }
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
}

/** Shows enough of a key string to recognise it, never a whole (possibly secret) line. */
function preview(s: string): string {
  return JSON.stringify(s.length > 40 ? `${s.slice(0, 40)}...` : s);
}

export function buildKeyring(opts: KeyOptions): Keyring {
  const sources = [...(opts.key ?? []).map((k) => ({ k, from: '--key' })), ...(opts.keyFile ?? []).flatMap((f) => readKeyFile(f).map((k) => ({ k, from: f })))];
  if (sources.length === 0) throw new InputError('NO_KEYS', 'give at least one verifier key with --key <name+hash+key> or --key-file <file>');
  const ring = new Keyring();
  for (const { k, from } of sources) {
    if (k.startsWith('PRIVATE+KEY+')) throw new InputError('BAD_KEY', `${from}: that is a private signer key; give the public verifier key (ledgerctl keys generate prints it)`);
    try {
      ring.addVerifierKey(k);
    } catch (e) {
      const why = e instanceof ChainError ? e.message : String(e);
      throw new InputError('BAD_KEY', `${from}: bad verifier key ${preview(k)}: ${why}`);
    }
  }
  return ring;
}
