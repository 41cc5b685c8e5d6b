"""Learning on a real mjlab task: our PPO trainer balances mjlab's cartpole.

The tracking demo cannot show learning inside a CPU test budget (see README), so this test runs
the same trainer, actor, critic and env wrapper on `Mjlab-Cartpole-Balance` with 4 s episodes
and checks that the completed-episode return clearly rises.
"""

from __future__ import annotations

import torch
from accelerate import Accelerator
from mjlab.envs import ManagerBasedRlEnv
from mjlab.tasks.cartpole.cartpole_env_cfg import cartpole_balance_env_cfg

from gear_sonic.envs.wrapper import ManagerEnvWrapper
from gear_sonic.trl.modules.actor_critic_modules import Actor, Critic
from gear_sonic.trl.modules.base_module import BaseModule
from gear_sonic.trl.trainer import PPOConfig, TRLPPOTrainer


class ReturnLog:
    def __init__(self):
        self.returns = []

    def on_iteration_end(self, trainer, iteration, metrics):
        self.returns.append(metrics["mean_reward"])


def test_ppo_learns_to_balance_mjlab_cartpole():
    torch.manual_seed(0)
    cfg = cartpole_balance_env_cfg()
    cfg.scene.num_envs = 64
    cfg.episode_length_s = 4.0
    cfg.seed = 0
    env = ManagerEnvWrapper(ManagerBasedRlEnv(cfg, device="cpu"))
    shapes = env.observation_shapes
    actor = Actor(BaseModule(["actor"], shapes, env.num_actions, hidden_dims=[64, 64], activation="elu"),
                  env.num_actions, init_std=1.0, std_min=0.05, std_max=2.0)
    critic = Critic(shapes, input_group="critic", hidden_dims=[64, 64], activation="elu")
    ppo = PPOConfig(num_steps_per_env=32, num_learning_epochs=5, num_mini_batches=4, actor_learning_rate=1e-3,
                    critic_learning_rate=1e-3, schedule="fixed", entropy_coef=0.0, max_grad_norm=1.0)
    log = ReturnLog()
    trainer = TRLPPOTrainer(env, actor, critic, ppo, Accelerator(cpu=True), callbacks=[log])
    trainer.train(40)
    env.close()
    finite = [r for r in log.returns if r == r]
    early, late = sum(finite[:5]) / 5, sum(finite[-5:]) / 5
    assert late > early * 1.3 and late - early > 0.5, (early, late, finite)
