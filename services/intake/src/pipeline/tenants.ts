import { parsePairs } from '../config';
import { UnknownTenantError } from './errors';

/**
 * Which hospital (tenant, = chain) an HL7 message belongs to: the listener's pinned tenant, else
 * the sending facility's (MSH-4, case-insensitive), else the default; otherwise it is refused.
 */
export class FacilityTenants {
  private readonly byFacility: Map<string, string>;

  constructor(
    facilities: Record<string, string>,
    private readonly defaultTenant?: string,
  ) {
    this.byFacility = new Map(Object.entries(facilities).map(([f, t]) => [f.toUpperCase(), t]));
  }

  static fromConfig(value: string | undefined, defaultTenant?: string): FacilityTenants {
    return new FacilityTenants(parsePairs(value), defaultTenant);
  }

  resolve(facility: string, pinned?: string): string {
    const mapped = this.byFacility.get(facility.toUpperCase());
    if (pinned) {
      if (mapped && mapped !== pinned) {
        throw new UnknownTenantError(`sending facility "${facility}" (MSH-4) belongs to tenant "${mapped}", not to this port's tenant "${pinned}"`);
      }
      return pinned;
    }
    if (mapped) return mapped;
    if (this.defaultTenant) return this.defaultTenant;
    throw new UnknownTenantError(`sending facility "${facility}" (MSH-4) is not mapped to a tenant (INTAKE_FACILITY_TENANTS)`);
  }

  /** Every tenant this configuration can route to (checked against the secrets at start). */
  tenants(): string[] {
    return [...new Set([...this.byFacility.values(), ...(this.defaultTenant ? [this.defaultTenant] : [])])];
  }
}
