// Signing worker for the chain generator: signs packed 32-byte leaf hashes with the bench key.
import { parentPort, workerData } from 'node:worker_threads';
import { Ed25519Signer } from '@clinical-ledger/chain';

const port = parentPort;
if (!port) throw new Error('sign-worker runs as a worker thread');
const { name, seed } = workerData as { name: string; seed: Uint8Array };
const signer = Ed25519Signer.fromSeed(name, seed);

port.on('message', (m: { id: number; leaves: Uint8Array }) => {
  const n = m.leaves.length / 32;
  const sigs = new Uint8Array(n * 64);
  for (let i = 0; i < n; i++) sigs.set(signer.signSync(m.leaves.subarray(i * 32, i * 32 + 32)), i * 64);
  port.postMessage({ id: m.id, sigs }, [sigs.buffer]);
});
