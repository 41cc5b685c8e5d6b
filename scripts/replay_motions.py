"""Replay every clip of a preset's motion set in the tracking env with PD targets set to the
reference joints (no policy) and report how long each clip is tracked and how closely.

    python scripts/replay_motions.py +exp=manager/universal_token/all_modes/sonic_cpu [overrides]

A physically plausible clip stays up for most of its length even without a policy; a clip that
falls in the first second usually has feet off the ground or limbs through each other.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from rich.console import Console
from rich.table import Table

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


def main(overrides: list[str]) -> None:
    from gear_sonic.utils.log_setup import configure_logging

    configure_logging()
    from gear_sonic.envs import create_manager_env
    from gear_sonic.eval.exact_replay import apply_exact_replay

    if not any(o.startswith("+exp=") for o in overrides):
        overrides = ["+exp=manager/universal_token/all_modes/sonic_cpu", *overrides]
    with initialize_config_dir(config_dir=str(REPO_ROOT / "config"), version_base="1.3"):
        cfg = compose("base", overrides=overrides)
    # The evaluation's exact-replay settings, without any randomisation (a PD check, not a policy).
    cfg = apply_exact_replay(cfg, events="none")
    # One env per clip: read the clip count from a 1-env build's motion library.
    probe = create_manager_env(cfg, num_envs=1)
    num_clips = probe.command().motion.num_total_clips
    probe.close()
    env = create_manager_env(cfg, num_envs=num_clips)
    cmd = env.command()
    all_envs = torch.arange(num_clips, device=env.device)
    cmd.start_clips(all_envs, all_envs, torch.zeros_like(all_envs))
    lengths = cmd.clip_num_frames.clone()
    alive = torch.ones(num_clips, dtype=torch.bool, device=env.device)
    steps = torch.zeros(num_clips, dtype=torch.long, device=env.device)
    error_sum = torch.zeros(num_clips, device=env.device)
    console = Console()
    with console.status("replaying...") as status:
        for step in range(int(lengths.max()) - 1):
            _, _, done, extras = env.step(env.reference_actions())
            error_sum += torch.where(alive, cmd.metrics["error_body_pos"], 0.0)
            steps += alive.long()
            alive &= ~done
            status.update(f"replaying: step {step + 1}/{int(lengths.max()) - 1}, {int(alive.sum())} clips running")
            if not alive.any():
                break
    table = Table(title="PD replay of the reference joints (no policy)")
    table.add_column("clip", no_wrap=True)  # whole clip names
    for column in ("frames", "tracked", "mean body error (mm)"):
        table.add_column(column, justify="right")
    keys = [cmd.motion.keys[i] for i in cmd.motion.resident_ids.tolist()]
    for i, key in enumerate(keys):
        share = float(steps[i]) / max(1, int(lengths[i]) - 1)
        mm = 1000.0 * float(error_sum[i]) / max(1, int(steps[i]))
        table.add_row(key, str(int(lengths[i])), f"{100 * min(share, 1.0):.0f} %", f"{mm:.0f}")
    console.print(table)
    env.close()


if __name__ == "__main__":
    main(sys.argv[1:])
