/** Largest signed and cosigned checkpoint sizes one replica has served for a chain (-1: none). */
export interface ServedFloor {
  signed: number;
  cosigned: number;
}

const NONE: ServedFloor = { signed: -1, cosigned: -1 };

/**
 * What this replica has already served, per chain, so "latest" never answers below it. The store
 * writes a checkpoint (or its cosigned form) before it moves the head's marker, two writes apart:
 * in between, a read by size finds the new checkpoint while the head still names the older one.
 */
export class ServedCheckpoints {
  private readonly floors = new Map<string, ServedFloor>();

  /** `maxChains`: chains remembered; the oldest is forgotten past it (memory stays bounded). */
  constructor(private readonly maxChains = 10_000) {}

  /** Remembers a checkpoint of `size` served for `tenant` (its cosigned form when `cosigned`). */
  note(tenant: string, size: number, cosigned: boolean): void {
    const f = this.floors.get(tenant);
    if (!f) {
      if (this.floors.size >= this.maxChains) this.floors.delete(this.floors.keys().next().value as string);
      this.floors.set(tenant, { signed: size, cosigned: cosigned ? size : -1 });
      return;
    }
    f.signed = Math.max(f.signed, size);
    if (cosigned) f.cosigned = Math.max(f.cosigned, size);
  }

  floor(tenant: string): ServedFloor {
    return this.floors.get(tenant) ?? NONE;
  }
}
