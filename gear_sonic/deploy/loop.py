"""The deploy loop: metadata + ONNX policy + MuJoCo + command source, stepped at control rate.

Per control step: observations from MjData and the command (the reference at the current frame
of a motion clip, or a velocity command) -> ONNX -> clipped action -> joint targets held for
`decimation` physics steps -> next step. A tracking policy starts on the clip's first frame
(like evaluation) and stops at its last frame, at --steps, or when the robot falls
(evaluation's termination thresholds, config tracking/eval). A velocity-command policy
(metadata command kind "velocity") and a goal-reaching one (kind "goal", go2_balance: --goal x,y
metres from the start, world frame) start at rest in their default pose and run --steps; they
fall when the base tilts past the export's bad_orientation limit. A recurrent policy's state
(metadata `recurrent_state`) starts at zeros and is carried from step to step.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnxruntime as ort

from gear_sonic.deploy.commands import CommandSchedule
from gear_sonic.deploy.contract import check_session_inputs, load_contract
from gear_sonic.deploy.errors import DeployInputError
from gear_sonic.deploy.motion import load_motion
from gear_sonic.deploy.observations import ObsContext, ObservationBuilder
from gear_sonic.deploy.sim import MujocoRobot, load_model
from gear_sonic.utils.np_quat import quat_apply_inverse, quat_conjugate, quat_log, quat_mul

# Evaluation's terminations (config/manager_env/terminations/tracking/eval.yaml).
ANCHOR_HEIGHT_ERROR_M = 0.25
ANCHOR_ORI_ERROR_RAD2 = 1.0
END_EFFECTOR_HEIGHT_ERROR_M = 0.25
END_EFFECTORS = ("left_ankle_roll_link", "right_ankle_roll_link",
                 "left_wrist_yaw_link", "right_wrist_yaw_link")
# A velocity-command policy: mjlab's bad_orientation default when the export names none.
DEFAULT_TILT_LIMIT_RAD = 1.2217
VELOCITY_STEPS = 500  # 10 s at 50 Hz when --steps is not given
POLICY_STEM = "policy"  # a plain actor's model (gear_sonic/eval/onnx_export.py)


@dataclass
class RunResult:
    clip: str
    steps: int
    frames: int  # frames in the clip
    frames_reached: int
    fell: bool
    mpjpe_g_mm: float  # NaN for a velocity-command policy
    sim_time_s: float
    wall_time_s: float
    policy_latency_ms: np.ndarray = field(repr=False)  # onnxruntime run per step
    step_ms: np.ndarray = field(repr=False)  # observations + policy + physics per step
    # Velocity policies: mean |planar velocity - command| (m/s) and |yaw rate - command| (rad/s);
    # goal policies: goal_distance_m, the base's distance to the goal at the end
    velocity_error: dict = field(default_factory=dict)

    @property
    def progress(self) -> float:
        return self.frames_reached / max(1, self.frames)

    @property
    def real_time_factor(self) -> float:
        return self.sim_time_s / max(self.wall_time_s, 1e-9)

    def latency_percentile(self, q: float) -> float:
        return _percentile(self.policy_latency_ms, q)

    def step_line(self) -> str:
        return (f"control step p50 {_percentile(self.step_ms, 50):.3f} ms, "
                f"p99 {_percentile(self.step_ms, 99):.3f} ms "
                "(observations + policy + physics)")

    def summary_line(self) -> str:
        return (f"latency p50 {self.latency_percentile(50):.3f} ms, "
                f"p99 {self.latency_percentile(99):.3f} ms, "
                f"real-time factor {self.real_time_factor:.2f}")


class DeployLoop:
    def __init__(self, deploy_dir: str | Path, motion_file: str | Path | None = None,
                 encoder: str = "g1", model_file: str | Path | None = None, threads: int = 1,
                 commands: CommandSchedule | None = None,
                 goal: tuple[float, float] | None = None):
        self.contract = load_contract(deploy_dir)
        kind = self.contract.command.get("kind")
        self.is_velocity, self.is_goal = kind == "velocity", kind == "goal"
        self.goal_offset = None if goal is None else np.asarray(goal, np.float64).reshape(2)
        self.goal_w: np.ndarray | None = None  # the goal in the world, set by start()
        self._check_command_source(motion_file, commands)
        stem = POLICY_STEM if self.is_velocity or self.is_goal else f"policy_{encoder}"
        entry = self.contract.model_entry(stem)
        onnx_path = self.contract.directory / entry["file"]
        if not onnx_path.is_file():
            raise DeployInputError(str(onnx_path), "missing", "export the ONNX models again")
        self.encoder = encoder
        self.robot = MujocoRobot(load_model(self.contract, model_file), self.contract)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(onnx_path), options,
                                                providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own types for unreadable models
            raise DeployInputError(str(onnx_path), f"cannot be loaded by onnxruntime "
                                   f"({type(exc).__name__})", "export the ONNX models again") \
                from exc
        # A recurrent policy's memory: metadata names its input and output (onnx_recurrent.py).
        self.memory = RecurrentMemory.from_entry(entry, str(self.contract.directory /
                                                           "metadata.json"))
        inputs = [i for i in self.session.get_inputs()
                  if self.memory is None or i.name != self.memory.input_name]
        check_session_inputs(self.contract, onnx_path, inputs)
        self.builder = ObservationBuilder(self.contract, [i.name for i in inputs])
        command = self.contract.command
        prefix = self.contract.model_name_prefix
        self.commands = commands
        self.motion = None if self.is_velocity or self.is_goal else load_motion(
            motion_file, self.contract.joint_names, command["body_names"],
            fps=1.0 / self.contract.control_dt, model=self.robot.model,
            model_body_names=[prefix + n for n in command["body_names"]],
        )
        terminations = {t.get("func"): t.get("params", {})
                        for t in self.contract.raw.get("terminations", {}).values()}
        self.tilt_limit = float(terminations.get("bad_orientation", {}).get(
            "limit_angle", DEFAULT_TILT_LIMIT_RAD))
        # mjlab's illegal_contact on the base (go2: base_contact): the root body on the ground.
        self.base_contact_ends = "illegal_contact" in terminations
        names = self.contract.encoder_names
        self.encoder_index = np.array([float(n == encoder) for n in names], np.float32)
        self.last_action = np.zeros(len(self.contract.joint_names), np.float32)
        self.frame = 0

    def _check_command_source(self, motion_file, commands) -> None:
        where = str(self.contract.directory / "metadata.json")
        if self.is_goal:
            if self.goal_offset is None:
                raise DeployInputError(where, "this policy walks to a goal", "pass --goal x,y")
            return
        if self.is_velocity and commands is None:
            raise DeployInputError(where, "this policy follows velocity commands",
                                   "pass --command vx,vy,wz or --commands FILE")
        if not self.is_velocity and motion_file is None:
            raise DeployInputError(where, "this policy tracks a motion clip",
                                   "pass --motion CLIP.npz")

    # ---------------------------------------------------------------- pieces, also for tests
    def start(self) -> None:
        """Robot on the clip's first frame (or at rest in the default pose), fresh history
        and zero last action."""
        self.frame = 0
        self.last_action[:] = 0.0
        self.builder.reset()
        if self.memory is not None:
            self.memory.reset()
        if self.motion is None:
            self.robot.reset_default()
        else:
            self.robot.reset_to(self.motion, 0)
        if self.goal_offset is not None:
            self.goal_w = self.robot.view.root_pos_w[:2] + self.goal_offset

    def velocity_command(self) -> np.ndarray | None:
        if self.commands is None:
            return None
        return self.commands.at(self.frame * self.contract.control_dt)

    def context(self) -> ObsContext:
        return ObsContext(robot=self.robot.view, motion=self.motion, frame=self.frame,
                          last_action=self.last_action, contract=self.contract,
                          encoder_index=self.encoder_index,
                          velocity_command=self.velocity_command(), goal_w=self.goal_w)

    def observe(self) -> dict[str, np.ndarray]:
        return self.builder.compute(self.context())

    def act(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """One policy step on observations from `observe`: the action (A,); a recurrent
        policy reads its memory and keeps the state it returns for the next step."""
        if self.memory is None:
            return self.session.run(None, feeds)[0][0]
        outputs = self.session.run(None, {**feeds, **self.memory.feed()})
        named = dict(zip((o.name for o in self.session.get_outputs()), outputs))
        self.memory.update(named)
        return named["actions"][0]

    def joint_targets(self, action: np.ndarray) -> np.ndarray:
        relative = self.contract.reference_relative_actions and self.motion is not None
        origin = self.motion.joint_pos[self.frame] if relative else \
            self.contract.default_joint_pos
        return origin + self.contract.action_scale * action

    def apply(self, raw_action: np.ndarray) -> None:
        """Clip like the training wrapper, step physics, advance the reference frame."""
        clip = self.contract.action_clip
        action = np.clip(raw_action, -clip, clip) if clip is not None else raw_action
        self.robot.step(self.joint_targets(action))
        self.last_action[:] = action
        self.frame = self.frame + 1 if self.motion is None else \
            min(self.frame + 1, self.motion.num_frames - 1)

    def fell(self, frame: int | None = None) -> bool:
        """Evaluation's termination test, on what the env's terminations see: body poses one
        physics step old and the reference frame of the step's start (the env advances its
        command after terminations), so `run` passes that frame. A velocity policy falls when
        its base tilts past the limit or (when the export ends episodes on it) touches the
        ground."""
        if self.motion is None:
            up = quat_apply_inverse(self.robot.stale_body_quat[0], np.array([0.0, 0.0, 1.0]))
            tilted = bool(np.arccos(np.clip(up[2], -1.0, 1.0)) > self.tilt_limit)
            return tilted or (self.base_contact_ends and self._base_on_ground())
        motion, a = self.motion, self.robot.view.anchor_index
        f = self.frame if frame is None else frame
        body_pos, body_quat = self.robot.stale_body_pos, self.robot.stale_body_quat
        if abs(motion.body_pos_w[f, a, 2] - body_pos[a, 2]) > ANCHOR_HEIGHT_ERROR_M:
            return True
        delta = quat_mul(motion.body_quat_w[f, a].astype(np.float64),
                         quat_conjugate(body_quat[a]))
        if float(np.sum(quat_log(delta) ** 2)) > ANCHOR_ORI_ERROR_RAD2:
            return True
        bodies = self.contract.command["body_names"]
        ids = [bodies.index(n) for n in END_EFFECTORS if n in bodies]
        height_error = np.abs(motion.body_pos_w[f, ids, 2] - body_pos[ids, 2])
        return bool((height_error > END_EFFECTOR_HEIGHT_ERROR_M).any())

    # ---------------------------------------------------------------- the loop
    def run(self, steps: int | None = None, on_step: Callable[[DeployLoop], None] | None = None,
            stop_on_fall: bool = True) -> RunResult:
        self.start()
        if self.motion is None:
            last_frame = np.inf
            steps = VELOCITY_STEPS if steps is None else int(steps)
        else:
            last_frame = self.motion.num_frames - 1
            steps = last_frame if steps is None else int(steps)
        # Scored like evaluation (gear_sonic/eval/evaluate.py): the step that falls is neither
        # reached nor in the tracking error.
        latencies, step_ms = [], []
        errors = [] if self.motion is None else [self._tracking_error()]
        fell = False
        done = reached = 0
        begin = time.perf_counter()
        while done < steps and self.frame < last_frame:
            start = time.perf_counter()
            feeds = self.observe()
            tick = time.perf_counter()
            action = self.act(feeds)
            latencies.append((time.perf_counter() - tick) * 1e3)
            frame = self.frame
            self.apply(action)
            step_ms.append((time.perf_counter() - start) * 1e3)
            done += 1
            if on_step is not None:
                on_step(self)
            if not fell and self.fell(frame):
                fell = True
                if stop_on_fall:
                    break
            if not fell:
                reached += 1
                if self.frame < last_frame:  # the clip end resets the env before it is scored
                    errors.append(self._tracking_error())
        wall = time.perf_counter() - begin
        velocity = self.motion is None and not self.is_goal
        errors = np.asarray(errors, np.float64).reshape(len(errors), -1)
        return RunResult(
            clip="goal" if self.is_goal else "velocity" if velocity else self.motion.name,
            steps=done, frames=steps if self.motion is None else self.motion.num_frames,
            frames_reached=reached + 1, fell=fell,
            mpjpe_g_mm=float("nan") if self.motion is None else float(np.mean(errors) * 1e3),
            sim_time_s=done * self.contract.control_dt, wall_time_s=wall,
            policy_latency_ms=np.asarray(latencies), step_ms=np.asarray(step_ms),
            velocity_error=({"lin_vel_error": float(np.mean(errors[:, 0])),
                             "yaw_rate_error": float(np.mean(errors[:, 1]))}
                            if velocity and len(errors) else
                            {"goal_distance_m": float(errors[-1, 0])}
                            if self.is_goal and len(errors) else {}),
        )

    def _base_on_ground(self) -> bool:
        model, data = self.robot.model, self.robot.data
        root = self.robot.view.root_body
        for contact in data.contact[:data.ncon]:
            bodies = model.geom_bodyid[[contact.geom1, contact.geom2]]
            if root in bodies and (model.body_rootid[bodies] != root).any():
                return True
        return False

    def _tracking_error(self):
        """Tracked-body position error (m), for a velocity policy (planar velocity error
        m/s, yaw-rate error rad/s) against the command of the step just played, for a goal
        policy the base's planar distance to the goal (m)."""
        view = self.robot.view
        if self.is_goal:
            return float(np.linalg.norm(self.goal_w - view.root_pos_w[:2]))
        if self.motion is None:
            command = self.commands.at(max(self.frame - 1, 0) * self.contract.control_dt)
            lin = quat_apply_inverse(view.root_quat_w, view.root_lin_vel_w)
            yaw = quat_apply_inverse(view.root_quat_w, view.root_ang_vel_w)[2]
            return (float(np.linalg.norm(lin[:2] - command[:2])), abs(float(yaw - command[2])))
        ref = self.motion.body_pos_w[self.frame]
        return float(np.linalg.norm(ref - view.body_pos_w, axis=-1).mean())


class RecurrentMemory:
    """The state a recurrent policy carries between control steps: zeros at the start of an
    episode, then each step's `state_out` becomes the next step's `state_in`."""

    def __init__(self, input_name: str, output_name: str, shape: list[int]):
        self.input_name, self.output_name = input_name, output_name
        self.shape = tuple(1 if d == -1 else int(d) for d in shape)  # one robot: batch 1
        self.state = np.zeros(self.shape, np.float32)

    @classmethod
    def from_entry(cls, entry: dict, where: str) -> RecurrentMemory | None:
        spec = entry.get("recurrent_state")
        if spec is None:
            return None
        try:
            return cls(str(spec["input"]), str(spec["output"]), list(spec["shape"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise DeployInputError(where, f"models.{entry.get('file')}.recurrent_state is "
                                   f"malformed ({exc!r})", "re-export the ONNX model and "
                                   "metadata.json together") from exc

    def reset(self) -> None:
        self.state = np.zeros(self.shape, np.float32)

    def feed(self) -> dict[str, np.ndarray]:
        return {self.input_name: self.state}

    def update(self, outputs: dict[str, np.ndarray]) -> None:
        self.state = np.asarray(outputs[self.output_name], np.float32)


def _percentile(values: np.ndarray, q: float) -> float:
    return float(np.percentile(values, q)) if len(values) else 0.0
