"""Checkpoint monitor (gear_sonic/eval_exp.py) and HTML report, driven by a fake evaluator."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from gear_sonic.eval.report import write_report
from gear_sonic.eval_exp import CheckpointEvaluator

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = str(REPO_ROOT / "config")
CHROMIUM = Path("/usr/bin/chromium")

FAKE_EVALUATOR = r'''
import json, os, subprocess, sys, time
from pathlib import Path

args = dict(a.lstrip("+").split("=", 1) for a in sys.argv[1:])
step = int(Path(args["checkpoint"]).stem.split("_")[-1])
mode = "render" if "metrics_file" in args else "metrics"
log = Path(os.environ["FAKE_EVAL_LOG"])
with open(log, "a") as f:
    f.write(f"start {mode} {step}\n")
if os.environ.get("FAKE_EVAL_HANG"):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    with open(os.environ["FAKE_EVAL_PIDS"], "a") as f:
        f.write(f"{os.getpid()}\n{child.pid}\n")
    time.sleep(600)
if os.environ.get("FAKE_EVAL_FAIL"):
    sys.exit(3)
time.sleep(float(os.environ.get("FAKE_EVAL_SLEEP", "0")))
out = Path(args["output_dir"])
out.mkdir(parents=True, exist_ok=True)
if mode == "metrics":
    frac = step / 1000.0
    clips = [{"clip": f"clip_{i:02d}", "success": float(i % 3 != 0),
              "progress": 1.0 if i % 3 else 0.4 + 0.05 * i,
              "mpjpe_l": 30.0 + 3 * i - 10 * frac, "mpjpe_g": 60.0 + 4 * i - 20 * frac}
             for i in range(9)]
    agg = {"success_rate": sum(c["success"] for c in clips) / len(clips) + 0.1 * frac,
           "progress_rate": 0.8 + 0.1 * frac, "mpjpe_g_all": 80.0 - 20 * frac,
           "mpjpe_l_all": 40.0 - 10 * frac}
    tmp = out / "metrics_eval.json.tmp"
    tmp.write_text(json.dumps({"aggregate": agg, "clips": clips}))
    os.replace(tmp, out / "metrics_eval.json")
else:
    metrics = json.loads(Path(args["metrics_file"]).read_text())
    worst = sorted(metrics["clips"], key=lambda c: (c["success"], c["progress"]))
    worst = worst[: int(args["num_render_videos"])]
    (out / "videos").mkdir(exist_ok=True)
    for clip in worst:
        (out / "videos" / f"{clip['clip']}.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42")
with open(log, "a") as f:
    f.write(f"end {mode} {step}\n")
'''


def _overrides(exp_dir: Path, fake: Path, **extra) -> list[str]:
    values = {"experiment_dir": str(exp_dir), "ready_delay_s": 5, "scan_interval": 0.2,
              "timeout_s": 30, "max_retries": 2, "num_render_videos": 2, "single_pass": True,
              **extra}
    metrics = ["{python}", str(fake), "+checkpoint={checkpoint}", "++num_envs={num_envs}",
               "++output_dir={output_dir}"]
    render = ["{python}", str(fake), "+checkpoint={checkpoint}", "++metrics_file={metrics_file}",
              "++num_render_videos={num_videos}", "++output_dir={output_dir}"]
    quoted = lambda parts: "[" + ",".join(json.dumps(p) for p in parts) + "]"  # noqa: E731
    return [f"{k}={v}" for k, v in values.items()] + [f"metrics_command={quoted(metrics)}",
                                                        f"render_command={quoted(render)}"]


def _cfg(exp_dir: Path, fake: Path, **extra):
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose("eval_exp", overrides=_overrides(exp_dir, fake, **extra))


def _make_run(exp_dir: Path, steps, max_train_steps: int, fresh=()) -> None:
    exp_dir.mkdir(parents=True, exist_ok=True)
    meta = f"wandb_run_id: abc12345\nmax_train_steps: {max_train_steps}\n"
    (exp_dir / "meta.yaml").write_text(meta)
    (exp_dir / "config.yaml").write_text("num_envs: 4\n")
    old = time.time() - 3600
    for step in steps:
        path = exp_dir / f"model_step_{step:06d}.pt"
        path.write_bytes(b"fake")
        if step not in fresh:
            os.utime(path, (old, old))
    (exp_dir / "last.pt").write_bytes(b"fake")


def _events(log: Path, kind: str, mode: str = "metrics") -> list[int]:
    if not log.exists():
        return []
    return [int(line.split()[2]) for line in log.read_text().splitlines()
            if line.split()[:2] == [kind, mode]]


@pytest.fixture
def fake(tmp_path, monkeypatch) -> Path:
    script = tmp_path / "fake_eval.py"
    script.write_text(FAKE_EVALUATOR)
    monkeypatch.setenv("FAKE_EVAL_LOG", str(tmp_path / "invocations.log"))
    for var in ("FAKE_EVAL_HANG", "FAKE_EVAL_FAIL", "FAKE_EVAL_SLEEP"):
        monkeypatch.delenv(var, raising=False)
    return script


def test_single_pass_each_checkpoint_once_in_order(tmp_path, fake, capsys):
    exp = tmp_path / "run"
    _make_run(exp, [300, 100, 200, 400], max_train_steps=500, fresh=(400,))
    log = tmp_path / "invocations.log"
    CheckpointEvaluator(_cfg(exp, fake, ready_delay_s=600)).run()
    assert _events(log, "end") == [100, 200, 300]  # 400 is not ready yet
    assert _events(log, "end", "render") == [100, 200, 300]
    out = capsys.readouterr().out
    # It says what it skipped, how long until it is ready, and why.
    assert "evaluated 3, skipped 1 checkpoint(s) younger than ready_delay_s=600" in out
    assert re.search(r"model_step_000400\.pt \(ready in (5\d\d|600) s\)", out), out
    assert "max_train_steps=500" in out
    for step in (100, 200, 300):
        done = json.loads((exp / "eval" / f"step_{step:06d}" / "done.json").read_text())
        assert done["step"] == step and "success_rate" in done["aggregate"]
        assert len(list((exp / "eval" / f"step_{step:06d}" / "videos").glob("*.mp4"))) == 2
    assert (exp / "eval" / "report.html").is_file()
    CheckpointEvaluator(_cfg(exp, fake, ready_delay_s=600)).run()  # nothing new
    assert _events(log, "start") == [100, 200, 300]
    old = time.time() - 3600
    os.utime(exp / "model_step_000400.pt", (old, old))
    evaluator = CheckpointEvaluator(_cfg(exp, fake, ready_delay_s=600))
    evaluator.run()
    assert _events(log, "start") == [100, 200, 300, 400]
    assert not evaluator.reached_end()  # 500 is the planned end
    capsys.readouterr()
    CheckpointEvaluator(_cfg(exp, fake, ready_delay_s=600)).run()
    assert "nothing to evaluate" in capsys.readouterr().out


def test_single_pass_on_a_finished_run_evaluates_without_waiting(tmp_path, fake, capsys):
    exp = tmp_path / "run"
    # Right after training: every checkpoint just written, the last one is the final iteration.
    _make_run(exp, [100, 200], max_train_steps=200, fresh=(100, 200))
    evaluator = CheckpointEvaluator(_cfg(exp, fake, ready_delay_s=60))
    start = time.time()
    evaluator.run()
    assert time.time() - start < 30
    assert _events(tmp_path / "invocations.log", "end") == [100, 200]
    assert evaluator.reached_end()
    out = capsys.readouterr().out
    assert "final checkpoint evaluated" in out and "waiting" not in out


def test_continuous_monitor_says_what_it_waits_for(tmp_path, fake):
    exp = tmp_path / "run"
    _make_run(exp, [100], max_train_steps=300, fresh=(100,))
    out = tmp_path / "monitor.out"
    proc = _monitor(exp, fake, out, single_pass=False, ready_delay_s=3600, scan_interval=0.1)
    try:
        _wait_for(lambda: "waiting for" in out.read_text(), 45, "the waiting message")
        time.sleep(0.5)  # several scans: the message is printed once, not every scan
    finally:
        proc.kill()
        proc.wait()
    text = out.read_text()
    assert text.count("waiting for") == 1, text
    assert re.search(r"model_step_000100\.pt \(ready in 3[56]\d\d s\)", text), text


def test_default_evaluation_made_by_hand_is_kept(tmp_path, fake):
    exp = tmp_path / "run"
    _make_run(exp, [100], max_train_steps=100)
    by_hand = exp / "eval" / "step_000100"
    _write_eval(by_hand, [{"clip": "clip_00", "success": 1.0, "progress": 1.0}], done=False)
    before = (by_hand / "metrics_eval.json").read_text()
    CheckpointEvaluator(_cfg(exp, fake)).run()
    log = tmp_path / "invocations.log"
    assert _events(log, "start") == [] and _events(log, "end", "render") == [100]
    assert (by_hand / "metrics_eval.json").read_text() == before
    assert (by_hand / "done.json").is_file()


def test_eval_frequency_and_last_n(tmp_path, fake):
    exp = tmp_path / "run"
    _make_run(exp, [100, 200, 300, 400, 500], max_train_steps=1000)
    def pending(**extra):
        return [s for s, _ in CheckpointEvaluator(_cfg(exp, fake, **extra)).pending()]

    assert pending(eval_frequency=2) == [100, 300, 500]
    assert pending(eval_last_n=2) == [400, 500]
    assert pending(ready_delay_s=7200) == []


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.time() + timeout
    while not predicate():
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _monitor(exp: Path, fake: Path, out_path: Path, **extra) -> subprocess.Popen:
    cmd = [sys.executable, str(REPO_ROOT / "gear_sonic" / "eval_exp.py"),
           *_overrides(exp, fake, **extra)]
    with open(out_path, "w") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=str(REPO_ROOT))


def test_kill_and_restart_no_repeats_no_gaps(tmp_path, fake, monkeypatch):
    exp = tmp_path / "run"
    steps = [100, 200, 300, 400]
    _make_run(exp, steps, max_train_steps=400)
    log = tmp_path / "invocations.log"
    monkeypatch.setenv("FAKE_EVAL_SLEEP", "1.0")
    first = _monitor(exp, fake, tmp_path / "first.out", single_pass=False, num_render_videos=0)
    try:
        first_done = exp / "eval" / "step_000100" / "done.json"
        _wait_for(first_done.exists, 60, "the first checkpoint")
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=30)
    assert not (exp / "eval" / "step_000400" / "done.json").exists()
    second = _monitor(exp, fake, tmp_path / "second.out", single_pass=False, num_render_videos=0)
    try:
        assert second.wait(timeout=60) == 0, (tmp_path / "second.out").read_text()
    finally:
        if second.poll() is None:
            second.kill()
    assert _events(log, "end") == steps  # every step completed exactly once, in order
    assert "final checkpoint evaluated" in (tmp_path / "second.out").read_text()
    for step in steps:
        assert (exp / "eval" / f"step_{step:06d}" / "done.json").is_file()


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def test_hung_evaluation_killed_and_retried(tmp_path, fake, monkeypatch):
    exp = tmp_path / "run"
    _make_run(exp, [100], max_train_steps=100)
    pids_file = tmp_path / "pids.txt"
    monkeypatch.setenv("FAKE_EVAL_HANG", "1")
    monkeypatch.setenv("FAKE_EVAL_PIDS", str(pids_file))
    log = tmp_path / "invocations.log"
    start = time.time()
    CheckpointEvaluator(_cfg(exp, fake, timeout_s=1.5, max_retries=1)).run()
    assert time.time() - start < 30
    assert _events(log, "start") == [100, 100]  # first attempt + max_retries
    failed = json.loads((exp / "eval" / "step_000100" / "failed.json").read_text())
    assert failed["attempts"] == 2 and "timed out" in failed["error"]
    assert not (exp / "eval" / "step_000100" / "done.json").exists()
    pids = [int(p) for p in pids_file.read_text().split()]
    assert len(pids) == 4
    _wait_for(lambda: not any(_alive(p) for p in pids), 10, "the evaluator process groups to die")
    monkeypatch.delenv("FAKE_EVAL_HANG")
    # Given up (failed.json holds max_retries + 1 attempts): not tried again.
    CheckpointEvaluator(_cfg(exp, fake, timeout_s=1.5, max_retries=1)).run()
    assert _events(log, "start") == [100, 100]
    assert "Failed checkpoints" in (exp / "eval" / "report.html").read_text()


def test_failed_then_restart_continues_attempt_count(tmp_path, fake, monkeypatch):
    exp = tmp_path / "run"
    _make_run(exp, [100], max_train_steps=100)
    monkeypatch.setenv("FAKE_EVAL_FAIL", "1")
    cfg = _cfg(exp, fake, max_retries=2)
    evaluator = CheckpointEvaluator(cfg)
    (exp / "eval" / "step_000100").mkdir(parents=True)
    earlier = json.dumps({"attempts": 1, "error": "x"})
    (exp / "eval" / "step_000100" / "failed.json").write_text(earlier)
    evaluator.run()
    # 1 attempt from an earlier session + 2 now = 1 + max_retries.
    assert _events(tmp_path / "invocations.log", "start") == [100, 100]
    assert json.loads((exp / "eval" / "step_000100" / "failed.json").read_text())["attempts"] == 3


def test_missing_experiment_dir_waits(tmp_path, fake):
    exp = tmp_path / "not_yet" / "run"
    out = tmp_path / "monitor.out"
    proc = _monitor(exp, fake, out)
    try:
        _wait_for(lambda: "waiting" in out.read_text(), 45, "the waiting message")
        time.sleep(0.3)
        assert proc.poll() is None, out.read_text()
    finally:
        proc.kill()
        proc.wait()
    assert str(exp) in out.read_text()
    assert not exp.exists()


def test_wandb_logging_and_backfill(tmp_path, fake, monkeypatch):
    exp = tmp_path / "run"
    _make_run(exp, [100, 200], max_train_steps=1000)
    # wandb disabled: nothing logged, nothing recorded as logged.
    CheckpointEvaluator(_cfg(exp, fake, num_render_videos=0)).run()
    assert not (exp / "eval" / "wandb_logged.json").exists()
    calls = {"init": [], "log": [], "define": []}

    class FakeRun:
        def define_metric(self, name, **kw):
            calls["define"].append((name, kw))

        def log(self, row):
            calls["log"].append(row)

        def finish(self):
            pass

    fake_wandb = type(sys)("wandb")
    fake_wandb.init = lambda **kw: calls["init"].append(kw) or FakeRun()
    monkeypatch.setitem(sys.modules, "wandb", fake_wandb)
    CheckpointEvaluator(_cfg(exp, fake, num_render_videos=0, **{"wandb.mode": "offline"})).run()
    assert calls["init"][0]["id"] == "abc12345" and calls["init"][0]["resume"] == "allow"
    assert ("eval/*", {"step_metric": "eval_step"}) in calls["define"]
    assert [row["eval_step"] for row in calls["log"]] == [100, 200]  # backfilled
    assert "eval/success_rate" in calls["log"][0]
    assert json.loads((exp / "eval" / "wandb_logged.json").read_text()) == [100, 200]
    CheckpointEvaluator(_cfg(exp, fake, num_render_videos=0, **{"wandb.mode": "offline"})).run()
    assert len(calls["log"]) == 2


@pytest.fixture
def report_run(tmp_path, fake) -> Path:
    exp = tmp_path / "run"
    _make_run(exp, [100, 200, 300], max_train_steps=300)
    CheckpointEvaluator(_cfg(exp, fake)).run()
    return exp


def test_report_contents(report_run):
    path = write_report(report_run)
    text = path.read_text()
    assert path == report_run / "eval" / "report.html"
    assert "data:image/png;base64," in text
    assert "Worst clips: step 300" in text and "<b>clip_00</b>" in text
    assert 'src="step_000300/videos/clip_00.mp4"' in text
    assert (path.parent / "step_000300" / "videos" / "clip_00.mp4").is_file()
    assert text.count("<tr") >= 3 + 9
    assert not list(path.parent.glob(".report.html.*"))  # no temp file left behind


def _write_eval(folder: Path, clips: list[dict], done: bool = True, **extra) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    agg = {"success_rate": 0.5, "mpjpe_g_all": 40.0}
    metrics = {"aggregate": agg, "clips": clips, **extra}
    (folder / "metrics_eval.json").write_text(json.dumps(metrics))
    if done:
        (folder / "done.json").write_text("{}")


def test_report_matches_videos_exactly(tmp_path):
    step_dir = tmp_path / "run" / "eval" / "step_000010"
    _write_eval(step_dir, [{"clip": "walk_1", "success": 0.0}, {"clip": "walk_10", "success": 0.0}])
    (step_dir / "videos").mkdir()
    for name in ("walk_10", "walk_1"):
        (step_dir / "videos" / f"{name}.mp4").write_bytes(b"x")
    text = write_report(tmp_path / "run").read_text()
    video_1 = text.index('src="step_000010/videos/walk_1.mp4"')
    assert text.index("<b>walk_1</b>") < video_1 < text.index("<b>walk_10</b>")


def test_report_cards_name_their_clip_and_need_a_video(tmp_path):
    step_dir = tmp_path / "run" / "eval" / "step_000010"
    clips = [{"clip": f"clip_{i}", "success": False, "progress": 0.1 * i, "mpjpe_l": 5.0,
              "mpjpe_g": 9.0, "mpjpe_g_legs": 1.0, "accel_dist": 1.0, "vel_dist": 2.0,
              "mpjpe_pa": 3.0, "frames": 10} for i in range(7)]
    _write_eval(step_dir, clips)
    (step_dir / "videos").mkdir()
    # The renderer's index says which file shows which clip (safe names differ from keys).
    (step_dir / "videos" / "clip_3.mp4").write_bytes(b"x")
    (step_dir / "videos" / "weird_name.mp4").write_bytes(b"x")
    (step_dir / "videos" / "clips.json").write_text(json.dumps({"clip_3": "clip_3.mp4",
                                                                "clip_5": "weird_name.mp4"}))
    text = write_report(tmp_path / "run").read_text()
    cards = re.findall(r'<div class="clip">(.*?)</video></div>', text)
    assert len(cards) == 2 and "no video" not in text
    assert "<b>clip_3</b>" in cards[0] and "<b>clip_5</b>" in cards[1]
    assert "weird_name.mp4" in cards[1]
    header = re.search(r"<h2>All clips.*?<tr>(.*?)</tr>", text, re.S).group(1)
    columns = re.findall(r"<th[^>]*>(.*?)</th>", header)
    assert columns == ["clip", "success", "progress", "mpjpe_g", "mpjpe_l", "mpjpe_pa",
                       "vel_dist", "accel_dist", "mpjpe_g_legs", "frames"]


def test_report_drops_pa_mpjpe_of_small_groups_from_old_files(tmp_path):
    step_dir = tmp_path / "run" / "eval" / "step_000010"
    clips = [{"clip": "a", "success": True, "mpjpe_pa": 3.0, "mpjpe_pa_foot": 2.6e-15,
              "mpjpe_pa_vr_3points": 1e-9, "mpjpe_pa_legs": 2.0}]
    _write_eval(step_dir, clips)
    text = write_report(tmp_path / "run").read_text()
    assert "mpjpe_pa_legs" in text
    assert "mpjpe_pa_foot" not in text and "mpjpe_pa_vr_3points" not in text


def test_report_lists_each_evaluation_under_its_own_label(tmp_path):
    step_dir = tmp_path / "run" / "eval" / "step_000060"
    clips = [{"clip": "a", "success": True, "progress": 1.0}]
    _write_eval(step_dir, clips)
    for name in ("enc-g1", "enc-teleop", "enc-smpl"):
        _write_eval(step_dir / name, clips, done=False)
    text = write_report(tmp_path / "run").read_text()
    labels = re.findall(r'<tr><td class="key">(step 60[^<]*)</td>', text)
    assert labels == ["step 60", "step 60 · enc-g1", "step 60 · enc-smpl",
                      "step 60 · enc-teleop"]


def test_report_renders_in_browser(report_run, tmp_path):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not installed: the browser check needs it "
                    "(apt-get install chromium)")
    import numpy as np
    from PIL import Image

    report = write_report(report_run)
    png = tmp_path / "shot.png"
    cmd = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu",
           "--disable-background-networking", "--disable-component-update", "--no-first-run",
           f"--user-data-dir={tmp_path / 'chrome'}", f"--screenshot={png}",
           "--window-size=1000,800", f"file://{report}"]
    subprocess.run(cmd, check=True, timeout=60, capture_output=True)
    pixels = np.asarray(Image.open(png).convert("L"), dtype=np.float64)
    assert pixels.shape[:2] == (800, 1000)
    assert pixels.var() > 100.0, f"screenshot looks blank (variance {pixels.var():.1f})"
