import { useId } from 'react';
import { formatNumber } from '../lib/format';

export interface Bar {
  label: string;
  value: number;
}

/** A horizontal SVG bar chart (labels on the left, values at the bars' ends). */
export function BarChart({
  bars,
  title,
  valueName,
  max = 40,
  width = 720,
}: {
  bars: Bar[];
  title: string;
  valueName: string;
  max?: number;
  /** Drawing width in CSS pixels (it shrinks to fit narrower containers). */
  width?: number;
}) {
  const id = useId();
  const shown = bars.slice(0, max);
  const labelWidth = Math.round(width * 0.28);
  const valueWidth = 80;
  const rowHeight = 24;
  const top = 8;
  const height = top * 2 + shown.length * rowHeight;
  const values = shown.map((b) => b.value);
  const hi = Math.max(0, ...values);
  const lo = Math.min(0, ...values);
  const span = hi - lo || 1;
  const plot = width - labelWidth - valueWidth;
  const x = (v: number) => labelWidth + ((v - lo) / span) * plot;
  const zero = x(0);

  return (
    <figure className="chart" style={{ maxWidth: width }}>
      <figcaption id={`${id}-title`}>
        {title}
        {bars.length > shown.length ? ` (first ${shown.length} of ${bars.length})` : ''}
      </figcaption>
      <svg
        viewBox={`0 0 ${width} ${height}`}
        width={width}
        style={{ maxWidth: '100%', height: 'auto' }}
        role="img"
        aria-labelledby={`${id}-title`}
        aria-describedby={`${id}-desc`}
        preserveAspectRatio="xMinYMin meet"
      >
        <desc id={`${id}-desc`}>
          {shown.map((b) => `${b.label}: ${formatNumber(b.value)} ${valueName}`).join('; ')}
        </desc>
        <line x1={zero} x2={zero} y1={top - 4} y2={height - top + 4} className="chart-axis" />
        {shown.map((b, i) => {
          const y = top + i * rowHeight;
          const x0 = Math.min(zero, x(b.value));
          const w = Math.max(1, Math.abs(x(b.value) - zero));
          const chars = Math.floor(labelWidth / 7.5);
          const label = b.label.length > chars ? `${b.label.slice(0, chars - 1)}…` : b.label;
          return (
            <g key={i}>
              <text x={labelWidth - 8} y={y + rowHeight / 2} className="chart-label" textAnchor="end" dominantBaseline="middle">
                {label}
                <title>{b.label}</title>
              </text>
              <rect x={x0} y={y + 4} width={w} height={rowHeight - 8} className="chart-bar" rx="2" />
              <text x={Math.max(zero, x(b.value)) + 6} y={y + rowHeight / 2} className="chart-value" dominantBaseline="middle">
                {formatNumber(b.value)}
              </text>
            </g>
          );
        })}
      </svg>
    </figure>
  );
}
