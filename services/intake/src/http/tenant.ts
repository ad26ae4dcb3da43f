import { BadRequestException } from '@nestjs/common';
import { TENANT_PATTERN } from '@clinical-ledger/contracts';
import { assertTenant, Principal } from '@clinical-ledger/platform';

/**
 * The tenant of an HTTP request: the token's. A header or body naming another tenant is refused
 * (403); a platform service token (tenant "*") must name one.
 */
export function requestTenant(principal: Principal, ...named: (string | undefined)[]): string {
  const given = named.filter((t): t is string => typeof t === 'string' && t !== '');
  for (const t of given) {
    if (!TENANT_PATTERN.test(t)) throw new BadRequestException({ error: 'invalid', message: `"${t}" is not a tenant id` });
    assertTenant(principal, t);
  }
  if (principal.tenant !== '*') return principal.tenant;
  const [first, ...rest] = given;
  if (!first) throw new BadRequestException({ error: 'invalid', message: 'a service token must name the tenant (X-Tenant header or the event\'s tenant)' });
  if (rest.some((t) => t !== first)) throw new BadRequestException({ error: 'invalid', message: 'the request names more than one tenant' });
  return first;
}
