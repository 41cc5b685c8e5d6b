"""Self-contained HTML report of an experiment's checkpoint evaluations.

Reads the finish markers written by `gear_sonic/eval_exp.py`
(`<exp_dir>/eval/step_XXXXXX/done.json`, `failed.json`) and each step's `metrics_eval.json`, then
writes `<exp_dir>/eval/report.html`: metric curves over checkpoints (inline base64 PNG, matplotlib
Agg), the worst clips of the latest evaluated checkpoint with their videos (relative paths, so the
`eval/` folder can be copied as a whole) and the per-clip table. The file is replaced atomically,
so a browser never sees half a report.
"""

from __future__ import annotations

import base64
import html
import io
import json
import re
from pathlib import Path

from gear_sonic.utils.atomic_io import atomic_write_text

STEP_DIR_RE = re.compile(r"^step_(\d+)$")
CURVES = (("success_rate", "success rate"), ("mpjpe_l_all", "MPJPE local (mm)"),
          ("mpjpe_g_all", "MPJPE global (mm)"))
NUM_WORST = 5

CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 24px;
       color: #1d2430; background: #fafbfc; }
h1 { font-size: 22px; margin: 0 0 4px 0; } h2 { font-size: 17px; margin: 28px 0 8px 0; }
.sub { color: #5b6675; font-size: 13px; }
table { border-collapse: collapse; font-size: 12px; background: #fff; }
th, td { border: 1px solid #d6dbe1; padding: 3px 8px; text-align: right; }
th { background: #e9eef4; } td.key, th.key { text-align: left; font-family: monospace; }
tr.fail td { background: #fdecec; }
.clips { display: flex; flex-wrap: wrap; gap: 14px; }
.clip { background: #fff; border: 1px solid #d6dbe1; padding: 8px; width: 330px; font-size: 12px; }
.clip video { width: 320px; background: #000; }
.plot { background: #fff; border: 1px solid #d6dbe1; max-width: 100%; }
"""


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def collect(exp_dir: str | Path) -> dict:
    """Evaluated steps (with their metrics) and failed steps, in step order."""
    eval_root = Path(exp_dir) / "eval"
    done, failed = [], []
    if eval_root.is_dir():
        for sub in eval_root.iterdir():
            match = STEP_DIR_RE.match(sub.name)
            if not match or not sub.is_dir():
                continue
            step = int(match.group(1))
            if (sub / "done.json").is_file():
                metrics = _read_json(sub / "metrics_eval.json")
                if isinstance(metrics, dict):
                    done.append({"step": step, "dir": sub, "metrics": metrics})
            elif (sub / "failed.json").is_file():
                failed.append({"step": step, "info": _read_json(sub / "failed.json") or {}})
    done.sort(key=lambda item: item["step"])
    failed.sort(key=lambda item: item["step"])
    return {"done": done, "failed": failed}


def _num(value):
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _plot_png(done: list[dict]) -> str | None:
    """Base64 PNG of the metric curves, or None when nothing numeric is there to plot."""
    series = []
    for key, label in CURVES:
        points = [(item["step"], _num(item["metrics"].get("aggregate", {}).get(key)))
                  for item in done]
        points = [(s, v) for s, v in points if v is not None]
        if points:
            series.append((label, points))
    if not series:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(series), figsize=(4.2 * len(series), 3.2), dpi=100,
                             squeeze=False)
    for ax, (label, points) in zip(axes[0], series):
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", color="#2b6cb0", lw=1.8)
        ax.set_title(label, fontsize=11)
        ax.set_xlabel("training step")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _badness(clip: dict) -> tuple:
    """Sort key: failed clips first, then lower progress, then larger local error."""
    success = _num(clip.get("success"))
    progress = _num(clip.get("progress"))
    mpjpe = _num(clip.get("mpjpe_l"))
    return (success if success is not None else 1.0, progress if progress is not None else 1.0,
            -(mpjpe if mpjpe is not None else 0.0))


def _fmt(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").lower()


def _videos_for(clips: list[dict], video_dir: Path, eval_root: Path) -> tuple[dict, list[str]]:
    """Map clip key -> relative video path (matched by name), plus the videos no clip claimed."""
    videos = sorted(video_dir.glob("*.mp4")) if video_dir.is_dir() else []
    by_key, claimed = {}, set()
    for exact in (True, False):  # exact stem matches first, so clip_1 does not take clip_10's video
        for clip in clips:
            key, slug = str(clip.get("key", "")), _slug(str(clip.get("key", "")))
            for video in videos:
                if not slug or key in by_key or video in claimed:
                    continue
                stem = _slug(video.stem)
                if stem == slug if exact else slug in stem:
                    by_key[key] = video.relative_to(eval_root).as_posix()
                    claimed.add(video)
                    break
    rest = [v.relative_to(eval_root).as_posix() for v in videos if v not in claimed]
    return by_key, rest


def _video_tag(rel: str) -> str:
    return f'<video controls muted preload="metadata" src="{html.escape(rel)}"></video>'


def _summary_table(done: list[dict]) -> str:
    keys = []
    for item in done:
        for key, value in item["metrics"].get("aggregate", {}).items():
            if _num(value) is not None and key not in keys:
                keys.append(key)
    head = "".join(f"<th>{html.escape(k)}</th>" for k in keys)
    rows = []
    for item in done:
        agg = item["metrics"].get("aggregate", {})
        cells = "".join(f"<td>{_fmt(agg.get(k, ''))}</td>" for k in keys)
        rows.append(f"<tr><td>{item['step']}</td>{cells}</tr>")
    return f"<table><tr><th>step</th>{head}</tr>{''.join(rows)}</table>"


def _clip_table(clips: list[dict]) -> str:
    keys = ["key"] + sorted({k for clip in clips for k in clip if k != "key"})
    head = "".join(f'<th class="{"key" if k == "key" else ""}">{html.escape(k)}</th>' for k in keys)
    rows = []
    for clip in clips:
        cls = ' class="fail"' if _num(clip.get("success")) == 0.0 else ""
        cells = "".join(f'<td class="{"key" if k == "key" else ""}">{_fmt(clip.get(k, ""))}</td>'
                        for k in keys)
        rows.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def render_html(exp_dir: str | Path) -> str:
    exp_dir = Path(exp_dir)
    eval_root = exp_dir / "eval"
    state = collect(exp_dir)
    done, failed = state["done"], state["failed"]
    parts = [f"<h1>Checkpoint evaluation: {html.escape(exp_dir.name)}</h1>",
             f'<div class="sub">{html.escape(str(exp_dir.resolve()))} &middot; '
             f"{len(done)} evaluated, {len(failed)} failed</div>"]
    if not done:
        parts.append("<p>No checkpoint has been evaluated yet.</p>")
    else:
        png = _plot_png(done)
        parts.append("<h2>Metrics over checkpoints</h2>")
        if png:
            parts.append('<img class="plot" alt="metric curves" '
                         f'src="data:image/png;base64,{png}">')
        parts.append(_summary_table(done))
        latest = done[-1]
        clips = [c for c in latest["metrics"].get("clips", []) if isinstance(c, dict)]
        clips.sort(key=_badness)
        by_key, other_videos = _videos_for(clips, latest["dir"] / "videos", eval_root)
        parts.append(f"<h2>Worst clips at step {latest['step']}</h2><div class=\"clips\">")
        for clip in clips[:max(NUM_WORST, len(by_key))]:
            key = str(clip.get("key", ""))
            info = " &middot; ".join(f"{html.escape(k)}={_fmt(clip[k])}"
                                     for k in ("success", "progress", "mpjpe_l") if k in clip)
            no_video = '<div class="sub">no video</div>'
            video = _video_tag(by_key[key]) if key in by_key else no_video
            parts.append(f'<div class="clip"><div class="key"><b>{html.escape(key)}</b></div>'
                         f"<div>{info}</div>{video}</div>")
        for rel in other_videos:
            parts.append(f'<div class="clip"><div>{html.escape(Path(rel).name)}</div>'
                         f"{_video_tag(rel)}</div>")
        parts.append("</div>")
        parts.append(f"<h2>All clips at step {latest['step']} ({len(clips)}, worst first)</h2>")
        parts.append(_clip_table(clips))
    if failed:
        parts.append("<h2>Failed checkpoints</h2><table><tr><th>step</th><th>attempts</th>"
                     "<th class=\"key\">error</th></tr>")
        for item in failed:
            info = item["info"]
            parts.append(f'<tr class="fail"><td>{item["step"]}</td>'
                         f'<td>{_fmt(info.get("attempts", ""))}</td>'
                         f'<td class="key">{_fmt(info.get("error", ""))}</td></tr>')
        parts.append("</table>")
    body = "\n".join(parts)
    title = html.escape(exp_dir.name)
    return (f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>eval {title}</title>'
            f"<style>{CSS}</style></head><body>\n{body}\n</body></html>\n")


def write_report(exp_dir: str | Path) -> Path:
    """Write `<exp_dir>/eval/report.html` atomically and return its path."""
    exp_dir = Path(exp_dir)
    return atomic_write_text(render_html(exp_dir), exp_dir / "eval" / "report.html")
