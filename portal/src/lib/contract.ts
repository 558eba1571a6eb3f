// Reading an ODCS v3 contract document (YAML or JSON, as submitted) for display.
import { parse } from 'yaml';

export interface ContractColumn {
  /** Dotted path for nested properties (`address.city`). */
  name: string;
  depth: number;
  logicalType?: string;
  physicalType?: string;
  required: boolean;
  primaryKey: boolean;
  unique: boolean;
  partitioned: boolean;
  classification?: string;
  description?: string;
  criticalDataElement: boolean;
  qualityRules: number;
}

export interface SlaProperty {
  property: string;
  value: string;
  unit?: string;
  description?: string;
  element?: string;
}

export interface SupportChannel {
  channel: string;
  tool?: string;
  url?: string;
  scope?: string;
  description?: string;
}

export interface TeamMember {
  username: string;
  name?: string;
  role?: string;
}

export interface ParsedContract {
  id?: string;
  name?: string;
  version?: string;
  status?: string;
  purpose?: string;
  usage?: string;
  limitations?: string;
  tags: string[];
  /** The table (schema object) of the output port. */
  table?: { name: string; physicalName?: string; businessName?: string; description?: string };
  columns: ContractColumn[];
  sla: SlaProperty[];
  /** The freshness promise in seconds (freshness, or frequency + latency), as the quality check reads it. */
  freshnessSeconds?: number;
  teamName?: string;
  teamDescription?: string;
  members: TeamMember[];
  support: SupportChannel[];
}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return undefined;
}

function arr(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

function columns(properties: unknown, prefix: string, depth: number, out: ContractColumn[]): void {
  for (const p of arr(properties)) {
    if (!isObj(p)) continue;
    const name = str(p.name) ?? '?';
    const path = prefix ? `${prefix}.${name}` : name;
    out.push({
      name: path,
      depth,
      logicalType: str(p.logicalType),
      physicalType: str(p.physicalType),
      required: p.required === true,
      primaryKey: p.primaryKey === true,
      unique: p.unique === true,
      partitioned: p.partitioned === true,
      classification: str(p.classification),
      description: str(p.description),
      criticalDataElement: p.criticalDataElement === true,
      qualityRules: arr(p.quality).length,
    });
    if (p.properties) columns(p.properties, path, depth + 1, out);
    else if (isObj(p.items) && p.items.properties) columns(p.items.properties, `${path}[]`, depth + 1, out);
  }
}

const UNIT_SECONDS: Record<string, number> = {
  '': 1, s: 1, sec: 1, secs: 1, second: 1, seconds: 1,
  m: 60, min: 60, mins: 60, minute: 60, minutes: 60,
  h: 3600, hr: 3600, hrs: 3600, hour: 3600, hours: 3600,
  d: 86400, day: 86400, days: 86400,
  w: 604800, week: 604800, weeks: 604800,
  mo: 2592000, month: 2592000, months: 2592000,
  y: 31536000, yr: 31536000, yrs: 31536000, year: 31536000, years: 31536000,
};

/** An SLA value in seconds (same reading as the catalog's `sla_measure`). */
export function slaSeconds(s: SlaProperty): number | undefined {
  const text = s.value.trim();
  const m = /^(-?[0-9.]+)\s*(.*)$/.exec(text);
  if (!m) return undefined;
  const n = Number(m[1]);
  if (Number.isNaN(n)) return undefined;
  const unit = (s.unit ?? m[2] ?? '').toLowerCase();
  const factor = UNIT_SECONDS[unit];
  return factor === undefined ? undefined : n * factor;
}

export function parseContract(document: string): ParsedContract {
  let doc: unknown;
  try {
    doc = parse(document);
  } catch {
    doc = undefined;
  }
  const d: Obj = isObj(doc) ? doc : {};
  const description = isObj(d.description) ? d.description : {};
  const schema = arr(d.schema).filter(isObj);
  const table = schema[0];
  const cols: ContractColumn[] = [];
  if (table) columns(table.properties, '', 0, cols);

  const sla: SlaProperty[] = arr(d.slaProperties)
    .filter(isObj)
    .map((s) => ({
      property: str(s.property) ?? '?',
      value: str(s.value) ?? JSON.stringify(s.value),
      unit: str(s.unit),
      description: str(s.description),
      element: str(s.element),
    }));
  const topLevel = (name: string) => {
    const s = sla.find((x) => x.property.toLowerCase() === name && !x.element);
    return s ? slaSeconds(s) : undefined;
  };
  let freshnessSeconds = topLevel('freshness');
  if (freshnessSeconds === undefined) {
    const f = topLevel('frequency');
    const l = topLevel('latency');
    freshnessSeconds = f !== undefined && l !== undefined ? f + l : (f ?? l);
  }

  let teamName: string | undefined;
  let teamDescription: string | undefined;
  let rawMembers: unknown[] = [];
  if (Array.isArray(d.team)) rawMembers = d.team;
  else if (isObj(d.team)) {
    teamName = str(d.team.name);
    teamDescription = str(d.team.description);
    rawMembers = arr(d.team.members);
  }
  const members = rawMembers.filter(isObj).map((m) => ({
    username: str(m.username) ?? str(m.name) ?? '?',
    name: str(m.name),
    role: str(m.role),
  }));
  const support = arr(d.support)
    .filter(isObj)
    .map((s) => ({
      channel: str(s.channel) ?? '?',
      tool: str(s.tool),
      url: str(s.url),
      scope: str(s.scope),
      description: str(s.description),
    }));

  return {
    id: str(d.id),
    name: str(d.name),
    version: str(d.version),
    status: str(d.status),
    purpose: str(description.purpose) ?? str(d.description),
    usage: str(description.usage),
    limitations: str(description.limitations),
    tags: arr(d.tags).map(str).filter((t): t is string => !!t),
    table: table
      ? {
          name: str(table.name) ?? '?',
          physicalName: str(table.physicalName),
          businessName: str(table.businessName),
          description: str(table.description),
        }
      : undefined,
    columns: cols,
    sla,
    freshnessSeconds,
    teamName,
    teamDescription,
    members,
    support,
  };
}
