"""Policy networks and token aux losses on fake observations (CPU, small sizes)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch.distributions import Normal

from gear_sonic.trl.losses.token_losses import AUX_LOSSES, AuxLossSet, latent_distance
from gear_sonic.trl.modules.actor_critic_modules import Actor, Critic
from gear_sonic.trl.modules.base_module import BaseModule
from gear_sonic.trl.modules.normalization import RunningMeanStd
from gear_sonic.trl.modules.universal_token_modules import (
    TokenOutput,
    UniversalTokenModule,
    fsq_usage_metrics,
)

CONFIG_DIR = Path(__file__).resolve().parents[1] / "config"
NUM_ACTIONS = 29
LEVELS = [8, 5, 5, 5]
TOKENIZER_SHAPES = {
    "encoder_index": (3,),
    "command_multi_future_nonflat": (10, 58),
    "motion_anchor_ori_b_mf_nonflat": (10, 6),
    "command_multi_future_lower_body": (240,),
    "vr_3point_local_target": (9,),
    "vr_3point_local_orn_target": (12,),
    "motion_anchor_ori_b": (6,),
    "smpl_joints_multi_future_local_nonflat": (10, 72),
    "smpl_root_ori_b_multi_future": (10, 6),
    "joint_pos_multi_future_wrist_for_smpl": (10, 6),
}
OBS_SHAPES = {"actor_obs": (930,), "critic_obs": (1645,), "tokenizer_obs": TOKENIZER_SHAPES}
ENCODERS = {
    "g1": {
        "input_terms": ["command_multi_future_nonflat", "motion_anchor_ori_b_mf_nonflat"],
        "num_input_temporal_dims": 10,
        "hidden_dims": [32],
        "activation": "silu",
    },
    "teleop": {
        "input_terms": [
            "command_multi_future_lower_body",
            "vr_3point_local_target",
            "vr_3point_local_orn_target",
            "motion_anchor_ori_b",
        ],
        "hidden_dims": [32],
        "activation": "silu",
    },
    "smpl": {
        "input_terms": [
            "smpl_joints_multi_future_local_nonflat",
            "smpl_root_ori_b_multi_future",
            "joint_pos_multi_future_wrist_for_smpl",
        ],
        "num_input_temporal_dims": 10,
        "hidden_dims": [32],
        "activation": "silu",
    },
}
DECODERS = {
    "g1_dyn": {"input_terms": ["tokens", "actor_obs"], "hidden_dims": [32], "activation": "elu"},
    "g1_kin": {"input_terms": ["tokens"], "hidden_dims": [32], "activation": "elu"},
}
# Rows: g1 only, teleop only, smpl+g1, smpl+g1+teleop, g1+teleop, none active.
ENCODER_INDEX = [[1, 0, 0], [0, 1, 0], [1, 0, 1], [1, 1, 1], [1, 1, 0], [0, 0, 0]]


def make_obs(encoder_index=ENCODER_INDEX, seed: int = 0) -> dict:
    gen = torch.Generator().manual_seed(seed)
    index = torch.tensor(encoder_index, dtype=torch.float)
    num = index.shape[0]
    tokenizer = {k: torch.randn(num, *s, generator=gen) for k, s in TOKENIZER_SHAPES.items()}
    tokenizer["encoder_index"] = index
    return {
        "actor_obs": torch.randn(num, 930, generator=gen),
        "critic_obs": torch.randn(num, 1645, generator=gen),
        "tokenizer_obs": tokenizer,
    }


def make_module(**overrides) -> UniversalTokenModule:
    torch.manual_seed(0)
    kwargs = dict(
        obs_shapes=OBS_SHAPES,
        encoders=ENCODERS,
        decoders=DECODERS,
        fsq_levels=LEVELS,
        num_tokens=2,
        num_actions=NUM_ACTIONS,
    )
    kwargs.update(overrides)
    return UniversalTokenModule(**kwargs)


def rows(mask: torch.Tensor) -> list[int]:
    return mask.nonzero().flatten().tolist()


# ---------------------------------------------------------------- building blocks
def test_base_module_joins_terms_per_frame():
    shapes = {"a": (3, 2), "b": (3, 1)}
    module = BaseModule(
        ["a", "b"], shapes, output_dim=4, hidden_dims=[8],
        num_input_temporal_dims=3, num_output_temporal_dims=2,
    )
    a = torch.arange(6.0).reshape(1, 3, 2)
    b = torch.tensor([[[10.0], [20.0], [30.0]]])
    joined = module.concat_terms({"a": a, "b": b})
    assert joined.tolist() == [[0, 1, 10, 2, 3, 20, 4, 5, 30]]
    assert module({"a": a, "b": b}).shape == (1, 2, 4)


@pytest.mark.parametrize("rnn_type", ["gru", "lstm"])
def test_base_module_recurrent_passes_hidden_state(rnn_type):
    module = BaseModule(
        ["x"], {"x": (5,)}, output_dim=3, hidden_dims=[8], rnn_type=rnn_type, rnn_hidden=6
    )
    out, hidden = module({"x": torch.randn(4, 5)})
    assert out.shape == (4, 3)
    out2, _ = module({"x": torch.randn(4, 5)}, hidden)
    seq_out, _ = module({"x": torch.randn(7, 4, 5)})
    assert out2.shape == (4, 3) and seq_out.shape == (7, 4, 3)


# ---------------------------------------------------------------- FSQ
def test_fsq_codes_on_level_grid_and_straight_through_gradient():
    module = make_module()
    latent = torch.randn(64, 2, len(LEVELS), requires_grad=True)
    tokens, codes = module.quantize(latent)
    levels = torch.tensor(LEVELS)
    half = levels // 2
    assert (codes >= 0).all() and (codes < levels).all()
    assert torch.allclose(tokens, (codes - half) / half)
    tokens.sum().backward()
    assert (latent.grad > 0).all()  # rounding passes the (monotone) bound's gradient through

    out = module(make_obs())
    out.tokens.square().sum().backward()
    for name in ("g1", "teleop", "smpl"):
        assert module.encoders[name].mlp[0].weight.grad.abs().sum() > 0


def test_fsq_usage_metrics():
    codes = torch.stack([torch.randint(0, level, (4000, 2)) for level in LEVELS], dim=-1)
    uniform = fsq_usage_metrics(codes, LEVELS)
    assert uniform["policy/fsq_mean_dim_usage"] == 1.0
    assert uniform["policy/fsq_mean_dim_perplexity"] > 0.95 * sum(LEVELS) / len(LEVELS)
    constant = fsq_usage_metrics(torch.zeros_like(codes), LEVELS)
    assert constant["policy/fsq_mean_dim_levels_used"] == 1.0
    assert constant["policy/fsq_mean_dim_perplexity"] == pytest.approx(1.0)
    assert constant["policy/fsq_mean_dim_usage"] == pytest.approx(sum(1 / lv for lv in LEVELS) / 4)


# ---------------------------------------------------------------- routing
def test_each_encoder_runs_only_on_its_rows():
    module = make_module()
    batch_sizes = {name: [] for name in module.encoders}
    for name, encoder in module.encoders.items():
        encoder.register_forward_hook(
            lambda m, args, out, n=name: batch_sizes[n].append(out.shape[0])
        )
    out = module(make_obs(), compute_aux=False)
    # g1 also covers the row where nothing is active (the fallback).
    assert batch_sizes == {"g1": [5], "teleop": [3], "smpl": [2]}
    assert rows(out.latent_masks["g1"]) == [0, 2, 3, 4, 5]
    assert rows(out.latent_masks["teleop"]) == [1, 3, 4]
    assert rows(out.latent_masks["smpl"]) == [2, 3]
    assert out.latents["smpl"][[0, 1, 4, 5]].abs().sum() == 0

    batch_sizes = {name: [] for name in module.encoders}
    module(make_obs())  # training pass: the g1 encoder re-encodes the two smpl rows
    assert batch_sizes["g1"] == [5, 2]


def test_priority_smpl_over_teleop_over_g1():
    module = make_module()
    out = module(make_obs())
    expected_driver = ["g1", "teleop", "smpl", "smpl", "teleop", "g1"]
    for row, name in enumerate(expected_driver):
        tokens, _ = module.quantize(out.latents[name][row : row + 1])
        assert torch.equal(out.tokens[row : row + 1], tokens), (row, name)


# ---------------------------------------------------------------- residuals and external tokens
def test_residual_modes():
    obs = make_obs()
    residual = 0.3 * torch.randn(len(ENCODER_INDEX), 2, len(LEVELS))
    post = make_module(residual_mode="post_quantization")
    plain = post(obs)
    assert torch.allclose(post(obs, residual=residual).tokens, plain.tokens + residual)
    assert torch.equal(post(obs, residual=residual).codes, plain.codes)

    pre = make_module(residual_mode="pre_quantization")
    driving = pre.driving_latent(plain.latents, plain.latent_masks)
    expected, _ = pre.quantize(driving + residual)
    assert torch.equal(pre(obs, residual=residual.flatten(1)).tokens, expected)

    replace = make_module(residual_mode="pre_quantization_replace")
    expected, _ = replace.quantize(residual)
    assert torch.equal(replace(obs, residual=residual).tokens, expected)
    assert torch.equal(replace(make_obs(seed=1), residual=residual).tokens, expected)


def test_external_tokens_bypass_encoders():
    module = make_module()
    calls = []
    for encoder in module.encoders.values():
        encoder.register_forward_hook(lambda *args: calls.append(1))
    obs = make_obs()
    tokens = torch.randn(len(ENCODER_INDEX), 2 * len(LEVELS))
    out = module({"actor_obs": obs["actor_obs"]}, external_tokens=tokens)
    assert calls == [] and out.latents == {} and out.codes is None
    decoder_obs = {"tokens": tokens.reshape(-1, 2, 4), "actor_obs": obs["actor_obs"]}
    expected = module.decoders["g1_dyn"](decoder_obs)
    assert torch.equal(out.action_mean, expected)


def test_freeze_by_name():
    module = make_module(freeze=["encoders", "g1_kin"])
    assert not any(p.requires_grad for p in module.encoders.parameters())
    assert not any(p.requires_grad for p in module.decoders["g1_kin"].parameters())
    assert all(p.requires_grad for p in module.decoders["g1_dyn"].parameters())
    module = make_module(freeze=["smpl", "quantizer"])
    assert not any(p.requires_grad for p in module.encoders["smpl"].parameters())
    assert all(p.requires_grad for p in module.encoders["g1"].parameters())
    with pytest.raises(ValueError, match="cannot freeze"):
        make_module(freeze=["g1_encoder"])


# ---------------------------------------------------------------- aux losses
PAIRS = {"g1_smpl_latent": ("g1", "smpl"), "g1_teleop_latent": ("g1", "teleop"),
         "teleop_smpl_latent": ("teleop", "smpl")}


def _loss_case(name: str, a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor):
    """A TokenOutput + obs on which loss `name` compares a with b on the rows of mask."""
    num = a.shape[0]
    all_rows = torch.ones(num, dtype=torch.bool)
    obs = {"tokenizer_obs": {"command_multi_future_nonflat": b}}
    fields = dict(action_mean=torch.zeros(num, NUM_ACTIONS), tokens=a, latents={}, latent_masks={},
                  codes=None, g1_recon=None, reencoded_g1_latent=None, reencoded_mask=None)
    if name == "g1_recon":
        fields["g1_recon"] = {"command_multi_future_nonflat": a}
    elif name == "reencoded_smpl_g1_latent":
        fields.update(latents={"g1": b}, latent_masks={"g1": all_rows}, reencoded_g1_latent=a,
                      reencoded_mask=mask)
    else:
        first, second = PAIRS[name]
        fields.update(latents={first: a, second: b}, latent_masks={first: mask, second: all_rows})
    return TokenOutput(**fields), obs


@pytest.mark.parametrize("kind", ["mse", "l1", "huber", "cosine"])
@pytest.mark.parametrize("name", sorted(AUX_LOSSES))
def test_aux_loss_zero_when_identical_positive_otherwise_zero_without_rows(name, kind):
    shape = (6, 10, 58) if name == "g1_recon" else (6, 2, 4)
    a = torch.randn(shape, requires_grad=True)
    b = torch.randn(shape)
    all_rows, no_rows = torch.ones(6, dtype=torch.bool), torch.zeros(6, dtype=torch.bool)
    loss_fn = AUX_LOSSES[name]

    assert loss_fn(*_loss_case(name, a, a.detach().clone(), all_rows), kind).abs() < 1e-6
    assert loss_fn(*_loss_case(name, a, b, all_rows), kind) > 1e-3
    if name != "g1_recon":  # the recon loss always uses every row
        empty = loss_fn(*_loss_case(name, a, b, no_rows), kind)
        assert empty == 0 and empty.requires_grad
        empty.backward()
        assert torch.isfinite(a.grad).all() and a.grad.abs().sum() == 0


def test_aux_loss_set_on_module_output():
    module = make_module()
    obs = make_obs()
    out = module(obs)
    coefs = {"g1_recon": 0.01, "g1_smpl_latent": 1.0, "g1_teleop_latent": 1.0,
             "teleop_smpl_latent": 1.0, "reencoded_smpl_g1_latent": 1.0}
    aux = AuxLossSet({name: {"coef": c, "loss_type": "mse"} for name, c in coefs.items()})
    total, losses = aux(out, obs)
    assert set(losses) == set(coefs)
    assert torch.allclose(total, sum(coefs[n] * losses[n] for n in coefs))
    assert rows(out.reencoded_mask) == [2, 3]
    total.backward()
    assert module.encoders["smpl"].mlp[0].weight.grad.abs().sum() > 0
    assert latent_distance(out.tokens, out.tokens, "mse").abs().max() == 0
    with pytest.raises(ValueError, match="unknown aux loss"):
        AuxLossSet({"g1_recon_typo": {"coef": 1.0}})


G1_TERMS = ("command_multi_future_nonflat", "motion_anchor_ori_b_mf_nonflat")


def test_g1_kin_reconstructs_joints_and_anchor_orientation():
    """SONIC's g1_kin: tokens -> 10 x (58 + 6), and g1_recon compares both parts."""
    module = make_module()
    obs = make_obs()
    out = module(obs)
    assert {t: tuple(r.shape) for t, r in out.g1_recon.items()} == {
        G1_TERMS[0]: (6, 10, 58), G1_TERMS[1]: (6, 10, 6)}
    head = [m for m in module.decoders["g1_kin"].modules() if isinstance(m, torch.nn.Linear)][-1]
    assert head.out_features == 10 * 64
    loss = AUX_LOSSES["g1_recon"]
    exact = {"tokenizer_obs": {t: out.g1_recon[t].detach() for t in G1_TERMS}}
    assert loss(out, exact, "mse") < 1e-12
    wrong_anchor = {"tokenizer_obs": dict(exact["tokenizer_obs"])}
    wrong_anchor["tokenizer_obs"][G1_TERMS[1]] = exact["tokenizer_obs"][G1_TERMS[1]] + 1.0
    assert torch.isclose(loss(out, wrong_anchor, "mse"), torch.tensor(6 / 64))  # 6 of 64 per frame
    loss(out, wrong_anchor, "mse").backward()
    assert head.weight.grad.abs().sum() > 0


def test_reencoding_feeds_the_reconstruction_not_the_true_anchor():
    module = make_module()
    obs = make_obs()
    out = module(obs)
    mask = out.reencoded_mask
    # By hand: the g1 encoder on both reconstructed parts, on the smpl+g1 rows.
    expected = module.encoders["g1"]({t: out.g1_recon[t][mask] for t in G1_TERMS})
    torch.testing.assert_close(out.reencoded_g1_latent[mask], expected)
    # The true anchor orientation must not leak in: changing it leaves the re-encoding alone
    # (smpl drives these rows' tokens, so g1_kin's output does not move either).
    obs["tokenizer_obs"][G1_TERMS[1]] = obs["tokenizer_obs"][G1_TERMS[1]] + 5.0
    moved = module(obs)
    torch.testing.assert_close(moved.reencoded_g1_latent, out.reencoded_g1_latent)
    assert not torch.allclose(moved.latents["g1"][mask], out.latents["g1"][mask])


def test_g1_kin_needs_per_frame_g1_inputs():
    encoders = {**ENCODERS, "g1": {**ENCODERS["g1"], "input_terms": ["motion_anchor_ori_b"]}}
    encoders["g1"].pop("num_input_temporal_dims")
    with pytest.raises(ValueError, match=r"g1_kin reconstructs.*motion_anchor_ori_b"):
        make_module(encoders=encoders)


# ---------------------------------------------------------------- actor and critic
def test_actor_std_clamp_and_distribution_consistency():
    actor = Actor(make_module(), NUM_ACTIONS, init_std=0.05, std_min=0.001, std_max=0.5)
    obs = make_obs()
    with torch.no_grad():
        actor.std[:10] = 10.0
        actor.std[10:20] = -1.0
    std = actor.action_std
    assert std.max() <= 0.5 and std.min() >= 0.001
    actions, log_prob = actor.act(obs)
    mean = actor.act_inference(obs)
    normal = Normal(mean, std.expand_as(mean))
    assert torch.allclose(log_prob, normal.log_prob(actions).sum(-1), atol=1e-4)
    assert torch.allclose(actor.log_prob(obs, actions), log_prob, atol=1e-4)
    assert torch.allclose(actor.entropy(obs), normal.entropy().sum(-1), atol=1e-4)
    new_log_prob, entropy, eval_mean, eval_std, aux = actor.evaluate(obs, actions)
    assert torch.allclose(new_log_prob, log_prob, atol=1e-4) and torch.allclose(eval_mean, mean)
    assert torch.allclose(entropy, actor.entropy(obs), atol=1e-4)
    assert eval_std.shape == mean.shape
    assert isinstance(aux, TokenOutput) and aux.g1_recon is not None


def test_actor_with_plain_mlp_backbone():
    backbone = BaseModule(["actor_obs"], OBS_SHAPES, NUM_ACTIONS, hidden_dims=[16])
    actor = Actor(backbone, NUM_ACTIONS)
    _, _, mean, _, aux = actor.evaluate(make_obs(), torch.zeros(6, NUM_ACTIONS))
    assert mean.shape == (6, NUM_ACTIONS) and aux is None


def test_running_mean_std_merges_batches_and_clips():
    rms = RunningMeanStd((3,), clip=5.0)
    data = torch.randn(1000, 3) * torch.tensor([1.0, 2.0, 0.5]) + torch.tensor([3.0, -1.0, 0.0])
    for chunk in data.split([1, 199, 300, 500]):
        rms.update(chunk)
    assert torch.allclose(rms.mean, data.mean(0), atol=1e-4)
    assert torch.allclose(rms.var, data.var(0, unbiased=False), atol=1e-4)
    assert rms.count.item() == 1000
    assert rms.normalize(torch.full((1, 3), 1e6)).max() == 5.0
    assert set(rms.state_dict()) == {"mean", "var", "count"}
    doubled = RunningMeanStd((3,))
    doubled.update(data, all_reduce_fn=lambda t: 2 * t)  # two identical "processes"
    assert doubled.count.item() == 2000 and torch.allclose(doubled.mean, rms.mean, atol=1e-4)


def test_critic_normalizer_updates_and_clips():
    critic = Critic(OBS_SHAPES, hidden_dims=[16], clip=5.0)
    obs = make_obs()
    obs["critic_obs"] = obs["critic_obs"] * 3 + 7
    assert critic(obs).shape == (6, 1)
    critic.update_normalizer(obs)
    assert torch.allclose(critic.normalizer.mean, obs["critic_obs"].mean(0), atol=1e-4)
    assert "normalizer.count" in critic.state_dict()
    assert critic.normalizer(obs["critic_obs"] * 1e3).abs().max() == 5.0


def test_mlp_backbone_input_normalizer_is_updated_only_on_request():
    from gear_sonic.trl.modules.mlp_backbone import mlp_backbone

    backbone = mlp_backbone(OBS_SHAPES, NUM_ACTIONS, hidden_dims=[16], normalize_input=True)
    plain = mlp_backbone(OBS_SHAPES, NUM_ACTIONS, hidden_dims=[16])
    assert plain.normalizer is None and "normalizer.mean" in backbone.state_dict()
    obs = make_obs()
    raw = obs["actor_obs"]
    before = backbone(obs)
    obs_seq = {"actor_obs": (raw * 3 + 7).reshape(2, 3, -1)}  # (steps, envs, dim) as in storage
    backbone.update_normalizer(obs_seq)
    assert torch.allclose(backbone.normalizer.mean, (raw * 3 + 7).mean(0), atol=1e-4)
    assert backbone.normalizer.count.item() == 6
    # The forward pass itself never moves the statistics, and it does normalise.
    shifted = {"actor_obs": raw * 3 + 7}
    out = backbone(shifted)
    assert backbone.normalizer.count.item() == 6 and not torch.allclose(out, before)
    expected = backbone.mlp(backbone.normalizer(raw * 3 + 7))
    assert torch.allclose(out, expected)


# ---------------------------------------------------------------- configs
def _load(path: str):
    return OmegaConf.load(CONFIG_DIR / path)


def test_small_config_builds_a_working_actor_critic_and_aux_losses():
    cfg = _load("actor_critic/universal_token/all_mlp_small.yaml")
    actor = instantiate(cfg.actor, backbone={"obs_shapes": OBS_SHAPES, "num_actions": NUM_ACTIONS},
                        num_actions=NUM_ACTIONS)
    critic = instantiate(cfg.critic, obs_shapes=OBS_SHAPES)
    aux = instantiate(_load("aux_losses/universal_token/g1_recon_and_all_latent.yaml"))
    obs = make_obs()
    log_prob, _, _, _, out = actor.evaluate(obs, torch.zeros(6, NUM_ACTIONS))
    total, losses = aux(out, obs)
    assert aux.terms["g1_recon"] == (0.01, "mse") and len(losses) == 5
    (total - log_prob.mean() + critic(obs).mean()).backward()
    assert actor.backbone.token_dim == 16
    assert actor.backbone.encoders["g1"].mlp[0].in_features == 640


def test_release_config_has_sonic_sizes():
    cfg = _load("actor_critic/universal_token/all_mlp_v1.yaml")
    backbone = instantiate(cfg.actor.backbone, obs_shapes=OBS_SHAPES, num_actions=NUM_ACTIONS)
    in_features = {name: enc.mlp[0].in_features for name, enc in backbone.encoders.items()}
    assert in_features == {"g1": 640, "teleop": 267, "smpl": 840}
    assert backbone.num_tokens * backbone.token_dim == 64 and set(backbone.fsq_levels) == {32}
    assert backbone.decoders["g1_dyn"].mlp[0].in_features == 994
    out = backbone(make_obs())
    assert out.action_mean.shape == (6, NUM_ACTIONS)
    assert {t: r.shape for t, r in out.g1_recon.items()} == {
        "command_multi_future_nonflat": (6, 10, 58), "motion_anchor_ori_b_mf_nonflat": (6, 10, 6)}
    half = 16
    assert torch.allclose(out.tokens * half, (out.tokens * half).round())
