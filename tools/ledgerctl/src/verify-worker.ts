// A verification worker thread: standalone checks (parsing, canonical decoding, leaf hashes,
// signatures) of the units the main thread sends, answered by id. Trusts only the verifier keys
// it was started with.
import { parentPort, workerData } from 'node:worker_threads';
import { Keyring } from '@clinical-ledger/chain';
import { checkUnit, toWire, type WorkUnit } from './work';

const port = parentPort;
if (!port) throw new Error('verify-worker runs as a worker thread');
const keyring = Keyring.fromVerifierKeys((workerData as { keys: string[] }).keys);

port.on('message', (msg: { id: number; unit: WorkUnit }) => {
  try {
    const result = toWire(checkUnit(msg.unit, keyring));
    port.postMessage({ id: msg.id, result }, [result.leaves.buffer as ArrayBuffer, result.plain.buffer as ArrayBuffer, result.seqs.buffer as ArrayBuffer]);
  } catch (e) {
    // A bug, not a verdict: the main thread reports it as an internal error.
    port.postMessage({ id: msg.id, error: e instanceof Error ? (e.stack ?? e.message) : String(e) });
  }
});
