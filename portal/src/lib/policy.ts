// What the viewer will see of a product's columns, computed from the column masks
// the way the gateways decide it (contracts/src/policy.rs, `table_policy`):
// owners are never masked; a mask applies when its target covers the product, its
// selector matches the column and the viewer is not exempt (by name, group or team,
// or the query's purpose when the principal may declare it); the strictest wins
// (null, then redact, hash, partial).
import type { Exemption, MaskFunction, MaskSpec, Product, RowFilter, Target } from '../api/client';
import type { Session } from '../session';

export function targetCovers(target: Target, product: Pick<Product, 'domain' | 'name' | 'tags'>): boolean {
  switch (target.kind) {
    case 'product':
      return target.domain === product.domain && target.product === product.name;
    case 'domain':
      return target.domain === product.domain;
    case 'tag':
      return product.tags.includes(target.tag);
    case 'all':
      return true;
  }
}

export function exempt(exemption: Exemption | undefined, session: Session, purpose: string | null): boolean {
  if (!exemption) return false;
  const groups = session.whoami.principal.attributes.groups ?? [];
  const inGroup = (g: string) => groups.includes(g) || session.teams.includes(g);
  const effectivePurpose = purpose && session.purposes.includes(purpose) ? purpose : null;
  return (
    (exemption.principals ?? []).includes(session.name) ||
    (exemption.groups ?? []).some(inGroup) ||
    (effectivePurpose !== null && (exemption.purposes ?? []).includes(effectivePurpose))
  );
}

function strictness(f: MaskFunction): number {
  switch (f.kind) {
    case 'null':
      return 0;
    case 'redact':
      return 1;
    case 'hash':
      return 2;
    case 'partial':
      return 3;
  }
}

export function describeMask(f: MaskFunction): string {
  switch (f.kind) {
    case 'null':
      return 'NULL';
    case 'redact':
      return "redacted ('***', NULL if not text)";
    case 'hash':
      return 'hashed (SHA-256 hex)';
    case 'partial':
      return `last ${f.keep} characters only`;
  }
}

export interface ColumnMask {
  mask: string;
  fn: MaskFunction;
}

/** The mask the viewer gets on one column (none: the column reads in clear). */
export function maskFor(
  column: { name: string; classification?: string },
  product: Product,
  masks: MaskSpec[],
  session: Session,
  purpose: string | null,
): ColumnMask | null {
  if (session.owns(product)) return null;
  const applicable = masks
    .filter((m) => targetCovers(m.target, product) && !exempt(m.exempt, session, purpose))
    .filter((m) =>
      m.columns.kind === 'column' ? m.columns.column === column.name : column.classification === m.columns.classification,
    )
    .sort((a, b) => strictness(a.function) - strictness(b.function) || a.name.localeCompare(b.name));
  const first = applicable[0];
  return first ? { mask: first.name, fn: first.function } : null;
}

/** The row filters the viewer's queries get on this product. */
export function rowFiltersFor(
  product: Product,
  filters: RowFilter[],
  session: Session,
  purpose: string | null,
): RowFilter[] {
  if (session.owns(product)) return [];
  return filters.filter(
    (f) => f.spec.domain === product.domain && f.spec.product === product.name && !exempt(f.spec.exempt, session, purpose),
  );
}

export function describeTarget(t: Target): string {
  switch (t.kind) {
    case 'product':
      return `product ${t.domain}.${t.product}`;
    case 'domain':
      return `domain ${t.domain}`;
    case 'tag':
      return `tag ${t.tag}`;
    case 'all':
      return 'every product';
  }
}

export function describeExemption(e: Exemption | undefined): string {
  if (!e) return '—';
  const parts: string[] = [];
  if (e.principals?.length) parts.push(`principals ${e.principals.join(', ')}`);
  if (e.groups?.length) parts.push(`groups ${e.groups.join(', ')}`);
  if (e.purposes?.length) parts.push(`purposes ${e.purposes.join(', ')}`);
  return parts.length ? parts.join('; ') : '—';
}
