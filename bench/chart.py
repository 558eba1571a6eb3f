#!/usr/bin/env python3
"""The chart of a benchmark run: ``chart.py results.json chart.png``.

Reads the ``tpch`` section that ``tessera-bench run`` writes (bench/src/report.rs,
bench/src/tpch.rs): ``configs``, ``queries``, ``medians[config][query]`` (seconds),
``geomean[config]`` and ``geomean_ratio_vs_raw`` / ``geomean_ratio_vs_duckdb``.
Draws, per TPC-H query, the median seconds of each configuration (log scale),
and beside it each configuration's geometric mean (linear scale) with its ratios against raw
DataFusion and DuckDB. Configurations or queries without a figure are left out
of their bar, not drawn as zero. Needs matplotlib (drawn headless, Agg).
"""

import json
import math
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# Stable colours per configuration, whatever subset a run has.
COLOURS = {
    "raw": "#4c4c4c",
    "inproc": "#1f77b4",
    "accelerated": "#8c564b",
    "governed": "#9467bd",
    "flight": "#2ca02c",
    "pg": "#ff7f0e",
    "http": "#17becf",
    "duckdb": "#d62728",
}


def colour(config):
    """The configuration's colour; a grey for one this script does not know yet."""
    return COLOURS.get(config, "#7f7f7f")


def number(v):
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0 else None


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: chart.py results.json chart.png")
    source, target = sys.argv[1], sys.argv[2]
    with open(source) as f:
        results = json.load(f)
    tpch = results.get("tpch") or {}
    medians = tpch.get("medians") or {}
    configs = [c for c in (tpch.get("configs") or list(medians)) if medians.get(c)]
    queries = tpch.get("queries") or sorted({q for c in configs for q in medians[c]})
    if not configs or not queries:
        sys.exit(f"{source} has no TPC-H medians to chart")
    scale = (results.get("options") or {}).get("scale", "?")
    geomean = tpch.get("geomean") or {}
    vs_raw = tpch.get("geomean_ratio_vs_raw") or {}
    vs_duckdb = tpch.get("geomean_ratio_vs_duckdb") or {}

    fig, (bars, summary) = plt.subplots(
        1, 2, figsize=(17, 6.5), gridspec_kw={"width_ratios": [4.2, 1]}, constrained_layout=True
    )
    width = 0.8 / len(configs)
    for i, config in enumerate(configs):
        xs, ys = [], []
        for j, q in enumerate(queries):
            y = number(medians[config].get(q))
            if y is not None:
                xs.append(j - 0.4 + width * (i + 0.5))
                ys.append(y)
        bars.bar(xs, ys, width=width, label=config, color=colour(config))
    bars.set_yscale("log")
    bars.set_xticks(range(len(queries)))
    bars.set_xticklabels(queries, rotation=0, fontsize=8)
    bars.set_xlim(-0.6, len(queries) - 0.4)
    bars.set_ylabel("median seconds (log scale)")
    bars.set_title(f"TPC-H SF {scale} over the demo mesh: median per query")
    bars.grid(axis="y", which="both", alpha=0.3)
    bars.legend(ncol=len(configs), fontsize=8, loc="upper left")
    low, high = bars.get_ylim()
    bars.set_ylim(low, high * 3)  # room for the legend above the tallest bars

    # Horizontal bars: room for each configuration's ratios beside its bar.
    shown = [c for c in configs if number(geomean.get(c)) is not None]
    values = [geomean[c] for c in shown]
    ys = list(range(len(shown)))[::-1]
    summary.barh(ys, values, color=[colour(c) for c in shown])
    summary.set_yticks(ys)
    summary.set_yticklabels(shown, fontsize=8)
    summary.set_title("geometric mean (s)")
    summary.grid(axis="x", alpha=0.3)
    for y, c in zip(ys, shown):
        parts = [f"{geomean[c]:.3f} s"]
        if c != "raw" and number(vs_raw.get(c)) is not None:
            parts.append(f"{vs_raw[c]:.2f}x raw")
        if c != "duckdb" and number(vs_duckdb.get(c)) is not None:
            parts.append(f"{vs_duckdb[c]:.2f}x duckdb")
        summary.annotate(
            "\n".join(parts), (geomean[c], y), textcoords="offset points", xytext=(4, 0), va="center", fontsize=7
        )
    if values:
        summary.set_xlim(0, max(values) * 2.4)

    subtitle = []
    if (results.get("options") or {}).get("smoke") or (results.get("build") or {}).get("debug_assertions"):
        subtitle.append("NOT A MEASUREMENT (smoke run or dev build)")
    if results.get("date"):
        subtitle.append(str(results["date"]))
    machine = results.get("machine") or {}
    if machine.get("nproc"):
        subtitle.append(f"{machine['nproc']} cores")
    if subtitle:
        fig.suptitle(" · ".join(subtitle), fontsize=9)
    fig.savefig(target, dpi=110)


if __name__ == "__main__":
    main()
