"""MPOTrainer on tiny denoisers: the step, learning, saving/loading, exact resume, bad input, the entry point."""

import json
import math
import os
from pathlib import Path

import pytest
import torch
from transformers import TrainerCallback

from diffusers_cogvideox.tiny import TINY_TRANSFORMER_CONFIGS
from tests.fixtures import synthetic_mpo_pairs
from trl_vision_reward.mpo.config import MPOConfig
from trl_vision_reward.mpo.data import MPODataCollator, PairDataError, PairFolder, write_pair_folder
from trl_vision_reward.mpo.trainer import LORA_WEIGHT_NAME, MPOTrainer, NonFiniteLossError, adapters_disabled


def tiny_transformer(variant="2b", seed=0):
    from diffusers_cogvideox.models.transformer_cogvideox import CogVideoXTransformer3DModel

    torch.manual_seed(seed)
    return CogVideoXTransformer3DModel(**TINY_TRANSFORMER_CONFIGS[variant])


def tiny_unet(sdxl=False):
    from diffusers import UNet2DConditionModel

    torch.manual_seed(0)
    extra = (
        dict(
            addition_embed_type="text_time", addition_time_embed_dim=4, projection_class_embeddings_input_dim=8 + 6 * 4
        )
        if sdxl
        else {}
    )
    return UNet2DConditionModel(
        block_out_channels=(8, 16), layers_per_block=1, sample_size=8, in_channels=4, out_channels=4, norm_num_groups=4,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32, attention_head_dim=4, **extra,
    )  # fmt: skip


def config(tmp_path, **kw):
    base = dict(
        output_dir=str(tmp_path / "out"), max_steps=2, per_device_train_batch_size=2, per_device_eval_batch_size=8,
        logging_steps=1, save_strategy="no", report_to=[], lora_r=4, lora_alpha=8, learning_rate=1e-3,
        disable_tqdm=True, gradient_checkpointing=False, use_cpu=True, seed=0,
    )  # fmt: skip
    base.update(kw)
    return MPOConfig(**base)


def lora_weights(model):
    return {k: v.detach().clone() for k, v in model.named_parameters() if "lora_" in k}


# ---------------------------------------------------------------------------------------------------------------------
# The step


def test_first_step_is_log2_with_zero_margin_and_one_batched_forward_each(tmp_path):
    model = tiny_transformer("5b")  # RoPE variant: tables come from rotary_embeddings_for_video
    calls = []
    model.register_forward_pre_hook(lambda m, a, kw: calls.append(kw["hidden_states"].shape[0]), with_kwargs=True)
    trainer = MPOTrainer(
        model=model,
        args=config(tmp_path, max_steps=1, gradient_checkpointing=True),
        train_dataset=synthetic_mpo_pairs(4),
    )
    assert trainer.ref_model is None and trainer.reference_mode == "adapter_disabled"  # no second copy
    assert trainer.prediction_type == "v_prediction" and model.is_gradient_checkpointing
    assert all(("lora_" in n) == p.requires_grad for n, p in model.named_parameters())
    trainer.train()
    first = trainer.state.log_history[0]
    assert first["loss"] == pytest.approx(math.log(2), abs=1e-6) and first["rewards/margins"] == 0
    assert first["mse/model"] == pytest.approx(first["mse/ref"])
    assert calls == [4, 4]  # one reference + one policy forward, each on [2 chosen; 2 rejected]
    assert all(
        name in first
        for name in ("rewards/chosen", "rewards/rejected", "rewards/accuracies", "mse/model_chosen", "mse/ref_rejected")
    )


def test_adapter_disabled_reference_equals_the_base_model():
    model = tiny_transformer()
    base = tiny_transformer()
    trainer_args = MPOConfig(output_dir="unused", report_to=[], use_cpu=True, lora_init_weights="true")
    from trl_vision_reward.mpo.trainer import add_lora

    add_lora(model, trainer_args)
    for name, p in model.named_parameters():
        if "lora_B" in name:
            p.data.normal_()  # make the adapter matter
    x, e, t = torch.randn(2, 2, 4, 4, 4), torch.randn(2, 16, 32), torch.tensor([10, 500])
    with torch.no_grad():
        adapted = model(x, e, t, return_dict=False)[0]
        with adapters_disabled(model):
            reference = model(x, e, t, return_dict=False)[0]
        expected = base(x, e, t, return_dict=False)[0]
    assert torch.allclose(reference, expected, atol=1e-6) and not torch.allclose(adapted, expected, atol=1e-3)
    assert all(p.requires_grad for n, p in model.named_parameters() if "lora_" in n)  # untouched by the switch


@pytest.mark.parametrize("variant, shape", [("5b-i2v", (3, 4, 4, 4)), ("1.5-5b-i2v", (2, 4, 8, 8))])
def test_image_to_video_pairs_condition_on_image_latents(tmp_path, variant, shape):
    pairs = synthetic_mpo_pairs(2, latent_shape=shape).add_column("image_latents", [torch.randn(shape).tolist()] * 2)
    model = tiny_transformer(variant)
    seen = []
    model.register_forward_pre_hook(lambda m, a, kw: seen.append(kw["hidden_states"].shape[2]), with_kwargs=True)
    trainer = MPOTrainer(model=model, args=config(tmp_path, max_steps=1), train_dataset=pairs)
    trainer.train()
    assert seen == [8, 8] and trainer.state.log_history[0]["loss"] == pytest.approx(math.log(2), abs=1e-6)


def test_full_fine_tuning_keeps_a_frozen_copy(tmp_path):
    model = tiny_transformer()
    trainer = MPOTrainer(
        model=model,
        args=config(tmp_path, use_peft=False, max_steps=2, save_strategy="steps", save_steps=2),
        train_dataset=synthetic_mpo_pairs(4),
    )
    before = {k: v.clone() for k, v in trainer.ref_model.state_dict().items()}
    trainer.train()
    assert trainer.reference_mode == "frozen_copy" and not any(p.requires_grad for p in trainer.ref_model.parameters())
    assert all(torch.equal(before[k], v) for k, v in trainer.ref_model.state_dict().items())
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())
    from diffusers_cogvideox.models.transformer_cogvideox import CogVideoXTransformer3DModel

    reloaded = CogVideoXTransformer3DModel.from_pretrained(tmp_path / "out" / "checkpoint-2")
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in reloaded.state_dict().items())


@pytest.mark.parametrize("sdxl", [False, True])
def test_stable_diffusion_unets_train_with_epsilon_targets(tmp_path, sdxl):
    pairs = synthetic_mpo_pairs(4, latent_shape=(4, 8, 8), text_shape=(8, 32))
    if sdxl:
        pairs = pairs.add_column("pooled_prompt_embeds", [[0.1] * 8] * 4).add_column(
            "add_time_ids", [[64, 64, 0, 0, 64, 64]] * 4
        )
    model = tiny_unet(sdxl)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trainer = MPOTrainer(model=model, args=config(tmp_path, beta=5000, max_steps=1), train_dataset=pairs)
    assert trainer.denoiser_type == "unet" and trainer.prediction_type == "epsilon" and trainer.lora_prefix == "unet"
    trainer.train()
    assert trainer.state.log_history[0]["loss"] == pytest.approx(math.log(2), abs=1e-6)
    changed = [k for k, v in model.state_dict().items() if k in before and not torch.equal(v, before[k])]
    assert changed == [] and any("lora_A" in k for k, v in lora_weights(model).items())  # base frozen, LoRA trained
    if not sdxl:  # the saved file loads with diffusers' own UNet LoRA loader
        trainer.save_model()
        fresh = tiny_unet()
        x, t, e = torch.randn(1, 4, 8, 8), torch.tensor([10]), torch.randn(1, 8, 32)
        with torch.no_grad():
            trained, base = model(x, t, e).sample, fresh(x, t, e).sample
            fresh.load_lora_adapter(str(tmp_path / "out"), prefix="unet", weight_name=LORA_WEIGHT_NAME)
            loaded = fresh(x, t, e).sample
        assert (loaded - trained).abs().max() <= 1e-3 * (base - trained).abs().max()


def test_sdxl_without_added_conditions_is_refused(tmp_path):
    pairs = synthetic_mpo_pairs(4, latent_shape=(4, 8, 8), text_shape=(8, 32))
    with pytest.raises(PairDataError, match="missing column\\(s\\) \\['pooled_prompt_embeds', 'add_time_ids'\\]"):
        MPOTrainer(model=tiny_unet(sdxl=True), args=config(tmp_path), train_dataset=pairs)


def test_bitsandbytes_8bit_adamw_through_training_arguments(tmp_path):
    bnb = pytest.importorskip("bitsandbytes")
    trainer = MPOTrainer(
        model=tiny_transformer(),
        args=config(tmp_path, max_steps=1, optim="adamw_bnb_8bit"),
        train_dataset=synthetic_mpo_pairs(2),
    )
    trainer.train()
    assert isinstance(getattr(trainer.optimizer, "optimizer", trainer.optimizer), bnb.optim.AdamW)


# ---------------------------------------------------------------------------------------------------------------------
# Learning


def test_implicit_reward_accuracy_rises_on_held_out_pairs(tmp_path):
    args = config(
        tmp_path,
        max_steps=8,
        per_device_train_batch_size=4,
        per_device_eval_batch_size=16,
        beta=500,
        learning_rate=2e-3,
        lr_scheduler_type="constant",
        logging_steps=4,
    )
    trainer = MPOTrainer(
        model=tiny_transformer(),
        args=args,
        train_dataset=synthetic_mpo_pairs(32, seed=1),
        eval_dataset=synthetic_mpo_pairs(16, seed=2),
    )
    before = trainer.evaluate()
    assert before["eval_rewards/accuracies"] == 0.5 and before["eval_loss"] == pytest.approx(math.log(2), abs=1e-6)
    trainer.train()
    after = trainer.evaluate()
    assert after["eval_rewards/accuracies"] >= 0.9 and after["eval_rewards/margins"] > 0 and after["eval_loss"] < 0.6
    assert trainer.evaluate()["eval_loss"] == after["eval_loss"]  # evaluation reuses one noise stream


# ---------------------------------------------------------------------------------------------------------------------
# Saving, loading, resuming


def test_lora_weights_load_into_our_pipeline(tmp_path):
    from diffusers_cogvideox.tiny import tiny_pipeline

    trainer = MPOTrainer(
        model=tiny_transformer(), args=config(tmp_path, lora_r=4, lora_alpha=2), train_dataset=synthetic_mpo_pairs(4)
    )
    trainer.train()
    trainer.save_model()
    out = tmp_path / "out"
    from safetensors import safe_open

    with safe_open(out / LORA_WEIGHT_NAME, "pt") as f:
        assert all(k.startswith("transformer.") and ".lora_" in k for k in f.keys())
        assert json.loads(f.metadata()["lora_adapter_metadata"])["transformer.lora_alpha"] == 2
    card = (out / "README.md").read_text()
    assert "mpo" in card and "beta" in card and "500" in card

    pipe = tiny_pipeline("2b")  # same seed-0 transformer weights as tiny_transformer()
    pipe.load_lora_weights(str(out))
    x, e, t = torch.randn(2, 2, 4, 4, 4), torch.randn(2, 16, 32), torch.tensor([10, 500])
    with torch.no_grad():
        ours = trainer.model(x, e, t, return_dict=False)[0]
        loaded = pipe.transformer(x, e, t, return_dict=False)[0]
        pipe.transformer.disable_lora()
        base = pipe.transformer(x, e, t, return_dict=False)[0]
    assert torch.allclose(ours, loaded, atol=1e-5) and not torch.allclose(ours, base, atol=1e-4)


class StopAt(TrainerCallback):
    def __init__(self, step):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            control.should_training_stop = True


def test_resume_is_exact(tmp_path):
    pairs = synthetic_mpo_pairs(6)  # 3 steps per epoch: the run crosses an epoch boundary
    args = dict(max_steps=4, save_strategy="steps", save_steps=2, lr_scheduler_type="linear", warmup_steps=1)

    full = MPOTrainer(model=tiny_transformer(), args=config(tmp_path / "a", **args), train_dataset=pairs)
    full.train()

    stopped = MPOTrainer(
        model=tiny_transformer(), args=config(tmp_path / "b", **args), train_dataset=pairs, callbacks=[StopAt(2)]
    )
    stopped.train()
    assert stopped.state.global_step == 2
    resumed = MPOTrainer(model=tiny_transformer(), args=config(tmp_path / "b", **args), train_dataset=pairs)
    resumed.train(resume_from_checkpoint=str(tmp_path / "b" / "out" / "checkpoint-2"))

    a, b = lora_weights(full.model), lora_weights(resumed.model)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    losses = lambda t: [h["loss"] for h in t.state.log_history if "loss" in h]  # noqa: E731
    assert losses(full) == losses(resumed)  # the resumed history continues the checkpoint's


# ---------------------------------------------------------------------------------------------------------------------
# Bad input


def rows(n=3, overrides=None):
    ds = synthetic_mpo_pairs(n)
    out = [dict(ds[i]) for i in range(n)]
    for (index, key), value in (overrides or {}).items():
        out[index][key] = value
    return out


def test_missing_columns_are_named(tmp_path):
    pairs = synthetic_mpo_pairs(4).remove_columns(["prompt_embeds"])
    with pytest.raises(
        PairDataError, match="train dataset: pairs dataset is missing column\\(s\\) \\['prompt_embeds'\\]"
    ):
        MPOTrainer(model=tiny_transformer(), args=config(tmp_path), train_dataset=pairs)
    media = (
        synthetic_mpo_pairs(2)
        .remove_columns(["chosen_latents", "rejected_latents"])
        .add_column("chosen", ["a.mp4"] * 2)
        .add_column("rejected", ["b.mp4"] * 2)
    )
    with pytest.raises(PairDataError, match="It holds media pairs: encode them first"):
        MPOTrainer(model=tiny_transformer(), args=config(tmp_path), train_dataset=media)


@pytest.mark.parametrize(
    "override, message",
    [
        (
            {(1, "rejected_latents"): torch.zeros(2, 4, 4, 2).numpy()},
            r"row 1 \(prompt 'synthetic prompt 0-1'\): chosen_latents shape \[2, 4, 4, 4\] != rejected_latents shape \[2, 4, 4, 2\]",
        ),
        ({(2, "chosen_prompt"): "another prompt"}, r"row 2 .*chosen_prompt 'another prompt' differs from prompt"),
        (
            {(0, "chosen_latents"): torch.full((2, 4, 4, 4), float("nan")).numpy()},
            r"row 0 .*chosen_latents contains 128 NaN/inf",
        ),
        (
            {(1, "prompt_embeds"): torch.zeros(3, 32).numpy()},
            r"rows 0 and 1 are in one batch but their prompt_embeds differ \(\[16, 32\] vs \[3, 32\]\)",
        ),
    ],
)
def test_bad_rows_are_named(override, message):
    batch = rows(3, override)
    for i, r in enumerate(batch):
        r["__row__"] = i
    with pytest.raises(PairDataError, match=message):
        MPODataCollator()(batch)


def test_nan_latents_stop_training_naming_the_row(tmp_path):
    data = rows(4, {(3, "rejected_latents"): torch.full((2, 4, 4, 4), float("inf")).numpy()})
    trainer = MPOTrainer(
        model=tiny_transformer(),
        args=config(tmp_path, per_device_train_batch_size=1, max_steps=4, train_sampling_strategy="sequential"),
        train_dataset=data,
    )
    with pytest.raises(PairDataError, match="row 3 .*rejected_latents contains 128 NaN/inf"):
        trainer.train()


def test_non_finite_loss_stops_with_step_and_batch_and_keeps_checkpoints(tmp_path):
    data = rows(4, {(2, "chosen_latents"): torch.full((2, 4, 4, 4), 1e30).numpy()})  # finite, but its MSE overflows
    args = config(
        tmp_path,
        per_device_train_batch_size=1,
        max_steps=4,
        train_sampling_strategy="sequential",
        save_strategy="steps",
        save_steps=1,
    )
    trainer = MPOTrainer(model=tiny_transformer(), args=args, train_dataset=data)
    with pytest.raises(
        NonFiniteLossError,
        match=r"optimizer step 3 .*batch rows \[2\] \(prompts \['synthetic prompt 0-2'\]\).*non-finite terms: \['mse/model_chosen', 'mse/ref_chosen'\].*latest: checkpoint-2",
    ):
        trainer.train()
    checkpoints = sorted(os.listdir(tmp_path / "out"))
    assert checkpoints == ["checkpoint-1", "checkpoint-2"]
    from safetensors.torch import load_file

    assert all(
        torch.isfinite(v).all() for v in load_file(tmp_path / "out" / "checkpoint-2" / LORA_WEIGHT_NAME).values()
    )


# ---------------------------------------------------------------------------------------------------------------------
# Data sources and the entry point


def test_pair_folder_round_trip_shares_tensors(tmp_path):
    data = rows(3)
    data[1]["prompt_embeds"] = data[0]["prompt_embeds"]
    folder = PairFolder(write_pair_folder(tmp_path / "pairs", data))
    assert len(folder) == 3 and len(list((tmp_path / "pairs" / "tensors").iterdir())) == 3 * 3 - 1
    assert torch.equal(torch.as_tensor(folder[2]["chosen_latents"]), torch.as_tensor(data[2]["chosen_latents"]))


def test_media_pairs_are_encoded_once_and_cached(tmp_path):
    import numpy as np
    import PIL.Image
    from diffusers import AutoencoderKL

    from diffusers_cogvideox.tiny import tiny_t5_encoder, tiny_t5_tokenizer
    from trl_vision_reward.mpo.data import precompute_latent_pairs, text_prompt_encoder

    for name in ("a", "b", "c"):
        PIL.Image.fromarray(np.random.default_rng(0).integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(
            tmp_path / f"{name}.png"
        )
    pairs = [
        {"prompt": "a cat", "chosen": "a.png", "rejected": "b.png"},
        {"prompt": "a dog", "chosen": "a.png", "rejected": "c.png"},
    ]
    torch.manual_seed(0)
    vae = AutoencoderKL(block_out_channels=(8,), norm_num_groups=4, latent_channels=4)
    calls = []
    vae.register_forward_pre_hook(lambda *a: calls.append(1))
    original_encode = vae.encode
    vae.encode = lambda x: (calls.append(1), original_encode(x))[1]
    encode = text_prompt_encoder(tiny_t5_encoder(), tiny_t5_tokenizer(), max_length=8)
    folder = precompute_latent_pairs(pairs, tmp_path / "cache", vae=vae, encode_prompt=encode, media_root=tmp_path)
    assert len(calls) == 3  # a.png is shared by both pairs
    row = folder[1]
    assert list(row["chosen_latents"].shape) == [4, 16, 16] and list(row["prompt_embeds"].shape) == [8, 32]
    precompute_latent_pairs(pairs, tmp_path / "cache", vae=vae, encode_prompt=encode, media_root=tmp_path)
    assert len(calls) == 3  # cached
    with pytest.raises(PairDataError, match="row 0 \\(prompt 'a cat'\\): media file not found"):
        precompute_latent_pairs(
            [{"prompt": "a cat", "chosen": "zzz.png", "rejected": "b.png"}],
            tmp_path / "c2",
            vae=vae,
            encode_prompt=encode,
            media_root=tmp_path,
        )


@pytest.mark.slow
def test_entry_point_encodes_media_pairs_with_the_checkpoint_vae(tmp_path):
    from diffusers_cogvideox.tiny import save_tiny_hub_folder
    from diffusers_cogvideox.video_io import export_to_video
    from trl_vision_reward.mpo.cli import main

    save_tiny_hub_folder(tmp_path / "model", "2b")
    for i in range(3):
        export_to_video(torch.rand(9, 3, 32, 32), tmp_path / f"v{i}.mp4", fps=8)
    lines = [
        {"prompt": "a cat", "chosen": "v0.mp4", "rejected": "v1.mp4"},
        {"prompt": "a dog", "chosen": "v2.mp4", "rejected": "v1.mp4"},
    ]
    (tmp_path / "media_pairs.jsonl").write_text("\n".join(json.dumps(x) for x in lines))
    argv = f"--model_name_or_path {tmp_path / 'model'} --dataset_name {tmp_path / 'media_pairs.jsonl'} --media_root {tmp_path} "
    argv += f"--num_frames 9 --height 32 --width 32 --max_text_length 16 --output_dir {tmp_path / 'run'} --max_steps 1 "
    argv += "--per_device_train_batch_size 2 --lora_r 4 --lora_alpha 4 --report_to none --use_cpu --save_strategy no"
    assert main(argv.split()) == 0
    folder = PairFolder(tmp_path / "run" / "latent_cache" / "train")
    assert len(folder) == 2 and list(folder[0]["chosen_latents"].shape) == [3, 4, 4, 4]  # [F, C, H, W], 9 frames -> 3
    assert list(folder[0]["prompt_embeds"].shape) == [16, 32]
    assert len(list((tmp_path / "run" / "latent_cache" / "train" / "latents").iterdir())) == 3  # v1 encoded once
    assert (tmp_path / "run" / LORA_WEIGHT_NAME).is_file()


def test_example_configs_parse():
    import yaml

    from trl_vision_reward.mpo.cli import make_parser

    root = Path(__file__).resolve().parents[3] / "examples"
    script, model, args = make_parser().parse_args_and_config(
        ["--config", str(root / "mpo.yaml"), "--output_dir", "x", "--bf16", "false"]
    )
    assert (model.model_name_or_path, args.beta, args.timestep_sampling, args.lora_r) == (
        "THUDM/CogVideoX-2b",
        500,
        "explicit_uniform",
        64,
    )
    assert script.num_frames == 49 and args.get_pair_rule().min_total_gap == 0.6
    kinds = {p.stem: yaml.safe_load(p.read_text())["distributed_type"] for p in (root / "accelerate").glob("*.yaml")}
    assert kinds == {
        "multi_gpu": "MULTI_GPU",
        "fsdp": "FSDP",
        "deepspeed_zero2": "DEEPSPEED",
        "deepspeed_zero3": "DEEPSPEED",
    }


def test_entry_point_trains_from_a_yaml_config(tmp_path):
    from trl_vision_reward.mpo.cli import main

    write_pair_folder(tmp_path / "pairs", rows(4))
    (tmp_path / "mpo.yaml").write_text(
        f"model_name_or_path: random\ndataset_name: {tmp_path / 'pairs'}\noutput_dir: {tmp_path / 'run'}\nmax_steps: 2\n"
        "per_device_train_batch_size: 2\n"
        "lora_r: 4\nlora_alpha: 4\nbeta: 250\nreport_to: []\nuse_cpu: true\ngradient_checkpointing: false\nsave_strategy: 'no'\n"
    )
    # the synthetic latents have the random tiny CogVideoX's shapes
    assert main(["--config", str(tmp_path / "mpo.yaml"), "--beta", "300"]) == 0  # flags override the file
    args = torch.load(tmp_path / "run" / "training_args.bin", weights_only=False)
    assert (
        args.beta == 300
        and (tmp_path / "run" / LORA_WEIGHT_NAME).is_file()
        and (tmp_path / "run" / "README.md").is_file()
    )


def test_the_fsdp_adapter_switch_equals_the_public_one():
    """The private per-layer flag (used only under FSDP) bypasses LoRA exactly as PEFT's public switch does."""
    model = tiny_transformer()
    from trl_vision_reward.mpo.trainer import add_lora

    add_lora(model, MPOConfig(output_dir="unused", report_to=[], use_cpu=True, lora_init_weights="true"))
    for name, p in model.named_parameters():
        if "lora_B" in name:
            p.data.normal_()
    x, e, t = torch.randn(2, 2, 4, 4, 4), torch.randn(2, 16, 32), torch.tensor([10, 500])
    with torch.no_grad():
        with adapters_disabled(model, sharded=False):
            public = model(x, e, t, return_dict=False)[0]
        with adapters_disabled(model, sharded=True):
            private = model(x, e, t, return_dict=False)[0]
        adapted = model(x, e, t, return_dict=False)[0]
    assert torch.equal(public, private) and not torch.allclose(adapted, public, atol=1e-3)
    assert all(p.requires_grad for n, p in model.named_parameters() if "lora_" in n)
