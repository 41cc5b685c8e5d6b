"""N episodes of any policy on any batched env: mean/std return, success rate, JSON-ready.

The env is a gymnasium VectorEnv whose step resets finished envs in the same step (SAME_STEP:
our tasks' `ManagerVectorEnv`, or `gymnasium.make_vec(..., vector_kwargs={"autoreset_mode":
SAME_STEP})`). Each env plays its share of the episodes (env i plays ceil or floor of N / n), so
envs whose episodes end early do not crowd out the long ones (a bias toward failures).

Success criteria (`success=`):
    time_out      the episode ended by truncation (time limit), not by a termination (default)
    return>=X     the episode's return reached X
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np

SUCCESS_HELP = "use 'time_out' or 'return>=<number>'"


@dataclass
class EpisodeResults:
    num_episodes: int
    deterministic: bool
    success_criterion: str
    mean_return: float
    std_return: float
    success_rate: float
    mean_length: float
    returns: list[float] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def success_function(criterion: str) -> Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]:
    """-> f(returns, terminated, truncated) -> success flags, for the episodes that just ended."""
    criterion = criterion.replace(" ", "")
    if criterion == "time_out":
        return lambda returns, terminated, truncated: truncated & ~terminated
    if criterion.startswith("return>="):
        try:
            threshold = float(criterion[len("return>=") :])
        except ValueError:
            raise ValueError(f"success criterion {criterion!r}: {SUCCESS_HELP}") from None
        return lambda returns, terminated, truncated: returns >= threshold
    raise ValueError(f"success criterion {criterion!r}: {SUCCESS_HELP}")


def run_episodes(
    envs,
    policy: Callable,
    num_episodes: int,
    deterministic: bool = True,
    success: str = "time_out",
    seed: int | None = None,
    max_steps: int = 1_000_000,
) -> EpisodeResults:
    """`policy(obs, deterministic) -> actions` on the batched (numpy) observations."""
    if num_episodes < 1:
        raise ValueError(f"num_episodes must be >= 1, got {num_episodes}")
    is_success = success_function(success)
    n = envs.num_envs
    targets = np.array([(num_episodes + i) // n for i in range(n)])  # sums to num_episodes
    counts = np.zeros(n, dtype=int)
    running_return = np.zeros(n)
    running_length = np.zeros(n, dtype=int)
    returns, lengths, successes = [], [], []
    obs, _ = envs.reset(seed=seed)
    # A policy with memory (a recurrent actor) exposes reset(finished): zeroed where episodes end.
    forget = getattr(policy, "reset", lambda finished: None)
    forget(None)
    for _ in range(max_steps):
        if (counts >= targets).all():
            break
        obs, reward, terminated, truncated, _ = envs.step(policy(obs, deterministic))
        running_return += np.asarray(reward, dtype=np.float64).reshape(n)
        running_length += 1
        terminated = np.asarray(terminated, dtype=bool).reshape(n)
        truncated = np.asarray(truncated, dtype=bool).reshape(n)
        done = (terminated | truncated) & (counts < targets)  # envs past their share are ignored
        if done.any():
            ended = running_return[done]
            returns.extend(ended.tolist())
            lengths.extend(running_length[done].tolist())
            successes.extend(is_success(ended, terminated[done], truncated[done]).tolist())
            counts += done
        finished = terminated | truncated
        forget(finished)
        running_return[finished] = 0.0
        running_length[finished] = 0
    else:
        raise RuntimeError(
            f"{len(returns)} of {num_episodes} episodes ended within {max_steps} steps"
        )
    values = np.asarray(returns)
    return EpisodeResults(
        num_episodes=len(returns),
        deterministic=bool(deterministic),
        success_criterion=success,
        mean_return=float(values.mean()),
        std_return=float(values.std()),
        success_rate=float(np.mean(successes)),
        mean_length=float(np.mean(lengths)),
        returns=[float(r) for r in returns],
        lengths=[int(x) for x in lengths],
    )


def summary_line(results: EpisodeResults) -> str:
    mode = "deterministic" if results.deterministic else "stochastic"
    return (
        f"{results.num_episodes} episodes ({mode}): return {results.mean_return:.2f} "
        f"+- {results.std_return:.2f}, success {100 * results.success_rate:.0f}% "
        f"({results.success_criterion}), length {results.mean_length:.1f}"
    )
