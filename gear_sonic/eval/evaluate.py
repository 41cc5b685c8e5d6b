"""Play every dataset clip once from frame 0 with the deterministic policy and score tracking.

`evaluate(cfg, state, where, num_envs)` builds the env with the exact-replay settings
(config/eval_overrides/exact_replay.yaml: eval terminations, no reset noise, train-only events
off, every clip resident), loads the actor from an already-loaded checkpoint dict and runs clips
in rounds of `num_envs`. Per step it records reference and robot tracked-body positions until
each env's clip ends or it terminates; metrics come from `gear_sonic.eval.metrics`.
`evaluate_checkpoint(cfg, path, ...)` loads the file first (tests, scripts).
"""

from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import DictConfig

from gear_sonic.checkpoint import load_checkpoint, load_module_state, require_keys
from gear_sonic.eval.exact_replay import apply_exact_replay
from gear_sonic.eval.metrics import aggregate, body_groups, clip_metrics, units

ENCODERS = ("g1", "teleop", "smpl")


def load_actor_checkpoint(path: str | Path) -> dict:
    """The checkpoint dict (weights_only load), checked to hold actor weights."""
    state = load_checkpoint(path)
    require_keys(state, ("actor",), path)
    return state


def build_eval_env_and_actor(cfg: DictConfig, state: dict, where: str, num_envs: int,
                             device: str = "cpu"):
    """-> (env, actor in eval mode) for a training config and a loaded checkpoint dict."""
    cfg = apply_exact_replay(cfg)  # also drops the train_only events
    cfg.num_envs = int(num_envs)
    return env_with_actor(cfg, state, where, num_envs, device)


def env_with_actor(cfg: DictConfig, state: dict, where: str, num_envs: int, device: str,
                   seed: int | None = None):
    """-> (env, the checkpoint's actor in eval mode on the env's device) for a ready eval config;
    the env is closed again when the actor does not fit it."""
    from gear_sonic.envs import create_manager_env
    from gear_sonic.trl.builders import build_policy_and_value

    env = create_manager_env(cfg, device=device, num_envs=int(num_envs), seed=seed)
    try:
        actor, _ = build_policy_and_value(cfg, env.observation_shapes, env.num_actions)
        load_module_state(actor, state["actor"], f"{where}: actor")
    except Exception:
        env.close()
        raise
    return env, actor.to(env.device).eval()


def force_encoder(cmd, env_ids: torch.Tensor, name: str) -> None:
    """Route the given envs through one encoder by writing its one-hot into the mask."""
    if name not in cmd.encoder_names:
        raise ValueError(
            f"use_encoder={name}: this config's encoders are {list(cmd.encoder_names)}")
    column = cmd.encoder_names.index(name)
    cmd.encoder_mask[env_ids] = 0.0
    cmd.encoder_mask[env_ids, column] = 1.0


def begin_clips(env, slots: torch.Tensor, use_encoder: str | None = None) -> dict:
    """Put env i on frame 0 of resident clip slots[i], with fresh action and observation
    history and (optionally) one encoder forced; -> the first observation."""
    cmd = env.command()
    all_ids = torch.arange(env.num_envs, device=env.device)
    cmd.start_clips(all_ids, slots, torch.zeros_like(slots))
    env.episode_length_buf[:] = 0
    if use_encoder is not None:
        force_encoder(cmd, all_ids, use_encoder)
    # start_clips moved the robots: clear the last clip's action/history buffers, then observe.
    env.env.action_manager.reset(all_ids)
    env.env.observation_manager.reset(all_ids)
    return env.env.observation_manager.compute(update_history=True)


def evaluate_checkpoint(cfg: DictConfig, checkpoint_path: str | Path, num_envs: int,
                        **kwargs) -> dict:
    """`evaluate` on the checkpoint file at `checkpoint_path`."""
    state = load_actor_checkpoint(checkpoint_path)
    return evaluate(cfg, state, str(checkpoint_path), num_envs, **kwargs)


def evaluate(
    cfg: DictConfig,
    state: dict,
    where: str,
    num_envs: int,
    use_encoder: str | None = None,
    device: str = "cpu",
    record_masks: bool = False,
    run_once: bool = False,
) -> dict:
    """-> {"aggregate": {...}, "clips": [per-clip rows], "iteration": int, "step_dt": float, ...}.

    `state` is a loaded checkpoint dict (`where` names it in errors). `run_once=True` plays a
    single round (the first `num_envs` clips) instead of every clip: a quick look at a big
    dataset. `record_masks=True` also returns the encoder mask rows used each round (tests,
    debugging).
    """
    if use_encoder is not None and use_encoder not in ENCODERS:
        raise ValueError(f"use_encoder={use_encoder}: expected one of {list(ENCODERS)} or null")
    env, actor = build_eval_env_and_actor(cfg, state, where, num_envs, device)
    try:
        clips, masks = _play_all(env, actor, use_encoder, record_masks, run_once)
        cmd = env.command()
        names = list(cmd.body_names)
        groups = body_groups(names, names[cmd.anchor_index])
    finally:
        env.close()
    result = {
        "iteration": int(state.get("iteration", 0)),
        "step_dt": float(env.step_dt),
        "use_encoder": use_encoder,
        "run_once": run_once,
        "units": units(float(env.step_dt)),
        "body_groups": {g: [names[i] for i in idx] for g, idx in groups.items()},
        "aggregate": aggregate(clips),
        "clips": clips,
    }
    if record_masks:
        result["encoder_masks"] = masks
    return result


def _play_all(env, actor, use_encoder, record_masks, run_once=False):
    cmd = env.command()
    motion = cmd.motion
    num_clips = int(motion.num_clips)
    keys = [motion.keys[i] for i in motion.resident_ids.tolist()]
    if use_encoder == "smpl":
        missing = [keys[i] for i in range(num_clips) if not bool(motion.clip_has_smpl[i])]
        if missing:
            raise ValueError(f"use_encoder=smpl: clip {missing[0]!r} has no SMPL data "
                             f"({len(missing)} such clips)")
    clips, masks = [], []
    num_played = min(num_clips, env.num_envs) if run_once else num_clips
    for first in range(0, num_played, env.num_envs):
        slots = torch.arange(first, min(first + env.num_envs, num_played), device=env.device)
        rows, mask = _play_round(env, actor, slots, use_encoder)
        masks.append(mask)
        for slot, row in zip(slots.tolist(), rows):
            clips.append({"clip": keys[slot], **row})
    return clips, masks


@torch.no_grad()
def _play_round(env, actor, slots: torch.Tensor, use_encoder: str | None):
    cmd = env.command()
    n = len(slots)
    # Spare envs replay the round's first clip; their results are dropped.
    all_ids = torch.arange(env.num_envs, device=env.device)
    all_slots = torch.cat([slots, slots[:1].expand(env.num_envs - n)])
    obs = begin_clips(env, all_slots, use_encoder)
    mask = cmd.encoder_mask[:n].clone().cpu()
    frames = cmd.clip_num_frames[:n].clone()
    alive = torch.ones(n, dtype=torch.bool, device=env.device)
    failed = torch.zeros(n, dtype=torch.bool, device=env.device)
    reached = torch.zeros(n, dtype=torch.long, device=env.device)
    ref_traj = [cmd.ref_body_pos_w[:n].clone()]
    rob_traj = [cmd.robot_body_pos_w[:n].clone()]
    valid = [alive.clone()]
    for _ in range(int(frames.max()) - 1):
        actions = actor.act_inference(obs)
        obs, _, done, extras = env.step(actions)
        terminated = extras["terminated"][:n]
        failed |= alive & terminated
        # A time-out at the clip end still reached the frame, but the env was reset inside step:
        # its post-step positions belong to a new episode, so only non-done envs are recorded.
        reached += (alive & ~terminated).long()
        kept = alive & ~done[:n]
        ref_traj.append(cmd.ref_body_pos_w[:n].clone())
        rob_traj.append(cmd.robot_body_pos_w[:n].clone())
        valid.append(kept)
        alive = kept & ~cmd.clip_ended[:n]
        if use_encoder is not None:
            force_encoder(cmd, all_ids, use_encoder)  # auto-resets resample the mask
        if not alive.any():
            break
    ref = torch.stack(ref_traj).cpu()  # (T, n, B, 3)
    rob = torch.stack(rob_traj).cpu()
    valid = torch.stack(valid).cpu()
    rows = []
    for i in range(n):
        length = min(int(reached[i]) + 1, int(frames[i]))  # frame 0 plus each step survived
        total = int(frames[i])
        success = not bool(failed[i]) and length >= total
        row = {"frames": total, "frames_reached": length, "success": success,
               "progress": length / max(1, total)}
        keep = valid[:, i]
        row.update(clip_metrics(ref[keep, i], rob[keep, i], cmd.body_names, cmd.anchor_index))
        rows.append(row)
    return rows, mask
