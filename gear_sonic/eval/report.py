"""Self-contained HTML report of an experiment's checkpoint evaluations.

Reads every evaluation under `<exp_dir>/eval/`: the default one of each step
(`step_XXXXXX/metrics_eval.json`, with the monitor's `done.json` / `failed.json` markers) and the
others beside it (`step_XXXXXX/<name>/metrics_eval.json`, see gear_sonic/eval/outputs.py), then
writes `<exp_dir>/eval/report.html`: metric curves of the default evaluations over checkpoints
(inline base64 PNG, matplotlib Agg), a summary row per evaluation under its own label, the worst
clips of the latest evaluation that has videos (relative paths, so the `eval/` folder can be
copied as a whole) and its per-clip table, and a table per robustness result
(`robustness-<backend>/`, scripts/robustness.py). The file is replaced atomically, so a browser
never sees half a report.
"""

from __future__ import annotations

import base64
import html
import io
import json
import re
from pathlib import Path

from gear_sonic.eval.metrics import MIN_PA_BODIES, worst_first
from gear_sonic.eval.outputs import evaluation_label
from gear_sonic.eval.render import VIDEO_INDEX
from gear_sonic.utils.atomic_io import atomic_write_text
from gear_sonic.utils.safe_names import safe_filename

STEP_DIR_RE = re.compile(r"^step_(\d+)$")
CURVES = (("success_rate", "success rate"), ("mpjpe_l_all", "MPJPE local (mm)"),
          ("mpjpe_g_all", "MPJPE global (mm)"))
METRICS_FILE = "metrics_eval.json"
# Per-clip table: these first, then each group's columns, then anything else.
LEADING_COLUMNS = ("clip", "success", "progress", "mpjpe_g", "mpjpe_l", "mpjpe_pa", "vel_dist",
                   "accel_dist")
METRIC_PREFIXES = ("mpjpe_g_", "mpjpe_l_", "mpjpe_pa_", "vel_dist_", "accel_dist_")

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
.clip { background: #fff; border: 1px solid #d6dbe1; padding: 8px; width: 490px; font-size: 12px; }
.clip video { width: 480px; background: #000; }
.plot { background: #fff; border: 1px solid #d6dbe1; max-width: 100%; }
"""


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def collect(exp_dir: str | Path) -> dict:
    """Evaluations (default ones and the others, each with its label) and failed steps.

    A step's default evaluation counts once the monitor marked it done, or, made by hand, when
    its metrics_eval.json is there and no failed.json says an attempt went wrong.
    """
    eval_root = Path(exp_dir) / "eval"
    evaluations, failed = [], []
    if eval_root.is_dir():
        for sub in sorted(eval_root.iterdir()):
            match = STEP_DIR_RE.match(sub.name)
            if not match or not sub.is_dir():
                continue
            step = int(match.group(1))
            is_done = (sub / "done.json").is_file()
            if (sub / "failed.json").is_file() and not is_done:
                failed.append({"step": step, "info": _read_json(sub / "failed.json") or {}})
            elif is_done or (sub / METRICS_FILE).is_file():
                _add(evaluations, step, "", sub)
            for other in sorted(p for p in sub.iterdir() if (p / METRICS_FILE).is_file()):
                _add(evaluations, step, other.name, other)
    evaluations.sort(key=lambda item: (item["step"], item["name"]))
    failed.sort(key=lambda item: item["step"])
    return {"evaluations": evaluations, "done": [e for e in evaluations if not e["name"]],
            "failed": failed}


def _add(evaluations: list, step: int, name: str, folder: Path) -> None:
    metrics = _read_json(folder / METRICS_FILE)
    if isinstance(metrics, dict):
        evaluations.append({"step": step, "name": name, "label": evaluation_label(step, name),
                            "dir": folder, "metrics": _drop_small_group_pa(metrics)})


def _drop_small_group_pa(metrics: dict) -> dict:
    """Files written before PA-MPJPE was limited to groups of >= MIN_PA_BODIES bodies hold
    ~0 mm values for the feet and VR points: leave them out here too."""
    groups = metrics.get("body_groups") or {"foot": [0, 1], "vr_3points": [0, 1, 2]}
    small = {f"mpjpe_pa_{g}" for g, bodies in groups.items() if len(bodies) < MIN_PA_BODIES}
    keep = lambda key: not any(key == s or key.startswith(f"{s}_") for s in small)  # noqa: E731
    clips = [{k: v for k, v in c.items() if keep(k)} if isinstance(c, dict) else c
             for c in metrics.get("clips", [])]
    aggregate = {k: v for k, v in (metrics.get("aggregate") or {}).items() if keep(k)}
    return {**metrics, "aggregate": aggregate, "clips": clips}


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


def _clip_name(clip: dict) -> str:
    return str(clip.get("clip", clip.get("key", "")))


def _fmt(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def _videos_for(clips: list[dict], video_dir: Path, eval_root: Path) -> tuple[dict, list[str]]:
    """Map clip name -> relative video path, plus the videos no clip claimed.

    The renderer's clips.json says which file shows which clip; without it a video whose name is
    the clip's safe file name (gear_sonic/utils/safe_names.py) belongs to that clip.
    """
    videos = sorted(video_dir.glob("*.mp4")) if video_dir.is_dir() else []
    index = _read_json(video_dir / VIDEO_INDEX)
    index = index if isinstance(index, dict) else {}
    by_file = {video.name: video for video in videos}
    by_key, claimed = {}, set()
    for clip in clips:
        key = _clip_name(clip)
        video = by_file.get(str(index.get(key, ""))) or by_file.get(f"{safe_filename(key)}.mp4")
        if key and video is not None and video not in claimed:
            by_key[key] = video.relative_to(eval_root).as_posix()
            claimed.add(video)
    rest = [v.relative_to(eval_root).as_posix() for v in videos if v not in claimed]
    return by_key, rest


def _video_tag(rel: str) -> str:
    return f'<video controls muted preload="metadata" src="{html.escape(rel)}"></video>'


def _summary_table(evaluations: list[dict]) -> str:
    keys = []
    for item in evaluations:
        for key, value in item["metrics"].get("aggregate", {}).items():
            if _num(value) is not None and key not in keys:
                keys.append(key)
    head = "".join(f"<th>{html.escape(k)}</th>" for k in keys)
    rows = []
    for item in evaluations:
        agg = item["metrics"].get("aggregate", {})
        cells = "".join(f"<td>{_fmt(agg.get(k, ''))}</td>" for k in keys)
        rows.append(f'<tr><td class="key">{html.escape(item["label"])}</td>{cells}</tr>')
    return f'<table><tr><th class="key">evaluation</th>{head}</tr>{"".join(rows)}</table>'


def _robustness_section(evaluations: list[dict]) -> list[str]:
    """One table per robustness result (scripts/robustness.py): completion and survival per
    perturbation level, with the summary score in the heading."""
    from gear_sonic.eval.robustness import robustness_rows

    parts = []
    for item in evaluations:
        metrics = item["metrics"]
        if _num(metrics.get("robustness/score")) is None:
            continue
        backend = html.escape(str(metrics.get("backend", "")))
        parts.append(f"<h2>Robustness: {html.escape(item['label'])} &middot; score "
                     f"{_fmt(metrics['robustness/score'])} ({backend} backend)</h2>")
        rows = "".join(
            f'<tr><td class="key">{html.escape(r["kind"])}</td><td>{html.escape(r["level"])}</td>'
            f'<td>{_fmt(r.get("completion", ""))}</td><td>{_fmt(r.get("survival", ""))}</td></tr>'
            for r in robustness_rows(metrics))
        parts.append('<table><tr><th class="key">perturbation</th><th>level</th>'
                     f"<th>completion</th><th>survival</th></tr>{rows}</table>")
    if parts:
        parts.append('<p class="sub">completion: trials played to the end without a fall; '
                     "survival: mean fraction of a trial played before the fall. Units: push "
                     "m/s, friction scale, mass kg added, delay control steps, obs_noise "
                     "fraction of each input's RMS.</p>")
    return parts


def clip_columns(clips: list[dict]) -> list[str]:
    """clip, success, progress, mpjpe g / l / pa, vel, accel, then the groups, then the rest."""
    present = []
    for clip in clips:
        present += [k for k in clip if k not in present and k != "key"]
    if any("key" in clip for clip in clips) and "clip" not in present:
        present.insert(0, "clip")  # files from before the rows were keyed by `clip`
    lead = [k for k in LEADING_COLUMNS if k in present]
    groups = sorted({k[len(p):] for k in present for p in METRIC_PREFIXES if k.startswith(p)})
    by_group = [f"{p}{g}" for g in groups for p in METRIC_PREFIXES if f"{p}{g}" in present]
    rest = [k for k in present if k not in lead and k not in by_group]
    return lead + by_group + rest


def _clip_table(clips: list[dict]) -> str:
    keys = clip_columns(clips)
    css = lambda k: "key" if k == "clip" else ""  # noqa: E731
    head = "".join(f'<th class="{css(k)}">{html.escape(k)}</th>' for k in keys)
    rows = []
    for clip in clips:
        cls = ' class="fail"' if _num(clip.get("success")) == 0.0 else ""
        value = lambda k: _clip_name(clip) if k == "clip" else clip.get(k, "")  # noqa: E731
        cells = "".join(f'<td class="{css(k)}">{_fmt(value(k))}</td>' for k in keys)
        rows.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def _worst_clips_section(item: dict, eval_root: Path) -> list[str]:
    """Cards (clip name, numbers, video) for the clips that have a video, worst first."""
    clips = [c for c in item["metrics"].get("clips", []) if isinstance(c, dict)]
    clips.sort(key=worst_first)
    by_key, other_videos = _videos_for(clips, item["dir"] / "videos", eval_root)
    parts = [f"<h2>Worst clips: {html.escape(item['label'])}</h2>"]
    cards = []
    for clip in clips:
        key = _clip_name(clip)
        if key not in by_key:
            continue
        info = " &middot; ".join(f"{html.escape(k)}={_fmt(clip[k])}"
                                 for k in ("success", "progress", "mpjpe_g") if k in clip)
        cards.append(f'<div class="clip"><div class="key"><b>{html.escape(key)}</b></div>'
                     f"<div>{info}</div>{_video_tag(by_key[key])}</div>")
    for rel in other_videos:
        cards.append(f'<div class="clip"><div class="key"><b>{html.escape(Path(rel).stem)}</b>'
                     f'</div><div class="sub">no clip of this evaluation has this name</div>'
                     f"{_video_tag(rel)}</div>")
    if cards:
        parts.append(f'<div class="clips">{"".join(cards)}</div>')
    else:
        parts.append('<p class="sub">No videos were rendered for this evaluation.</p>')
    parts.append(f"<h2>All clips: {html.escape(item['label'])} ({len(clips)}, worst first)</h2>")
    parts.append(_clip_table(clips))
    return parts


def render_html(exp_dir: str | Path) -> str:
    exp_dir = Path(exp_dir)
    eval_root = exp_dir / "eval"
    state = collect(exp_dir)
    evaluations, done, failed = state["evaluations"], state["done"], state["failed"]
    parts = [f"<h1>Checkpoint evaluation: {html.escape(exp_dir.name)}</h1>",
             f'<div class="sub">{html.escape(str(exp_dir.resolve()))} &middot; '
             f"{len(evaluations)} evaluations of {len({e['step'] for e in evaluations})} "
             f"checkpoints, {len(failed)} failed</div>"]
    if not evaluations:
        parts.append("<p>No checkpoint has been evaluated yet.</p>")
    else:
        png = _plot_png(done)
        if png:
            parts.append("<h2>Metrics over checkpoints (default evaluations)</h2>")
            parts.append('<img class="plot" alt="metric curves" '
                         f'src="data:image/png;base64,{png}">')
        parts.append("<h2>Evaluations</h2>")
        parts.append(_summary_table(evaluations))
        parts += _robustness_section(evaluations)
        # Robustness results have no clips: the clip sections show a tracking evaluation.
        with_clips = done or [e for e in evaluations if e["metrics"].get("clips")]
        if with_clips:
            latest = max(with_clips, key=lambda e: (e["step"], e["name"]))
            parts += _worst_clips_section(latest, eval_root)
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
