"""Checkpoint monitor: evaluate each `model_step_*.pt` of a training run once, in step order.

    python gear_sonic/eval_exp.py experiment_dir=logs_rl/gear_sonic/run-... [single_pass=true]

For every checkpoint older than `ready_delay_s` it runs the metrics command, then the render command
for the worst clips, each subprocess in its own process group and killed as a group past
`timeout_s`. Once the run has written its final checkpoint (step >= meta.yaml's
`max_train_steps`, the planned length) every checkpoint is complete and is evaluated at once.
It says which checkpoints it waits for and for how long; `single_pass=true` evaluates what is
ready and says what it skipped and why. Results live in `<exp_dir>/eval/step_XXXXXX/` (the
default evaluation; other evaluations made by hand go in sub-folders, gear_sonic/eval/outputs.py);
`done.json` is written atomically only after both succeeded, `failed.json` keeps the attempt
count and the last error. Which steps are finished is read only from those markers, so a
restarted monitor neither repeats nor skips a step.
`experiment_dir` may be a storage URL (s3://bucket/run, gear_sonic/storage.py): the monitor then
works in a local mirror, fetching checkpoints not evaluated yet and uploading eval/ after each step.
With `run_robustness=true` each step also runs scripts/robustness.py (off by default: it costs
more than the evaluation) into `step_XXXXXX/robustness-env/`; its score joins the step's summary.
After each evaluation the HTML report is rewritten and `eval/*` metrics are logged (keyed by
`eval_step`) into the training run's wandb run, backfilling steps that were not logged yet.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from gear_sonic import storage  # noqa: E402
from gear_sonic.eval.report import write_report  # noqa: E402
from gear_sonic.utils.atomic_io import atomic_write_text  # noqa: E402

CKPT_RE = re.compile(r"^model_step_(\d+)\.pt$")
KILL_GRACE_S = 5.0
# Printed per finished step (metrics_eval.json and report.html hold the rest).
SUMMARY_KEYS = ("success_rate", "progress_rate", "mpjpe_g_all", "mpjpe_l_all", "mpjpe_pa_all",
                "vel_dist_all", "accel_dist_all", "robustness/score")


class EvalFailure(RuntimeError):
    pass


def _terminate(signum, frame):
    raise SystemExit(128 + signum)


class CheckpointEvaluator:
    def __init__(self, cfg: DictConfig):
        self.cfg = cfg
        # A remote experiment dir (storage URL) is evaluated in a local mirror: checkpoints are
        # fetched as they appear, eval/ is uploaded after each step (gear_sonic/storage.py).
        self.mirror = None
        if storage.is_remote(cfg.experiment_dir):
            url = storage.location(cfg.experiment_dir)
            self.mirror = storage.Mirror(url, storage.staging_dir(url, "mirror"))
            self.exp_dir = self.mirror.local
        else:
            self.exp_dir = storage.location(cfg.experiment_dir).expanduser().resolve()
        self.eval_root = self.exp_dir / "eval"
        self._wandb_run = None
        self._announced = ()  # steps of the last waiting message: a scan loop says it once

    # ---------- state on disk ----------
    def step_dir(self, step: int) -> Path:
        return self.eval_root / f"step_{step:06d}"

    def is_done(self, step: int) -> bool:
        return (self.step_dir(step) / "done.json").is_file()

    def attempts(self, step: int) -> int:
        path = self.step_dir(step) / "failed.json"
        try:
            return int(json.loads(path.read_text()).get("attempts", 0))
        except (OSError, ValueError, TypeError, AttributeError):
            return 0

    def is_given_up(self, step: int) -> bool:
        return self.attempts(step) > int(self.cfg.max_retries)

    def is_finished(self, step: int) -> bool:
        return self.is_done(step) or self.is_given_up(step)

    def max_train_steps(self) -> int | None:
        try:
            meta = OmegaConf.load(self.exp_dir / "meta.yaml")
        except (OSError, ValueError):
            return None
        value = meta.get("max_train_steps")
        return int(value) if value is not None else None

    # ---------- scanning ----------
    def checkpoints(self) -> list[tuple[int, Path]]:
        found = []
        for path in self.exp_dir.glob("model_step_*.pt"):
            match = CKPT_RE.match(path.name)
            if match:
                found.append((int(match.group(1)), path))
        return sorted(found)

    def run_finished(self) -> bool:
        """The final checkpoint is on disk: every checkpoint is complete, none needs the delay."""
        final = self.max_train_steps()
        return final is not None and any(s >= final for s, _ in self.checkpoints())

    def scan(self, now: float | None = None):
        """-> (ready unfinished checkpoints in step order, [(step, path, seconds until ready)]).

        Selected = every `eval_frequency`-th checkpoint plus the final one; ready = older than
        `ready_delay_s`, or any checkpoint of a finished run.
        """
        all_ckpts = self.checkpoints()
        final = self.max_train_steps()
        k = max(1, int(self.cfg.eval_frequency))
        selected = [(s, p) for i, (s, p) in enumerate(all_ckpts)
                    if i % k == 0 or (final is not None and s >= final)]
        delay = 0.0 if self.run_finished() else float(self.cfg.ready_delay_s)
        now = time.time() if now is None else now
        ready, waiting = [], []
        for step, path in selected:
            try:
                age = now - path.stat().st_mtime
            except FileNotFoundError:
                continue
            if age >= delay:
                ready.append((step, path))
            elif not self.is_finished(step):
                waiting.append((step, path, delay - age))
        if self.cfg.eval_last_n is not None:
            ready = ready[-int(self.cfg.eval_last_n):] if int(self.cfg.eval_last_n) > 0 else []
        return [(s, p) for s, p in ready if not self.is_finished(s)], waiting

    def pending(self) -> list[tuple[int, Path]]:
        """Ready, selected, unfinished checkpoints in step order."""
        return self.scan()[0]

    def waiting_message(self, waiting) -> str:
        items = ", ".join(f"{p.name} (ready in {math.ceil(left)} s)" for _, p, left in waiting)
        final = self.max_train_steps()
        why = (f"the run is not at its final iteration yet (max_train_steps={final} in meta.yaml)"
               if final is not None else "meta.yaml gives no max_train_steps")
        return (f"{len(waiting)} checkpoint(s) younger than ready_delay_s="
                f"{float(self.cfg.ready_delay_s):g}: {items}; {why}")

    def reached_end(self) -> bool:
        final = self.max_train_steps()
        if final is None:
            return False
        return any(s >= final and self.is_finished(s) for s, _ in self.checkpoints())

    # ---------- subprocesses ----------
    def _format(self, template, **values) -> list[str]:
        values = {"python": sys.executable, "repo": str(REPO_ROOT), **values}
        return [str(part).format(**values) for part in template]

    def run_command(self, cmd: list[str], log_path: Path) -> None:
        """Run `cmd` in its own session; past the timeout (or if we are stopped) kill its group."""
        timeout = float(self.cfg.timeout_s)
        with open(log_path, "ab") as log:
            log.write(f"$ {' '.join(cmd)}\n".encode())
            log.flush()
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True, cwd=str(REPO_ROOT))
            try:
                rc = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._kill_group(proc)
                raise EvalFailure(f"timed out after {timeout:g} s: {' '.join(cmd)}") from None
            except BaseException:
                self._kill_group(proc)
                raise
            finally:
                # Leftover children of a finished command are killed as well.
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        if rc != 0:
            raise EvalFailure(f"exit code {rc}: {' '.join(cmd)} (log: {log_path})")

    @staticmethod
    def _kill_group(proc: subprocess.Popen) -> None:
        """SIGTERM the whole process group, give it a grace period, then SIGKILL what is left."""
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.wait(timeout=KILL_GRACE_S)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        proc.wait()

    # ---------- one checkpoint ----------
    def evaluate_once(self, step: int, ckpt: Path) -> dict:
        out = self.step_dir(step)
        out.mkdir(parents=True, exist_ok=True)
        metrics_file = out / "metrics_eval.json"
        shutil.rmtree(out / "videos", ignore_errors=True)
        log_path = out / "eval.log"
        values = {"checkpoint": str(ckpt), "num_envs": int(self.cfg.num_eval_envs),
                  "output_dir": str(out), "metrics_file": str(metrics_file),
                  "num_videos": int(self.cfg.num_render_videos)}
        if metrics_file.is_file() and not (out / "failed.json").is_file():
            # The default evaluation made by hand (or by a monitor stopped before its render):
            # written atomically, so complete; keep it rather than replace it.
            print(f"[eval_exp] step {step}: using the {metrics_file.name} already there",
                  flush=True)
        else:
            metrics_file.unlink(missing_ok=True)
            self.run_command(self._format(self.cfg.metrics_command, **values), log_path)
        try:
            metrics = json.loads(metrics_file.read_text())
            aggregate = metrics["aggregate"]
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise EvalFailure(f"no usable {metrics_file}: {err}") from None
        if int(self.cfg.num_render_videos) > 0:
            self.run_command(self._format(self.cfg.render_command, **values), log_path)
        if self.cfg.get("run_robustness", False):
            # scripts/robustness.py beside the default evaluation: step_XXXXXX/robustness-env/
            robust_dir = out / "robustness-env"
            self.run_command(self._format(self.cfg.robustness_command, **values,
                                          robustness_dir=str(robust_dir)), log_path)
            aggregate = {**aggregate, **_robustness_summary(robust_dir / "metrics_eval.json")}
        return aggregate

    def evaluate(self, step: int, ckpt: Path) -> bool:
        """Attempt `step` until it succeeds or the retries are spent; markers record the outcome."""
        out = self.step_dir(step)
        while not self.is_finished(step):
            attempt = self.attempts(step) + 1
            print(f"[eval_exp] step {step}: attempt {attempt} ({ckpt.name})", flush=True)
            started = time.time()
            try:
                aggregate = self.evaluate_once(step, ckpt)
            except EvalFailure as err:
                print(f"[eval_exp] step {step}: attempt {attempt} failed: {err}", flush=True)
                failed = {"step": step, "attempts": attempt, "error": str(err),
                          "checkpoint": str(ckpt), "time": time.time()}
                atomic_write_text(json.dumps(failed, indent=2), out / "failed.json")
                continue
            done = {"step": step, "checkpoint": str(ckpt), "attempts": attempt,
                    "seconds": round(time.time() - started, 3), "aggregate": aggregate}
            atomic_write_text(json.dumps(done, indent=2), out / "done.json")
            (out / "failed.json").unlink(missing_ok=True)
            summary = " ".join(f"{k}={aggregate[k]:.4g}" for k in SUMMARY_KEYS
                               if isinstance(aggregate.get(k), (int, float)))
            print(f"[eval_exp] step {step}: done {summary}", flush=True)
            return True
        return self.is_done(step)

    # ---------- wandb ----------
    def log_wandb(self) -> None:
        """Log every done step not yet in `eval/wandb_logged.json` into the training run."""
        mode = str(self.cfg.wandb.mode)
        if mode == "disabled":
            return
        if mode not in ("online", "offline"):
            raise ValueError(f"wandb.mode={mode!r}: choose disabled, online or offline")
        logged_path = self.eval_root / "wandb_logged.json"
        try:
            logged = set(json.loads(logged_path.read_text()))
        except (OSError, ValueError):
            logged = set()
        todo = []
        for sub in self.eval_root.glob("step_*"):
            step = sub.name[len("step_"):]
            if step.isdigit() and int(step) not in logged and (sub / "done.json").is_file():
                todo.append(int(step))
        if not todo:
            return
        run = self._wandb()
        for step in sorted(todo):
            done = json.loads((self.step_dir(step) / "done.json").read_text())
            aggregate = done.get("aggregate", {})
            row = {f"eval/{k}": v for k, v in aggregate.items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)}
            row["eval_step"] = step
            run.log(row)
            logged.add(step)
            atomic_write_text(json.dumps(sorted(logged)), logged_path)

    def _wandb(self):
        if self._wandb_run is None:
            import wandb

            meta = OmegaConf.load(self.exp_dir / "meta.yaml")
            project, entity = "gear_sonic", None
            if (self.exp_dir / "config.yaml").is_file():
                train_cfg = OmegaConf.load(self.exp_dir / "config.yaml")
                project = OmegaConf.select(train_cfg, "callbacks.wandb.project", default=project)
                entity = OmegaConf.select(train_cfg, "callbacks.wandb.entity", default=None)
            self._wandb_run = wandb.init(project=project, entity=entity, id=str(meta.wandb_run_id),
                                         resume="allow", mode=str(self.cfg.wandb.mode),
                                         dir=str(self.exp_dir))
            self._wandb_run.define_metric("eval_step")
            self._wandb_run.define_metric("eval/*", step_metric="eval_step")
        return self._wandb_run

    def close(self) -> None:
        if self._wandb_run is not None:
            self._wandb_run.finish()
            self._wandb_run = None

    # ---------- main loop ----------
    def wait_for_experiment(self) -> None:
        announced = False
        while not (self.mirror.exists() if self.mirror else self.exp_dir.is_dir()):
            if not announced:
                print(f"[eval_exp] waiting for experiment directory {self.exp_dir} to appear",
                      flush=True)
                announced = True
            time.sleep(min(float(self.cfg.scan_interval), 5.0))

    def scan_once(self) -> int:
        """Evaluate every pending checkpoint in step order; returns how many were attempted."""
        self.pull()
        pending, waiting = self.scan()
        waiting_steps = tuple(step for step, _, _ in waiting)
        if waiting and waiting_steps != self._announced and not self.cfg.single_pass:
            print(f"[eval_exp] waiting for {self.waiting_message(waiting)}", flush=True)
        self._announced = waiting_steps
        for step, ckpt in pending:
            self.evaluate(step, ckpt)
            self.log_wandb()
            write_report(self.exp_dir)
            if self.mirror:
                self.mirror.push("eval")
        return len(pending)

    def pull(self) -> None:
        """Remote experiment dir: fetch meta/config and the checkpoints not evaluated yet."""
        if self.mirror is None:
            return

        def wanted(name: str) -> bool:
            match = CKPT_RE.match(name)
            return name in ("meta.yaml", "config.yaml") or bool(
                match and not self.is_finished(int(match.group(1)))
            )

        self.mirror.pull(wanted, refresh=("meta.yaml",))

    def single_pass_summary(self, attempted: int) -> str:
        """What a single pass did, and what it skipped and why."""
        _, waiting = self.scan()
        checkpoints = self.checkpoints()
        if not checkpoints:
            return f"single pass: no model_step_*.pt in {self.exp_dir} yet: nothing evaluated"
        if waiting:
            return (f"single pass: evaluated {attempted}, skipped {self.waiting_message(waiting)}. "
                    "Run again once they are ready, or without single_pass=true to wait for them")
        if attempted == 0:
            return (f"single pass: nothing to evaluate: the {len(checkpoints)} checkpoint(s) "
                    "selected are already evaluated (or given up after max_retries)")
        return f"single pass: evaluated {attempted} checkpoint(s)"

    def run(self) -> None:
        self.wait_for_experiment()
        print(f"[eval_exp] monitoring {self.mirror.url if self.mirror else self.exp_dir}",
              flush=True)
        if self.mirror:
            self.mirror.pull_tree("eval")  # what an earlier monitor finished
        try:
            self.log_wandb()  # backfill from an earlier session
            while True:
                attempted = self.scan_once()
                if self.reached_end():
                    print("[eval_exp] final checkpoint evaluated, stopping", flush=True)
                    break
                if self.cfg.single_pass:
                    print(f"[eval_exp] {self.single_pass_summary(attempted)}", flush=True)
                    break
                time.sleep(float(self.cfg.scan_interval))
            if self.eval_root.is_dir():
                write_report(self.exp_dir)
                if self.mirror:
                    self.mirror.push("eval")
        finally:
            self.close()


def _robustness_summary(path: Path) -> dict:
    """robustness/score of a finished benchmark (logged with the step's eval/* metrics)."""
    try:
        return {"robustness/score": float(json.loads(path.read_text())["robustness/score"])}
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise EvalFailure(f"no usable {path}: {err}") from None


@hydra.main(config_path="../config", config_name="eval_exp", version_base="1.3")
def main(cfg: DictConfig) -> None:
    from gear_sonic.utils.log_setup import configure_logging

    configure_logging()
    signal.signal(signal.SIGTERM, _terminate)
    CheckpointEvaluator(cfg).run()


if __name__ == "__main__":
    main()
