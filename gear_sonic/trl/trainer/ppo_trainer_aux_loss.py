"""PPO plus the token-space auxiliary losses: loss = ppo + sum(coef * L_aux)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import torch
from accelerate import Accelerator
from torch import nn

from gear_sonic.trl.losses.bc_losses import TeacherActionBC
from gear_sonic.trl.losses.token_losses import AuxLossSet
from gear_sonic.trl.modules.universal_token_modules import TokenOutput
from gear_sonic.trl.trainer.ppo_config import PPOConfig
from gear_sonic.trl.trainer.ppo_trainer import TRLPPOTrainer
from gear_sonic.trl.trainer.rollout_storage import MiniBatch


class TRLAuxLossPPOTrainer(TRLPPOTrainer):
    """The aux losses read the TokenOutput of the same forward pass that scores the actions,
    so they cost no extra backbone call; each unweighted term is logged as `loss/<name>`. The
    optional BC loss pulls that pass's Gaussian mean, whatever the actor's backbone."""

    def __init__(
        self,
        env,
        actor: nn.Module,
        critic: nn.Module,
        cfg: PPOConfig,
        accelerator: Accelerator,
        aux_losses: AuxLossSet,
        callbacks: Iterable = (),
        experiment_dir: str | Path | None = None,
        logger: logging.Logger | None = None,
        bc_loss: TeacherActionBC | None = None,
    ):
        super().__init__(env, actor, critic, cfg, accelerator, callbacks, experiment_dir, logger)
        self.aux_losses = aux_losses
        self.bc_loss = bc_loss
        if bc_loss is not None:
            bc_loss.bind(env)

    def extra_losses(
        self, batch: MiniBatch, aux, action_mean: torch.Tensor
    ) -> tuple[torch.Tensor | float, dict]:
        total, terms = 0.0, {}
        if self.aux_losses.terms:
            if not isinstance(aux, TokenOutput):
                raise ValueError(
                    "aux losses need an actor backbone that returns a TokenOutput "
                    f"(e.g. UniversalTokenModule); got {type(aux).__name__} from Actor.evaluate"
                )
            total, terms = self.aux_losses(aux, batch.obs)
        if self.bc_loss is not None:
            # The Gaussian mean of any actor (token model or plain MLP) is what BC pulls.
            weighted, raw = self.bc_loss(action_mean, batch.obs, self.iteration)
            total = total + weighted
            terms = {**terms, "teacher_bc": raw}
        return total, terms
