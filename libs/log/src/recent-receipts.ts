import type { Receipt } from '@clinical-ledger/contracts';

/**
 * The receipts a chain learnt last, by event id, at most `cap` of them: the oldest (first learnt)
 * goes first. The order is kept in an array beside the map, not read back from the map: V8 leaves
 * a deleted key's slot in a Map until it rehashes, so taking the oldest key with keys().next()
 * after many evictions walks every dead slot before it (4 % of the ledger's CPU in the append
 * bench's profile, one eviction per appended event).
 */
export class RecentReceipts {
  private readonly byId = new Map<string, Receipt>();
  /** Event ids in the order learnt; those before `head` are gone from `byId`. */
  private order: string[] = [];
  private head = 0;

  constructor(private cap: number) {
    this.cap = Math.max(1, cap);
  }

  get size(): number {
    return this.byId.size;
  }

  get(eventId: string): Receipt | undefined {
    return this.byId.get(eventId);
  }

  has(eventId: string): boolean {
    return this.byId.has(eventId);
  }

  /** Learns a receipt (one already held keeps its place), dropping the oldest past the cap. */
  add(r: Receipt): void {
    if (this.byId.has(r.eventId)) {
      this.byId.set(r.eventId, r);
      return;
    }
    if (this.byId.size >= this.cap) this.evict(this.byId.size - this.cap + 1);
    this.byId.set(r.eventId, r);
    this.order.push(r.eventId);
  }

  /** Keeps at most `n` (at least 1), the oldest dropped at once. */
  capAt(n: number): void {
    this.cap = Math.max(1, n);
    if (this.byId.size > this.cap) this.evict(this.byId.size - this.cap);
  }

  private evict(n: number): void {
    for (let i = 0; i < n && this.head < this.order.length; i++) this.byId.delete(this.order[this.head++]);
    // The dead prefix is cut once it is half the array: amortised O(1) per eviction.
    if (this.head > 1024 && this.head * 2 > this.order.length) {
      this.order = this.order.slice(this.head);
      this.head = 0;
    }
  }
}
