import { useId, useMemo } from 'react';
import { useNavigate } from 'react-router';
import type { Lineage } from '../api/client';

interface Placed {
  id: string;
  domain: string;
  name: string;
  status: string;
  layer: number;
  x: number;
  y: number;
}

const NODE_W = 190;
const NODE_H = 48;
const GAP_X = 70;
const GAP_Y = 18;
const PAD = 12;

/** Layers by longest path from the sources (upstream left, downstream right). */
export function layout(lineage: Lineage): { nodes: Placed[]; width: number; height: number } {
  const ids = lineage.nodes.map((n) => n.id);
  const known = new Set(ids);
  const edges = lineage.edges.filter((e) => known.has(e.from) && known.has(e.to) && e.from !== e.to);
  const layer = new Map<string, number>(ids.map((id) => [id, 0]));
  // Relax at most |nodes| times: enough for any DAG, and a cycle cannot loop forever.
  for (let round = 0; round < ids.length; round++) {
    let changed = false;
    for (const e of edges) {
      const next = (layer.get(e.from) ?? 0) + 1;
      if (next > (layer.get(e.to) ?? 0) && next < ids.length) {
        layer.set(e.to, next);
        changed = true;
      }
    }
    if (!changed) break;
  }
  const layers: string[][] = [];
  for (const id of ids) {
    const l = layer.get(id) ?? 0;
    (layers[l] ??= []).push(id);
  }
  // Order each layer by the mean position of its upstream nodes, to keep edges short.
  const row = new Map<string, number>();
  layers.forEach((members, l) => {
    if (l > 0) {
      const score = (id: string) => {
        const ups = edges.filter((e) => e.to === id).map((e) => row.get(e.from) ?? 0);
        return ups.length ? ups.reduce((a, b) => a + b, 0) / ups.length : Number.MAX_SAFE_INTEGER;
      };
      members.sort((a, b) => score(a) - score(b) || a.localeCompare(b));
    } else {
      members.sort();
    }
    members.forEach((id, i) => row.set(id, i));
  });
  const tallest = Math.max(1, ...layers.map((m) => m?.length ?? 0));
  const height = PAD * 2 + tallest * NODE_H + (tallest - 1) * GAP_Y;
  const byId = new Map(lineage.nodes.map((n) => [n.id, n]));
  const nodes: Placed[] = [];
  layers.forEach((members, l) => {
    const column = PAD * 2 + members.length * NODE_H + (members.length - 1) * GAP_Y;
    const offset = (height - column) / 2;
    members.forEach((id, i) => {
      const n = byId.get(id)!;
      nodes.push({
        id,
        domain: n.domain,
        name: n.name,
        status: n.status,
        layer: l,
        x: PAD + l * (NODE_W + GAP_X),
        y: offset + PAD + i * (NODE_H + GAP_Y),
      });
    });
  });
  const width = PAD * 2 + layers.length * NODE_W + Math.max(0, layers.length - 1) * GAP_X;
  return { nodes, width, height };
}

/** The lineage around one product: products as nodes, input ports as edges. */
export function LineageGraph({ lineage, current }: { lineage: Lineage; current: string }) {
  const navigate = useNavigate();
  const id = useId();
  const { nodes, width, height } = useMemo(() => layout(lineage), [lineage]);
  const pos = new Map(nodes.map((n) => [n.id, n]));
  const markerId = `${id}-arrow`.replace(/:/g, '');

  return (
    <div className="lineage-scroll">
      <svg
        className="lineage"
        viewBox={`0 0 ${width} ${height}`}
        width={width}
        height={height}
        role="group"
        aria-label={`Lineage graph around ${current}: upstream products on the left, downstream on the right`}
      >
        <defs>
          <marker id={markerId} viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse">
            <path d="M 0 0 L 10 5 L 0 10 z" className="lineage-arrow" />
          </marker>
        </defs>
        {lineage.edges.map((e, i) => {
          const a = pos.get(e.from);
          const b = pos.get(e.to);
          if (!a || !b) return null;
          const x1 = a.x + NODE_W;
          const y1 = a.y + NODE_H / 2;
          const x2 = b.x;
          const y2 = b.y + NODE_H / 2;
          const mid = (x1 + x2) / 2;
          const highlighted = e.from === current || e.to === current;
          return (
            <path
              key={i}
              d={`M ${x1} ${y1} C ${mid} ${y1}, ${mid} ${y2}, ${x2} ${y2}`}
              className={highlighted ? 'lineage-edge current' : 'lineage-edge'}
              markerEnd={`url(#${markerId})`}
            >
              <title>{`${e.from} → ${e.to}`}</title>
            </path>
          );
        })}
        {nodes.map((n) => {
          const href = `/products/${n.domain}/${n.name}`;
          const isCurrent = n.id === current;
          return (
            <a
              key={n.id}
              href={href}
              aria-current={isCurrent ? 'page' : undefined}
              onClick={(ev) => {
                if (ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.button !== 0) return;
                ev.preventDefault();
                navigate(href);
              }}
              className={isCurrent ? 'lineage-node current' : 'lineage-node'}
            >
              <title>{`${n.id} (${n.status})`}</title>
              <rect x={n.x} y={n.y} width={NODE_W} height={NODE_H} rx="6" />
              <text x={n.x + 10} y={n.y + 20} className="lineage-name">
                {n.id.length > 26 ? `${n.id.slice(0, 25)}…` : n.id}
              </text>
              <text x={n.x + 10} y={n.y + 38} className="lineage-status">
                {n.status}
                {isCurrent ? ' · this product' : ''}
              </text>
            </a>
          );
        })}
      </svg>
    </div>
  );
}
