"""The Sankey and the cash-out timeline drawn as inline SVG on the server.

Drawing them here (not with a browser chart library) keeps the mailed report free of scripts
for its charts, makes the page and the report byte-identical in what they show, and leaves
nothing to fetch. Every label goes through `escape`.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from html import escape
from typing import Any

PALETTE = ("#2b6cb0", "#c05621", "#2f855a", "#6b46c1", "#b83280", "#2c7a7b", "#975a16",
           "#4a5568", "#e53e3e", "#718096")
BUCKET_COLORS = {
    "cashed_out": "#2b6cb0", "dark": "#1a202c", "bridged_untraced": "#975a16",
    "parked": "#2f855a", "frozen": "#3182ce", "fees": "#a0aec0", "dormant": "#d69e2e",
    "below_threshold": "#cbd5e0",
}


def fmt(v: float) -> str:
    """Origin amounts on pages and in the report: thousands separators, two decimals."""
    return f"{float(v):,.2f}"


def sankey_svg(data: dict[str, Any], width: int = 960, height: int = 480) -> str:
    nodes, links = data["nodes"], data["links"]
    if not links:
        return '<p class="empty">No taint-flow data for a Sankey.</p>'
    inflow: dict[str, float] = defaultdict(float)
    outflow: dict[str, float] = defaultdict(float)
    for link in links:
        outflow[link["source"]] += link["value"]
        inflow[link["target"]] += link["value"]
    value = {n["id"]: max(inflow[n["id"]], outflow[n["id"]]) for n in nodes}
    columns: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for n in nodes:
        columns[n["column"]].append(n)
    ncol = max(columns) + 1
    pad, node_w, top, label_w = 8, 14, 10, 240
    usable = height - 2 * top
    scale = min((usable - pad * (len(col) - 1)) / max(sum(value[n["id"]] for n in col), 1e-9)
                for col in columns.values())
    xs = {c: 10 + c * (width - label_w - 20 - node_w) / max(ncol - 1, 1) for c in columns}
    pos: dict[str, tuple[float, float, float]] = {}
    for c, col in columns.items():
        y = top
        for n in col:
            h = max(value[n["id"]] * scale, 1.0)
            pos[n["id"]] = (xs[c], y, h)
            y += h + pad
    out = [f'<svg class="sankey" viewBox="0 0 {width} {height}" width="100%" role="img" '
           f'aria-label="Sankey from the theft to the buckets">']
    s_off: dict[str, float] = defaultdict(float)
    t_off: dict[str, float] = defaultdict(float)
    for link in sorted(links, key=lambda x: (pos[x["source"]][1], pos[x["target"]][1])):
        sx, sy, _ = pos[link["source"]]
        tx, ty, _ = pos[link["target"]]
        w = max(link["value"] * scale, 0.8)
        y0 = sy + s_off[link["source"]] + w / 2
        y1 = ty + t_off[link["target"]] + w / 2
        s_off[link["source"]] += link["value"] * scale
        t_off[link["target"]] += link["value"] * scale
        x0, x1 = sx + node_w, tx
        xm = (x0 + x1) / 2
        bucket = link["target"][2:] if link["target"].startswith("b:") else (
            link["source"][2:] if link["source"].startswith("b:") else "")
        color = BUCKET_COLORS.get(bucket, "#90cdf4")
        out.append(
            f'<path d="M{x0:.1f},{y0:.1f} C{xm:.1f},{y0:.1f} {xm:.1f},{y1:.1f} {x1:.1f},'
            f'{y1:.1f}" stroke="{color}" stroke-opacity="0.35" stroke-width="{w:.1f}" '
            f'fill="none"><title>{escape(_name(nodes, link["source"]))} → '
            f'{escape(_name(nodes, link["target"]))}: {fmt(link["value"])}</title></path>')
    for n in nodes:
        x, y, h = pos[n["id"]]
        bucket = n["id"][2:] if n["id"].startswith("b:") else ""
        out.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{node_w}" height="{h:.1f}" '
                   f'fill="{BUCKET_COLORS.get(bucket, "#4a5568")}"><title>{escape(n["name"])}: '
                   f'{fmt(value[n["id"]])}</title></rect>')
        out.append(f'<text x="{x + node_w + 4:.1f}" y="{y + h / 2 + 4:.1f}" class="sk-label">'
                   f'{escape(n["name"])} <tspan class="sk-value">{fmt(value[n["id"]])}</tspan>'
                   f'</text>')
    out.append("</svg>")
    return "".join(out)


def _name(nodes: list[dict[str, Any]], node_id: str) -> str:
    for n in nodes:
        if n["id"] == node_id:
            return str(n["name"])
    return node_id


def timeline_svg(data: dict[str, Any], width: int = 960, height: int = 320) -> str:
    series = data["series"]
    if not series:
        return '<p class="empty">Nothing was cashed out.</p>'
    t0 = min(p[0] for s in series for p in s["points"])
    t1 = max(p[0] for s in series for p in s["points"])
    vmax = max(s["total"] for s in series) or 1.0
    left, right, top, bottom = 90, 200, 10, 30
    pw, ph = width - left - right, height - top - bottom
    span = max(t1 - t0, 1)

    def x(t: float) -> float:
        return left + (t - t0) / span * pw

    def y(v: float) -> float:
        return top + ph - v / vmax * ph

    out = [f'<svg class="timeline" viewBox="0 0 {width} {height}" width="100%" role="img" '
           f'aria-label="Cumulative cash-out per entity">',
           f'<line x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top + ph}" stroke="#999"/>',
           f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + ph}" stroke="#999"/>']
    for i in range(5):
        v = vmax * i / 4
        out.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end" class="axis">'
                   f'{fmt(v)}</text>')
        t = t0 + span * i / 4
        label = datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M")
        out.append(f'<text x="{x(t):.1f}" y="{height - 8}" text-anchor="middle" class="axis">'
                   f'{label}</text>')
    for i, s in enumerate(series):
        color = PALETTE[i % len(PALETTE)]
        pts, prev = [f"{x(t0):.1f},{y(0):.1f}"], 0.0
        for t, v in s["points"]:
            pts.append(f"{x(t):.1f},{y(prev):.1f}")
            pts.append(f"{x(t):.1f},{y(v):.1f}")
            prev = v
        pts.append(f"{x(t1):.1f},{y(prev):.1f}")
        out.append(f'<polyline points="{" ".join(pts)}" fill="none" stroke="{color}" '
                   f'stroke-width="2"><title>{escape(s["entity"])}: {fmt(s["total"])}</title>'
                   f'</polyline>')
        ly = top + 14 + i * 18
        out.append(f'<rect x="{left + pw + 12}" y="{ly - 9}" width="10" height="10" '
                   f'fill="{color}"/><text x="{left + pw + 26}" y="{ly}" class="legend">'
                   f'{escape(s["entity"])} {fmt(s["total"])}</text>')
    out.append("</svg>")
    return "".join(out)
