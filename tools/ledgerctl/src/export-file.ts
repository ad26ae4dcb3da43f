// The export file (JSON Lines): everything an auditor needs to verify a chain with no ledger.
//   {"type":"header","format":"clinical-ledger-export","version":1,"tenant":...,"origin":...,"size":N,...}
//   {"type":"checkpoint","origin":...,"size":...,"rootHash":...,"note":"<signed C2SP note>"}   (0 or 1)
//   {"type":"entry","seq":0,"eventId":...,"coreBytes":<base64>,"leafHash":<hex>,"signature":<base64>,"kid":...,"recordedAt":...}
//   ...
//   {"type":"end","entries":N}
// Entries carry the exact stored core bytes, so the file re-verifies byte for byte; the trailer
// makes a truncated file fail rather than verify as a shorter chain.
import { createReadStream, createWriteStream, existsSync, openSync, renameSync, rmSync, type WriteStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { CheckpointView, EntryRecord } from './client';
import { InputError } from './errors';
import type { ChainSource } from './verify';

export const EXPORT_FORMAT = 'clinical-ledger-export';
export const EXPORT_VERSION = 1;

export interface ExportHeader {
  type: 'header';
  format: typeof EXPORT_FORMAT;
  version: typeof EXPORT_VERSION;
  tenant: string;
  origin?: string;
  /** Entries in the file (the chain's size when the export began). */
  size: number;
  exportedFrom?: string;
  exportedAt: string;
}

/** Writes an export line by line, to a temp file renamed into place at the end (or to stdout). */
export class ExportWriter {
  private readonly stream: NodeJS.WritableStream;
  private readonly tmp: string | undefined;
  private entries = 0;
  private failed: Error | undefined;

  constructor(
    private readonly out: string,
    opts: { force?: boolean; stdout?: NodeJS.WritableStream } = {},
  ) {
    if (out === '-') {
      this.stream = opts.stdout ?? process.stdout;
    } else {
      if (!opts.force && existsSync(out)) throw new InputError('FILE_EXISTS', `${out} already exists (--force replaces it)`);
      this.tmp = `${out}.${process.pid}.partial`;
      let fd: number;
      try {
        fd = openSync(this.tmp, 'wx', 0o644); // synchronously, so a bad path fails here, typed
      } catch (e) {
        throw new InputError('FILE_UNWRITABLE', `cannot write ${out}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      }
      this.stream = createWriteStream('', { fd });
    }
    this.stream.on('error', (e: Error) => (this.failed ??= e));
  }

  get count(): number {
    return this.entries;
  }

  private async line(obj: unknown): Promise<void> {
    if (this.failed) throw this.failed;
    if (!this.stream.write(`${JSON.stringify(obj)}\n`)) {
      // Wait for room, or for the error that means there will be none.
      await new Promise<void>((resolve) => {
        const done = () => {
          this.stream.off('drain', done);
          this.stream.off('error', done);
          resolve();
        };
        this.stream.on('drain', done);
        this.stream.on('error', done);
      });
    }
    if (this.failed) throw this.failed;
  }

  header(h: Omit<ExportHeader, 'type' | 'format' | 'version'>): Promise<void> {
    return this.line({ type: 'header', format: EXPORT_FORMAT, version: EXPORT_VERSION, ...h });
  }

  checkpoint(cp: CheckpointView): Promise<void> {
    return this.line({ type: 'checkpoint', origin: cp.origin, size: cp.size, rootHash: cp.rootHash, note: cp.note });
  }

  async entry(e: EntryRecord): Promise<void> {
    this.entries++;
    await this.line({ type: 'entry', ...e });
  }

  async finish(): Promise<void> {
    await this.line({ type: 'end', entries: this.entries });
    if (this.tmp) {
      const s = this.stream as WriteStream;
      await new Promise<void>((resolve, reject) => s.end((err?: Error | null) => (err ? reject(err) : resolve())));
      renameSync(this.tmp, this.out);
    }
  }

  /** Drops a partial file after a failure. */
  abort(): void {
    if (this.tmp) {
      (this.stream as WriteStream).destroy();
      rmSync(this.tmp, { force: true });
    }
  }
}

type Line = Record<string, unknown> & { type?: unknown };

/** An export file as a ChainSource (streamed: memory stays flat for big chains). */
export class FileSource implements ChainSource {
  private endEntries: number | undefined;
  private delivered = 0;

  private constructor(
    readonly description: string,
    readonly header: ExportHeader,
    private readonly note: string | undefined,
    private readonly lines: AsyncIterator<string>,
    private lineNo: number,
    private firstEntry: Line | undefined,
  ) {}

  static async open(path: string): Promise<FileSource> {
    const input = createReadStream(path);
    const opened = new Promise<void>((resolve, reject) => {
      input.once('open', () => resolve());
      input.once('error', (e: NodeJS.ErrnoException) => reject(new InputError('FILE_UNREADABLE', `cannot read export ${path}: ${e.code ?? e.message}`)));
    });
    await opened;
    const lines = createInterface({ input, crlfDelay: Infinity })[Symbol.asyncIterator]();
    let lineNo = 0;
    const next = async (): Promise<Line | undefined> => {
      const r = await lines.next();
      if (r.done) return undefined;
      lineNo++;
      return parseLine(r.value, lineNo, path);
    };
    const header = await next();
    if (!header || header.type !== 'header' || header['format'] !== EXPORT_FORMAT) throw new InputError('BAD_EXPORT', `${path} is not a ledgerctl export (no "${EXPORT_FORMAT}" header line)`);
    if (header['version'] !== EXPORT_VERSION) throw new InputError('BAD_EXPORT', `${path}: export version ${String(header['version'])} is not supported (expected ${EXPORT_VERSION})`);
    if (typeof header['tenant'] !== 'string' || typeof header['size'] !== 'number' || !Number.isSafeInteger(header['size']) || header['size'] < 0) {
      throw new InputError('BAD_EXPORT', `${path}: header needs a tenant and a size`);
    }
    let note: string | undefined;
    let line = await next();
    while (line && line.type === 'checkpoint') {
      if (typeof line['note'] !== 'string') throw new InputError('BAD_EXPORT', `${path} line ${lineNo}: checkpoint without a note`);
      if (note !== undefined) throw new InputError('BAD_EXPORT', `${path} line ${lineNo}: more than one checkpoint`);
      note = line['note'];
      line = await next();
    }
    return new FileSource(path, header as unknown as ExportHeader, note, lines, lineNo, line);
  }

  async checkpointNote(): Promise<string | undefined> {
    return this.note;
  }

  async claimedSize(): Promise<number> {
    return this.header.size;
  }

  /** Every entry in the file (the caller stops at `_upTo`; extra entries then show as incomplete). */
  async *pages(_upTo: number): AsyncIterable<EntryRecord[]> {
    let page: EntryRecord[] = [];
    let line = this.firstEntry;
    this.firstEntry = undefined;
    while (line) {
      if (line.type === 'end') {
        this.endEntries = typeof line['entries'] === 'number' ? line['entries'] : -1;
        const r = await this.lines.next();
        if (!r.done && r.value.trim() !== '') throw new InputError('BAD_EXPORT', `${this.description} line ${this.lineNo + 1}: data after the end record`);
        break;
      }
      if (line.type !== 'entry') throw new InputError('BAD_EXPORT', `${this.description} line ${this.lineNo}: expected an entry, got ${JSON.stringify(line.type)}`);
      page.push(recordOf(line, this.lineNo, this.description));
      this.delivered++;
      if (page.length >= 1_000) {
        yield page;
        page = [];
      }
      const r = await this.lines.next();
      if (r.done) break;
      this.lineNo++;
      line = parseLine(r.value, this.lineNo, this.description);
    }
    if (page.length) yield page;
  }

  /** After pages(): why the file is incomplete, if it is. */
  incomplete(): string | undefined {
    if (this.endEntries === undefined) return `the export does not end after the ${this.header.size} entries its header announces (truncated file, or entries past the end?)`;
    if (this.endEntries !== this.delivered) return `the end record says ${this.endEntries} entries, the file holds ${this.delivered}`;
    return undefined;
  }
}

function parseLine(text: string, lineNo: number, path: string): Line {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new InputError('BAD_EXPORT', `${path} line ${lineNo}: not JSON`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new InputError('BAD_EXPORT', `${path} line ${lineNo}: not a JSON object`);
  return v as Line;
}

function recordOf(l: Line, lineNo: number, path: string): EntryRecord {
  if (typeof l['seq'] !== 'number' || typeof l['coreBytes'] !== 'string' || typeof l['signature'] !== 'string') {
    throw new InputError('BAD_EXPORT', `${path} line ${lineNo}: entry needs seq, coreBytes and signature`);
  }
  const r: EntryRecord = { seq: l['seq'], coreBytes: l['coreBytes'], signature: l['signature'] };
  for (const k of ['eventId', 'leafHash', 'kid', 'recordedAt'] as const) if (typeof l[k] === 'string') r[k] = l[k];
  return r;
}
