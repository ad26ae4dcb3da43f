// What a command may touch of its process: output streams, environment, stdin. Passed in, so
// tests run the CLI in-process and read exactly what a user would see.
import { readFileSync } from 'node:fs';
import { InputError } from './errors';

export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  env: Record<string, string | undefined>;
  /** Reads all of stdin (for `-` arguments). */
  readStdin: () => Promise<Buffer>;
  /** stderr is a terminal: progress may be drawn there. */
  stderrIsTTY?: boolean;
  /** Width of that terminal. */
  columns?: number;
}

export function processIo(): CliIo {
  return {
    stdout: (t) => void process.stdout.write(t),
    stderr: (t) => void process.stderr.write(t),
    env: process.env,
    readStdin: async () => {
      const chunks: Buffer[] = [];
      for await (const c of process.stdin) chunks.push(c as Buffer);
      return Buffer.concat(chunks);
    },
    stderrIsTTY: process.stderr.isTTY === true,
    ...(process.stderr.columns ? { columns: process.stderr.columns } : {}),
  };
}

/** Reads a local file (or stdin for "-"), turning fs errors into a typed input error. */
export async function readInput(io: CliIo, path: string, what: string): Promise<Buffer> {
  if (path === '-') return io.readStdin();
  try {
    return readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'EIO';
    throw new InputError('FILE_UNREADABLE', `cannot read ${what} ${path}: ${code}`);
  }
}
