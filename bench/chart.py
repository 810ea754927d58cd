#!/usr/bin/env python3
"""Renders bench results (JSON from bench.py) as a small SVG bar chart, no matplotlib.

    chart.py bench/results/latest.json bench/results/latest.svg

One bar per compared row: libfleets' advantage over the baseline (baseline/libfleets when lower
is better, libfleets/baseline when higher is better; > 1 means libfleets is better), on a log
scale, with the min-max spread of that factor as a whisker and the target as a tick.
"""

import json
import math
import sys
from html import escape


SHORT = {
    "seq": "C reports/s, 1 thread vs libcurl",
    "seq_cpu": "C client CPU/report, 1 thread vs libcurl",
    "threads4": "C reports/s, 4 threads vs libcurl",
    "threads4_cpu": "C client CPU/report, 4 threads vs libcurl",
    "cold": "C cold start vs libcurl",
    "instr": "C instructions/report vs libcurl+OpenSSL",
    "heap": "C peak heap vs libcurl+OpenSSL",
    "rss": "C peak RSS vs libcurl+OpenSSL",
    "size_x86_64": "x86-64 .so size vs libcurl+libssl+libcrypto",
    "py_requests": "Python reports/s vs requests",
    "py_httpx": "Python reports/s vs httpx",
    "go": "Go reports/s vs net/http",
    "size_device_x86_64": "x86-64 .so size, device profile vs default",
    "size_device_aarch64": "aarch64 .so size, device profile vs default",
    "size_device_armv7": "armv7 .so size, device profile vs default",
    "device_seq": "C reports/s, device profile vs default",
    "device_cpu": "C client CPU/report, device vs default",
    "device_instr": "C instructions/report, device vs default",
    "wire_steady": "bytes per keep-alive report vs libcurl",
    "wire_first": "bytes per wake cycle vs libcurl",
    "wire_resumed": "bytes per resumed connection vs libcurl",
    "wake": "wake cycle (exec->report->exit) vs libcurl",
    "wake_cpu": "CPU per wake cycle vs libcurl",
    "wake_cpu_device": "CPU per wake cycle, device vs default",
    "conn_full": "new connection + report, full TLS vs libcurl",
    "conn_resumed": "new connection + report, resumed vs libcurl",
}


def main():
    data = json.load(open(sys.argv[1]))
    rows = [r for r in data["rows"] if r["baseline"]]
    W, left, right, bar, gap, top = 860, 330, 70, 18, 8, 40
    H = top + len(rows) * (bar + gap) + 40
    lo, hi = 0.25, 16.0
    x = lambda v: left + (math.log2(min(max(v, lo), hi)) - math.log2(lo)) / (math.log2(hi) - math.log2(lo)) * (W - left - right)

    def adv(r, f, b):
        return b / f if r["better"] == "lower" else f / b

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="10" y="18" font-size="14" font-weight="bold">libfleets advantage over the baseline (x, log scale; &gt;1 = libfleets better)</text>']
    for v in (0.25, 0.5, 1, 2, 4, 8, 16):
        out.append(f'<line x1="{x(v):.1f}" y1="{top - 6}" x2="{x(v):.1f}" y2="{H - 30}" stroke="{"#333" if v == 1 else "#ddd"}"/>')
        out.append(f'<text x="{x(v):.1f}" y="{H - 16}" text-anchor="middle">{v:g}x</text>')
    for i, r in enumerate(rows):
        y = top + i * (bar + gap)
        f, b = r["fleets"], r["baseline"]
        a = adv(r, f["median"], b["median"])
        # spread: worst and best pairing of the two sides' min/max
        lo_a = min(adv(r, f["min"], b["max"]), adv(r, f["max"], b["min"]))
        hi_a = max(adv(r, f["min"], b["max"]), adv(r, f["max"], b["min"]))
        color = {True: "#2e8b57", False: "#c0392b", None: "#4682b4"}[r["met"]]
        x0, x1 = sorted((x(1), x(a)))
        label = SHORT.get(r["id"], f'{r["name"].strip()} vs {r["baseline_name"]}')
        out.append(f'<text x="{left - 6}" y="{y + bar - 5}" text-anchor="end">{escape(label[:52])}</text>')
        out.append(f'<rect x="{x0:.1f}" y="{y}" width="{max(x1 - x0, 1):.1f}" height="{bar}" fill="{color}"/>')
        out.append(f'<line x1="{x(lo_a):.1f}" y1="{y + bar / 2}" x2="{x(hi_a):.1f}" y2="{y + bar / 2}" stroke="black"/>')
        if r["target"] is not None and not r.get("absolute"):  # an absolute target (KiB) has no tick
            t = r["target"] if r["better"] == "higher" else 1 / r["target"]
            out.append(f'<line x1="{x(t):.1f}" y1="{y - 2}" x2="{x(t):.1f}" y2="{y + bar + 2}" stroke="black" stroke-width="3"/>')
        out.append(f'<text x="{max(x1, x(hi_a)) + 4:.1f}" y="{y + bar - 5}">{a:.2f}x</text>')
    m = data["meta"]
    out.append(f'<text x="10" y="{H - 2}" font-size="10" fill="#555">{escape(m["date"])}, load {escape(m["load_before"])}, '
               f'{"smoke" if m["smoke"] else "full"} run, git {escape(m["git"])}; green = target met, red = missed, '
               f'blue = no target; thick tick = target; whisker = min-max</text>')
    out.append("</svg>")
    open(sys.argv[2], "w").write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
