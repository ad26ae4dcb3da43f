// Human-readable rendering of reports. --json prints the report objects themselves instead.
import type { DeadLetterPage, ReplayResult } from './client';
import type { CheckpointVerifyReport } from './checkpoint';
import type { InclusionReport } from './inclusion';
import type { GeneratedKey } from './keys';
import type { CheckpointSummary, VerifyReport } from './verify';
import { renderWitnesses } from './witnesses';

const signers = (cp: CheckpointSummary): string =>
  `signed by ${cp.signedBy.join(', ')}${cp.otherSigners.length ? ` (also by keys not given: ${cp.otherSigners.join(', ')})` : ''}`;

export function renderVerify(r: VerifyReport): string {
  const out: string[] = [];
  if (r.ok) {
    out.push(`OK    chain ${r.tenant} (${r.source}): ${r.entries} entries verified (canonical bytes, seq continuity, hash links, leaf hashes, signatures)`);
  } else {
    const at = r.failure?.seq !== undefined ? `first bad seq ${r.failure.seq}` : 'verification failed';
    out.push(`FAIL  chain ${r.tenant} (${r.source}): ${at}: ${r.failure?.reason}: ${r.failure?.message}`);
    if (r.failure?.seq !== undefined) out.push(`      ${r.entries} entries verified before the failure`);
  }
  if (r.root) out.push(`      root        ${r.root} (over all ${r.entries} entries)`);
  if (r.stats && r.entries > 0) {
    const on = r.stats.workers ? `${r.stats.workers} worker thread${r.stats.workers > 1 ? 's' : ''}` : 'the main thread';
    out.push(`      checked     in ${r.stats.seconds.toFixed(1)} s, ${r.stats.entriesPerSecond.toLocaleString('en-US')} entries/s on ${on}, peak RSS ${Math.round(r.stats.peakRssBytes / 2 ** 20)} MiB`);
  }
  if (r.checkpoint) {
    out.push(`      checkpoint  ${r.checkpoint.origin} size ${r.checkpoint.size} root ${r.checkpoint.rootHash}, ${signers(r.checkpoint)}${r.ok ? ', root matches the entries' : ''}`);
  }
  if (r.witnesses) out.push(`      witnesses   ${renderWitnesses(r.witnesses)}`);
  if (r.uncovered) out.push(`      ${r.uncovered} entries past the checkpoint are linked and signed but not yet covered by a signed checkpoint`);
  if (r.kept) {
    const how = {
      proof: `consistent: consistency proof verified${r.ok ? ' and root recomputed from the entries' : ''}`,
      recomputed: 'consistent: root recomputed from the entries',
      failed: `NOT consistent${r.kept.consistencyMessage ? ` (${r.kept.consistencyMessage})` : ''}: history was rewritten or truncated`,
      'not-checked': 'not checked',
    }[r.kept.consistency];
    out.push(`      kept checkpoint size ${r.kept.size} root ${r.kept.rootHash}: ${how}`);
  }
  return `${out.join('\n')}\n`;
}

export function renderInclusion(r: InclusionReport): string {
  const out: string[] = [];
  const what = `entry seq ${r.seq ?? '?'}${r.eventId ? ` (event ${r.eventId})` : ''}`;
  if (r.ok) out.push(`OK    ${what} is in chain ${r.tenant} of size ${r.size}: signature by ${r.kid} verified, inclusion proof (${r.proofLength} hashes) verified`);
  else out.push(`FAIL  ${what} on chain ${r.tenant}: ${r.failure?.reason}: ${r.failure?.message}`);
  if (r.leafHash) out.push(`      leaf hash   ${r.leafHash}`);
  if (r.recordedAt) out.push(`      recorded    ${r.recordedAt}${r.type ? ` (${r.type})` : ''}`);
  if (r.checkpoint) out.push(`      checkpoint  ${r.checkpoint.origin} size ${r.checkpoint.size} root ${r.checkpoint.rootHash}, ${signers(r.checkpoint)}${r.checkpoint.stored ? '' : ' (signed on request)'}`);
  if (r.witnesses) out.push(`      witnesses   ${renderWitnesses(r.witnesses)}`);
  return `${out.join('\n')}\n`;
}

export function renderCheckpoint(r: CheckpointVerifyReport): string {
  const witnesses = r.witnesses ? [`      witnesses   ${renderWitnesses(r.witnesses)}`] : [];
  // The message starts with the code.
  if (!r.ok) return [`FAIL  checkpoint ${r.file}: ${r.failure?.message}`, ...witnesses].join('\n') + '\n';
  const cp = r.checkpoint as CheckpointSummary;
  return [
    `OK    checkpoint ${r.file}`,
    `      origin      ${cp.origin}`,
    `      size        ${cp.size}`,
    `      root        ${cp.rootHash} (hex ${cp.rootHex})`,
    `      ${signers(cp)}`,
    ...witnesses,
  ].join('\n') + '\n';
}

export function renderKey(k: GeneratedKey): string {
  const out = [
    `kid           ${k.kid}`,
    `verifier key  ${k.verifierKey}`,
    `private key   ${k.privateKeyFile} (PKCS#8 PEM, mode 0600)`,
    `verifier file ${k.verifierKeyFile}`,
    '',
    'Ledger:   LEDGER_SIGNING_KEY_FILE=' + k.privateKeyFile + ' LEDGER_SIGNING_KEY_NAME=' + k.name,
    'Auditors: ledgerctl verify ... --key ' + k.verifierKey,
  ];
  if (k.signerKey) out.push('', `signer key (SECRET) ${k.signerKey}`);
  return `${out.join('\n')}\n`;
}

export function renderDeadLetters(p: DeadLetterPage): string {
  if (!p.deadLetters.length) return `no dead letters for ${p.tenant}\n`;
  const lines = p.deadLetters.map(
    (d) =>
      `#${d.seq}  ${d.deadLetteredAt}  ${d.reason}  ${d.subject} (stream seq ${d.streamSeq}, ${d.deliveries} deliveries)  event ${d.msgId ?? '?'}${d.readable ? '' : '  [cannot be unsealed here]'}\n    ${d.detail}`,
  );
  return `${lines.join('\n')}\n${p.next !== null ? `more: --after ${p.next}\n` : ''}`;
}

export function renderReplay(r: ReplayResult): string {
  const ok = r.replayed.map((x) => `replayed #${x.seq} -> ${x.subject} (event ${x.msgId ?? '?'})`);
  const bad = r.failed.map((x) => `FAILED #${x.seq}: ${x.error}`);
  return `${[...ok, ...bad, `${r.replayed.length} replayed, ${r.failed.length} failed`].join('\n')}\n`;
}
