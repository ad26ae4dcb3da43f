// The export file (JSON Lines): everything an auditor needs to verify a chain with no ledger.
//   {"type":"header","format":"clinical-ledger-export","version":1,"tenant":...,"origin":...,"size":N,...}
//   {"type":"checkpoint","origin":...,"size":...,"rootHash":...,"note":"<signed C2SP note>"}   (0 or 1)
//   {"type":"entry","seq":0,"eventId":...,"coreBytes":<base64>,"leafHash":<hex>,"signature":<base64>,"kid":...,"recordedAt":...}
//   ...
//   {"type":"end","entries":N}
// Entries carry the exact stored core bytes, so the file re-verifies byte for byte; the trailer
// makes a truncated file fail rather than verify as a shorter chain.
import { createWriteStream, existsSync, openSync, renameSync, rmSync, type WriteStream } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import type { CheckpointView, EntryRecord } from './client';
import { InputError } from './errors';
import type { ChainSource } from './verify';
import type { CheckedItem, UnitResult, WorkUnit } from './work';

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

/** Export lines go to the checkers in blocks of at most this many bytes (some 200 entries), unless one line is longer. */
const UNIT_BYTES = 256 * 1024;

const unreadable = (path: string, e: unknown): InputError =>
  new InputError('FILE_UNREADABLE', `cannot read export ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);

/** Reads whole lines from the start of a file, knowing where each ends (for the head of an export). */
class HeadReader {
  private buf = Buffer.alloc(0);
  private eof = false;
  /** Byte offset in the file of buf[0]. */
  private base = 0;

  constructor(
    private readonly file: FileHandle,
    private readonly path: string,
  ) {}

  /** The next line (without its \n or \r\n) and the offset just past it, or undefined at the end. */
  async next(): Promise<{ text: string; end: number } | undefined> {
    for (;;) {
      const nl = this.buf.indexOf(10);
      if (nl >= 0 || (this.eof && this.buf.length > 0)) {
        const cut = nl >= 0 ? nl + 1 : this.buf.length;
        let text = this.buf.subarray(0, nl >= 0 ? nl : cut).toString('utf8');
        if (text.endsWith('\r')) text = text.slice(0, -1);
        this.buf = this.buf.subarray(cut);
        this.base += cut;
        return { text, end: this.base };
      }
      if (this.eof) return undefined;
      const chunk = Buffer.alloc(64 * 1024);
      let n: number;
      try {
        ({ bytesRead: n } = await this.file.read(chunk, 0, chunk.length, this.base + this.buf.length));
      } catch (e) {
        throw unreadable(this.path, e);
      }
      if (n === 0) this.eof = true;
      else this.buf = Buffer.concat([this.buf, chunk.subarray(0, n)]);
    }
  }
}

/**
 * An export file as a ChainSource. The head (header, checkpoint) is read here; the entry lines go
 * to the checkers as raw blocks of whole lines, read as they are needed (flat memory for big
 * chains), and come back through admit() in order for the end record and line numbers.
 */
export class FileSource implements ChainSource {
  private endEntries: number | undefined;
  private delivered = 0;

  private constructor(
    readonly description: string,
    readonly header: ExportHeader,
    private readonly note: string | undefined,
    /** Byte offset of the first line after the head. */
    private readonly entriesAt: number,
    /** Lines before that offset. */
    private lineNo: number,
  ) {}

  static async open(path: string): Promise<FileSource> {
    let file: FileHandle;
    try {
      file = await open(path, 'r');
    } catch (e) {
      throw unreadable(path, e);
    }
    try {
      const reader = new HeadReader(file, path);
      let lineNo = 0;
      let end = 0;
      const next = async (): Promise<Line | undefined> => {
        const r = await reader.next();
        if (!r) return undefined;
        lineNo++;
        end = r.end;
        return parseLine(r.text, lineNo, path);
      };
      const header = await next();
      if (!header || header.type !== 'header' || header['format'] !== EXPORT_FORMAT) throw new InputError('BAD_EXPORT', `${path} is not a ledgerctl export (no "${EXPORT_FORMAT}" header line)`);
      if (header['version'] !== EXPORT_VERSION) throw new InputError('BAD_EXPORT', `${path}: export version ${String(header['version'])} is not supported (expected ${EXPORT_VERSION})`);
      if (typeof header['tenant'] !== 'string' || typeof header['size'] !== 'number' || !Number.isSafeInteger(header['size']) || header['size'] < 0) {
        throw new InputError('BAD_EXPORT', `${path}: header needs a tenant and a size`);
      }
      let note: string | undefined;
      for (;;) {
        const before = { end, lineNo };
        const line = await next();
        if (!line || line.type !== 'checkpoint') return new FileSource(path, header as unknown as ExportHeader, note, before.end, before.lineNo);
        if (typeof line['note'] !== 'string') throw new InputError('BAD_EXPORT', `${path} line ${lineNo}: checkpoint without a note`);
        if (note !== undefined) throw new InputError('BAD_EXPORT', `${path} line ${lineNo}: more than one checkpoint`);
        note = line['note'];
      }
    } finally {
      await file.close();
    }
  }

  async checkpointNote(): Promise<string | undefined> {
    return this.note;
  }

  async claimedSize(): Promise<number> {
    return this.header.size;
  }

  /**
   * Every line after the head, in blocks of whole lines (the caller stops at `_upTo`; extra entries
   * then show as incomplete). Each block is read straight into a buffer of its own, which moves to
   * the worker that checks it: one allocation per block and no copying.
   */
  async *work(_upTo: number): AsyncIterable<WorkUnit> {
    let file: FileHandle;
    try {
      file = await open(this.description, 'r');
    } catch (e) {
      throw unreadable(this.description, e);
    }
    try {
      let position = this.entriesAt;
      let carry = new Uint8Array(0); // the start of a line the previous read cut
      for (;;) {
        const block = new Uint8Array(Math.max(UNIT_BYTES, carry.length * 2));
        block.set(carry);
        let bytesRead: number;
        try {
          ({ bytesRead } = await file.read(block, carry.length, block.length - carry.length, position));
        } catch (e) {
          throw unreadable(this.description, e);
        }
        position += bytesRead;
        const filled = carry.length + bytesRead;
        if (bytesRead === 0) {
          if (filled > 0) yield { kind: 'lines', bytes: block.subarray(0, filled) }; // a last line with no newline
          return;
        }
        const end = block.lastIndexOf(10, filled - 1) + 1;
        carry = block.slice(end, filled);
        if (end > 0) yield { kind: 'lines', bytes: block.subarray(0, end) };
      }
    } finally {
      await file.close();
    }
  }

  /** In order: entries pass (counted); the end record is noted; anything else is a damaged export. */
  *admit(result: UnitResult): Iterable<CheckedItem> {
    const first = this.lineNo + 1;
    for (const item of result.items) {
      const at = (): string => `${this.description} line ${first + item.line}`;
      if (this.endEntries !== undefined) {
        if (item.kind === 'bad-line' && item.blank) continue;
        throw new InputError('BAD_EXPORT', `${at()}: data after the end record`);
      }
      if (item.kind === 'bad-line') throw new InputError('BAD_EXPORT', `${at()}: ${item.message}`);
      if (item.kind === 'end') {
        this.endEntries = typeof item.entries === 'number' ? item.entries : -1;
        continue;
      }
      this.delivered++;
      yield item;
    }
    this.lineNo += result.lines;
  }

  /** After work(): why the file is incomplete, if it is. */
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
