/**
 * MLLP framing (HL7 v2 Minimal Lower Layer Protocol): <VT> message <FS><CR>.
 *
 * Written here rather than taken from a library because intake needs exact control over what
 * happens with partial frames (TCP splits anywhere), pipelined frames (several in one chunk),
 * bytes outside a frame and frames that grow past the configured limit.
 */
export const VT = 0x0b;
export const FS = 0x1c;
export const CR = 0x0d;
const LF = 0x0a;

/** What the decoder hands out, in the order the bytes arrived. */
export type MllpItem =
  /** A complete frame's payload (without VT/FS/CR). */
  | { kind: 'frame'; payload: Buffer }
  /**
   * A frame that grew past the limit: its first bytes (enough to read MSH and answer with the
   * right control id) and its full size. Emitted when the frame ends, so answers stay in order.
   */
  | { kind: 'oversize'; head: Buffer; size: number }
  /** Bytes outside any frame (not whitespace): counted, never interpreted. */
  | { kind: 'junk'; size: number }
  /** A new VT arrived inside an unfinished frame: the unfinished part is abandoned. */
  | { kind: 'abandoned'; size: number };

export interface MllpDecoderOptions {
  /** Largest accepted payload in bytes. */
  maxFrameBytes: number;
  /** How many leading bytes of an oversize frame are kept to build its answer. */
  headBytes?: number;
}

type State = 'idle' | 'frame' | 'skip' | 'afterFs';

export class MllpDecoder {
  private state: State = 'idle';
  private chunks: Buffer[] = [];
  private size = 0;
  private junk = 0;
  private head: Buffer = Buffer.alloc(0);
  private readonly headBytes: number;

  constructor(private readonly opts: MllpDecoderOptions) {
    if (!Number.isInteger(opts.maxFrameBytes) || opts.maxFrameBytes < 1) throw new RangeError('maxFrameBytes must be a positive integer');
    this.headBytes = Math.min(opts.headBytes ?? 4096, opts.maxFrameBytes);
  }

  /** Bytes of an unfinished frame received so far (an oversize one counts all it skipped). */
  get pendingBytes(): number {
    return this.size;
  }

  /** Bytes this decoder holds in memory right now: the unfinished frame, or an oversize frame's head. */
  get heldBytes(): number {
    if (this.state === 'frame') return this.size;
    if (this.state === 'skip') return this.head.length;
    return 0;
  }

  /** Feeds one chunk; returns every item it completed. Never throws for any input. */
  push(chunk: Buffer): MllpItem[] {
    const out: MllpItem[] = [];
    let i = 0;
    while (i < chunk.length) {
      switch (this.state) {
        case 'afterFs': {
          // The CR after FS is part of the trailer; a missing one is tolerated (lenient senders).
          if (chunk[i] === CR) i++;
          this.state = 'idle';
          break;
        }
        case 'idle': {
          const b = chunk[i] as number;
          if (b === VT) {
            this.flushJunk(out);
            this.startFrame();
            i++;
          } else {
            // Line breaks between frames are common (engines that add CRLF); anything else is junk.
            if (b !== CR && b !== LF && b !== 0x20 && b !== 0x09) this.junk++;
            i++;
          }
          break;
        }
        case 'frame':
        case 'skip': {
          const end = indexOfAny(chunk, i);
          const stop = end === -1 ? chunk.length : end;
          // A frame keeps its bytes (and may outgrow the limit here, turning to skip); an oversize one
          // only counts them until its end.
          if (this.state === 'frame') {
            if (stop > i) this.append(chunk.subarray(i, stop));
          } else this.size += stop - i;
          i = stop;
          if (end === -1) break;
          i = end + 1;
          if (chunk[end] === VT) {
            // Never terminated: nobody waits for an answer to it.
            out.push({ kind: 'abandoned', size: this.size });
            this.startFrame();
          } else if (this.state === 'frame') {
            // FS: the frame is complete.
            this.finishFrame(out);
          } else {
            out.push({ kind: 'oversize', head: this.head, size: this.size });
            this.reset('afterFs');
          }
          break;
        }
      }
    }
    if (this.state === 'idle') this.flushJunk(out);
    return out;
  }

  private startFrame(): void {
    this.chunks = [];
    this.size = 0;
    this.head = Buffer.alloc(0);
    this.state = 'frame';
  }

  private append(part: Buffer): void {
    if (this.size + part.length > this.opts.maxFrameBytes) {
      // Keep the head for the answer, drop the rest, and skip to the frame's end.
      const kept = Buffer.concat([...this.chunks, part], Math.min(this.size + part.length, this.headBytes));
      this.head = Buffer.from(kept.subarray(0, this.headBytes));
      this.chunks = [];
      this.size += part.length;
      this.state = 'skip';
      return;
    }
    // Copy: the socket may reuse its buffer.
    this.chunks.push(Buffer.from(part));
    this.size += part.length;
  }

  private finishFrame(out: MllpItem[]): void {
    out.push({ kind: 'frame', payload: Buffer.concat(this.chunks, this.size) });
    this.reset('afterFs');
  }

  private reset(next: State): void {
    this.chunks = [];
    this.size = 0;
    this.head = Buffer.alloc(0);
    this.state = next;
  }

  private flushJunk(out: MllpItem[]): void {
    if (this.junk > 0) {
      out.push({ kind: 'junk', size: this.junk });
      this.junk = 0;
    }
  }
}

/** Index of the next FS or VT from `from`, or -1. */
function indexOfAny(buf: Buffer, from: number): number {
  const fs = buf.indexOf(FS, from);
  const vt = buf.indexOf(VT, from);
  if (fs === -1) return vt;
  if (vt === -1) return fs;
  return Math.min(fs, vt);
}

/** Wraps a payload in an MLLP frame. */
export function mllpFrame(payload: Buffer | string): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  return Buffer.concat([Buffer.from([VT]), body, Buffer.from([FS, CR])]);
}
