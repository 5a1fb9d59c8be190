"""report.md + a self-contained report.html (plot embedded) + pareto.png from bench records.

One table, model x runtime x precision (x device, threads): latency with its spread, memory, size,
accuracy, params, MACs. The Pareto plot puts p50 latency against accuracy, marker area ~ file size.
"""

import base64
import html
import io
import re
from pathlib import Path

from edgelight.utils.files import write_atomic

COLUMNS = ("model", "runtime", "precision", "device", "threads", "status", "p50 ms", "mean ± std ms", "p90 / p99 ms", "peak RSS MB", "arena KB", "size KB", "weights KB", "top-1", "params", "MACs", "note")
REUSE = re.compile(r"^lrunet-(\d+)-(\d)x$")  # LruNet's name carries its reuse count: the memory plot's x axis
MARKERS = {"host": "o", "arm64-qemu": "x", "android": "^", "ios": "s"}



def _color(runtime: str) -> str:
    from edgelight.targets import REGISTRY, get_runtime

    return get_runtime(runtime).color if runtime in REGISTRY else "#8172b2"

def _num(v, fmt="{:.3f}") -> str:
    return "–" if v is None else fmt.format(v)


def _count(n) -> str:
    if n is None:
        return "–"
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= div:
            return f"{n / div:.2f}{unit}"
    return str(n)


def row(r: dict) -> list[str]:
    lat, mem, acc = r.get("latency_ms") or {}, r.get("memory") or {}, r.get("accuracy") or {}
    note = r.get("error") or ""
    if r.get("nan_outputs"):
        note = ("NaN outputs; " + note).strip("; ")
    if any(n.startswith("random weights") for n in r.get("notes", [])):
        note = ("random weights; " + note).strip("; ")
    if r["device"].get("emulated"):
        note = ("emulated: not phone time; " + note).strip("; ")
    return [
        r["model"], r["runtime"], r["precision"], r["device"].get("name", r["device"]["kind"]), str(r["threads"] or "default"), r["status"],
        _num(lat.get("p50")),
        f"{lat['mean']:.3f} ± {lat['std']:.3f}" if lat else "–",
        f"{lat['p90']:.3f} / {lat['p99']:.3f}" if lat else "–",
        _num(mem.get("peak_rss_bytes") / 2**20 if mem.get("peak_rss_bytes") is not None else None, "{:.1f}"),
        _num(mem.get("planned_arena_bytes") / 1024 if mem.get("planned_arena_bytes") is not None else None, "{:.1f}"),
        f"{r['artifact']['bytes'] / 1024:.1f}",
        _num(r["artifact"].get("weight_bytes") / 1024 if r["artifact"].get("weight_bytes") is not None else None, "{:.1f}"),
        _num(acc.get("top1"), "{:.2%}"),
        _count(r.get("params")), _count(r.get("macs")), note,
    ]


def _sorted(records):
    return sorted(records, key=lambda r: (r["model"], r["runtime"], r["precision"], r["device"]["kind"], r["threads"]))


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of points no other point beats on both lower latency and higher accuracy."""
    front = []
    for i, (lat, acc) in enumerate(points):
        if not any((l2 <= lat and a2 >= acc) and (l2, a2) != (lat, acc) for l2, a2 in points):
            front.append(i)
    return sorted(front, key=lambda i: points[i][0])


def pareto_png(records: list[dict]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = sorted((r for r in records if r["status"] == "ok" and r.get("latency_ms") and r.get("accuracy")), key=lambda r: (r["model"], r["runtime"], r["precision"]))
    fig = plt.figure(figsize=(11, 5.5), dpi=100)
    ax = fig.add_axes([0.07, 0.11, 0.58, 0.8])
    if ok:
        pts = [(r["latency_ms"]["p50"], r["accuracy"]["top1"]) for r in ok]
        biggest = max(r["artifact"]["bytes"] for r in ok) or 1
        kinds = sorted({r["device"]["kind"] for r in ok})
        for runtime, kind in sorted({(r["runtime"], r["device"]["kind"]) for r in ok}):
            sel = [i for i, r in enumerate(ok) if (r["runtime"], r["device"]["kind"]) == (runtime, kind)]
            label = runtime if len(kinds) == 1 and kind != "arm64-qemu" else f"{runtime} on {kind}"  # host and phone points differ by shape
            label += " (emulated: not phone time)" if kind == "arm64-qemu" else ""
            ax.scatter([pts[i][0] for i in sel], [pts[i][1] for i in sel], s=[40 + 600 * ok[i]["artifact"]["bytes"] / biggest for i in sel], c=_color(runtime), marker=MARKERS.get(kind, "o"), alpha=0.7, edgecolors="black", label=label)
        # points cluster (one model, several runtimes): number them and name them in a key beside the plot
        for n, (x, y) in enumerate(pts, 1):
            ax.annotate(str(n), (x, y), textcoords="offset points", xytext=(5, 5 if n % 2 else -11), fontsize=8, weight="bold")
        key = [f"{n:>2}  {r['model']} {r['runtime']} {r['precision']}" + (f" ({r['device']['kind']})" if len(kinds) > 1 else "") for n, r in enumerate(ok, 1)]
        fig.text(0.67, 0.91, "\n".join(key), va="top", ha="left", fontsize=8, family="monospace")
        front = pareto_front(pts)
        ax.plot([pts[i][0] for i in front], [pts[i][1] for i in front], "k--", lw=1, label="Pareto front")
        if max(p[0] for p in pts) > 20 * max(min(p[0] for p in pts), 1e-6):
            ax.set_xscale("log")  # eager vs delegated runtimes can differ by orders of magnitude
        legend = ax.legend(loc="best", fontsize=8, markerscale=0.6)
        for handle in legend.legend_handles:
            if hasattr(handle, "set_sizes"):
                handle.set_sizes([50])
    else:
        ax.text(0.5, 0.5, "no successful records to plot", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("p50 latency (ms, lower is better)")
    ax.set_ylabel("top-1 accuracy")
    ax.set_title("Latency vs accuracy (marker area ~ file size)")
    ax.grid(True, alpha=0.3)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def memory_png(records: list[dict]) -> bytes | None:
    """Peak RSS against LruNet's reuse count, one line per (runtime, precision, device); None without LruNet records."""
    points: dict = {}
    for r in records:
        match = REUSE.match(r["model"])
        if match and r["status"] == "ok" and (r.get("memory") or {}).get("peak_rss_bytes") is not None:
            key = (r["runtime"], r["precision"], f"{match.group(2)}x", r["device"]["kind"])
            points.setdefault(key, []).append((int(match.group(1)), r["memory"]["peak_rss_bytes"] / 2**20))
    if not any(len(v) > 1 for v in points.values()):
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=100)
    for (runtime, precision, width, kind), pts in sorted(points.items()):
        pts = sorted(pts)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", color=_color(runtime), linestyle="-" if precision == "fp32" else "--", label=f"{runtime} {precision} lrunet-N-{width} ({kind})")
    ax.set_xlabel("LruNet reuses N (lrunet-N-1x)")
    ax.set_ylabel("peak RSS above baseline (MB)")
    ax.set_title("Memory against layer reuse: flat when shared weights are packed once")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _context(records: list[dict]) -> list[str]:
    """Lines under the table: what was measured where, with which versions."""
    devices = sorted({f"{r['device'].get('name')} ({r['device'].get('cpu') or r['device'].get('soc') or '?'}, {r['device'].get('os') or '?'})" for r in records})
    versions = {}
    for r in records:
        versions.update(r.get("versions") or {})
    emulated = ["Emulated devices (arm64-qemu): their latency is qemu-user time on the host, not phone time; their outputs and accuracy are the ARM builds' own."] if any(r["device"].get("emulated") for r in records) else []
    return [f"Devices: {'; '.join(devices)}", *emulated, "Versions: " + ", ".join(f"{k} {v}" for k, v in sorted(versions.items())), "Latency: steady state after warm-up, one batch of the artifact's input shape; peak RSS is the child process's peak above its pre-load baseline."]


def markdown(records: list[dict], png_name: str = "pareto.png", memory_name: str | None = None) -> str:
    lines = ["# edgelight bench report", "", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in _sorted(records):
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in row(r)) + " |")
    lines += ["", f"![latency vs accuracy]({png_name})", ""]
    lines += [f"![peak RSS against LruNet's reuses]({memory_name})", ""] if memory_name else []
    lines += [f"- {c}" for c in _context(records)]
    return "\n".join(lines) + "\n"


def html_page(records: list[dict], png: bytes, memory: bytes | None = None) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in COLUMNS)
    body = "\n".join(f'<tr class="rec status-{html.escape(r["status"])}">' + "".join(f"<td>{html.escape(c)}</td>" for c in row(r)) + "</tr>" for r in _sorted(records))
    ctx = "".join(f"<li>{html.escape(c)}</li>" for c in _context(records))
    b64 = base64.b64encode(png).decode()
    memory_img = f'<img id="memory" alt="peak RSS against LruNet reuses" src="data:image/png;base64,{base64.b64encode(memory).decode()}">' if memory else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>edgelight bench report</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 24px; color: #222; }}
table {{ border-collapse: collapse; font-size: 13px; }}
th, td {{ border: 1px solid #bbb; padding: 4px 8px; text-align: right; }}
th {{ background: #eef; }} td:nth-child(-n+6) {{ text-align: left; }}
tr.status-error td, tr.status-not_runnable td {{ color: #a33; }}
img {{ max-width: 100%; border: 1px solid #ddd; margin-top: 16px; }}
</style></head><body>
<h1>edgelight bench report</h1>
<table id="results"><thead><tr>{head}</tr></thead>
<tbody>
{body}
</tbody></table>
<img id="pareto" alt="latency vs accuracy Pareto plot" src="data:image/png;base64,{b64}">
{memory_img}
<ul>{ctx}</ul>
</body></html>
"""


def write_report(records: list[dict], out_dir) -> dict[str, Path]:
    """Write report.md, report.html (self-contained), pareto.png and (with LruNet records) memory.png into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    png, memory = pareto_png(records), memory_png(records)
    paths = {"png": out / "pareto.png", "md": out / "report.md", "html": out / "report.html"}
    write_atomic(paths["png"], png)
    if memory is not None:
        paths["memory"] = out / "memory.png"
        write_atomic(paths["memory"], memory)
    write_atomic(paths["md"], markdown(records, memory_name="memory.png" if memory else None).encode())
    write_atomic(paths["html"], html_page(records, png, memory).encode())
    return paths
