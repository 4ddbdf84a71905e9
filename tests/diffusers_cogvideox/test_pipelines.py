"""CogVideoX pipelines: equal to diffusers' where diffusers is right, fixed where it is not, and every check they make.

Every call is tiny: a few steps, 9 (1.0) or 17 (1.5) frames, 16x16 pixels (32x32 for the tiny 5b-I2V, whose learned
positions fix the size). Reference pipelines are diffusers' own, loaded with diffusers' classes from the same
Hub-layout folder as ours.
"""

from __future__ import annotations

import json
import logging

import diffusers
import numpy as np
import PIL.Image
import pytest
import torch
from diffusers import CogVideoXDPMScheduler
from diffusers.callbacks import PipelineCallback

from diffusers_cogvideox import (
    CogVideoXImageToVideoPipeline,
    CogVideoXPipeline,
    CogVideoXPipelineOutput,
    CogVideoXVideoToVideoPipeline,
)
from diffusers_cogvideox.models.autoencoder_kl_cogvideox import AutoencoderKLCogVideoX
from diffusers_cogvideox.models.transformer_cogvideox import CogVideoXTransformer3DModel
from diffusers_cogvideox.pipelines import common
from diffusers_cogvideox.pipelines.common import GuidanceSchedule, default_video_shape, dynamic_cfg_scale
from diffusers_cogvideox.tiny import TINY_MAX_TEXT_LENGTH, TINY_TRANSFORMER_CONFIGS, save_tiny_hub_folder, tiny_pipeline

PROMPT = "dance monkey"  # 11 tiny-T5 tokens: fits max_sequence_length=16
OURS = {"t2v": CogVideoXPipeline, "i2v": CogVideoXImageToVideoPipeline, "v2v": CogVideoXVideoToVideoPipeline}
REFERENCE = {
    "t2v": diffusers.CogVideoXPipeline,
    "i2v": diffusers.CogVideoXImageToVideoPipeline,
    "v2v": diffusers.CogVideoXVideoToVideoPipeline,
}


def frames_for(variant: str) -> int:
    return 17 if variant.startswith("1.5") else 9


def size_for(variant: str) -> int:
    return 8 * TINY_TRANSFORMER_CONFIGS[variant]["sample_height"] if variant == "5b-i2v" else 16


def random_image(size: int, seed: int = 0) -> PIL.Image.Image:
    rng = np.random.default_rng(seed)
    return PIL.Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))


def random_video(num_frames: int, size: int = 16, seed: int = 0) -> list[PIL.Image.Image]:
    return [random_image(size, seed + i) for i in range(num_frames)]


def quiet(pipe):
    pipe.set_progress_bar_config(disable=True)
    return pipe


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def call_kwargs(kind: str, variant: str, **overrides) -> dict:
    size = size_for(variant)
    kwargs = dict(prompt=PROMPT, height=size, width=size, num_inference_steps=2, output_type="pt", generator=gen())
    if kind == "i2v":
        kwargs.update(image=random_image(size), num_frames=frames_for(variant))
    elif kind == "v2v":
        kwargs.update(video=random_video(frames_for(variant), size), strength=0.8)
    else:
        kwargs.update(num_frames=frames_for(variant))
    kwargs.update(overrides)
    return kwargs


@pytest.fixture(scope="module")
def hub_folders(tmp_path_factory):
    """One official-layout folder per (kind, variant), written on first use."""
    cache = {}

    def folder(kind: str, variant: str):
        if (kind, variant) not in cache:
            cache[kind, variant] = save_tiny_hub_folder(tmp_path_factory.mktemp(f"{kind}-{variant}"), variant, kind)
        return cache[kind, variant]

    return folder


def load_pair(hub_folders, kind: str, variant: str):
    folder = hub_folders(kind, variant)
    return quiet(OURS[kind].from_pretrained(folder)), quiet(REFERENCE[kind].from_pretrained(folder))


@pytest.fixture(scope="module")
def t2v():
    return quiet(tiny_pipeline("2b", "t2v"))


@pytest.fixture(scope="module")
def t2v_15():
    return quiet(tiny_pipeline("1.5-5b", "t2v"))


# ----------------------------------------------------------------------------------------------------------------------
# Equal to diffusers' pipelines (same weights, scheduler, seed; dynamic CFG off)
# ----------------------------------------------------------------------------------------------------------------------

EQUIVALENCE_CASES = [
    ("t2v", "2b"),
    ("t2v", "5b"),
    ("t2v", "1.5-5b"),
    ("i2v", "5b-i2v"),
    ("i2v", "1.5-5b-i2v"),
    ("v2v", "2b"),
    ("v2v", "5b"),
]


@pytest.mark.parametrize("kind, variant", EQUIVALENCE_CASES)
def test_equals_reference_pipeline(hub_folders, kind, variant):
    ours, reference = load_pair(hub_folders, kind, variant)
    assert isinstance(ours.transformer, CogVideoXTransformer3DModel) and isinstance(ours.vae, AutoencoderKLCogVideoX)
    expected = reference(**call_kwargs(kind, variant, max_sequence_length=TINY_MAX_TEXT_LENGTH)).frames
    got = ours(**call_kwargs(kind, variant)).frames
    assert got.shape == expected.shape
    assert got.std() > 1e-3  # not a constant image that would match anything
    assert (got - expected).abs().max() <= 1e-4


@pytest.mark.parametrize("kind, variant", [("t2v", "5b"), ("i2v", "1.5-5b-i2v"), ("v2v", "2b")])
def test_equals_reference_with_dpm_scheduler(hub_folders, kind, variant):
    """The DPM-Solver++ scheduler draws noise every step from the generator: same draws, same order."""
    ours, reference = load_pair(hub_folders, kind, variant)
    for pipe in (ours, reference):
        pipe.scheduler = CogVideoXDPMScheduler.from_config(pipe.scheduler.config)
    expected = reference(**call_kwargs(kind, variant, num_inference_steps=3, max_sequence_length=16)).frames
    got = ours(**call_kwargs(kind, variant, num_inference_steps=3)).frames
    assert (got - expected).abs().max() <= 1e-4


@pytest.mark.parametrize("kind, variant", [("t2v", "5b"), ("i2v", "5b-i2v"), ("v2v", "5b")])
def test_timestep_dynamic_cfg_reproduces_reference(hub_folders, kind, variant):
    ours, reference = load_pair(hub_folders, kind, variant)
    common_kwargs = dict(num_inference_steps=4, guidance_scale=6.0, use_dynamic_cfg=True)
    expected = reference(**call_kwargs(kind, variant, **common_kwargs, max_sequence_length=16)).frames
    got = ours(**call_kwargs(kind, variant, **common_kwargs, dynamic_cfg_mode="timestep")).frames
    assert (got - expected).abs().max() <= 1e-4
    stepwise = ours(**call_kwargs(kind, variant, **common_kwargs)).frames
    assert (stepwise - expected).abs().max() > 1e-4  # the default follows the step index instead


def test_video_to_video_15_equals_reference_where_reference_runs(hub_folders, monkeypatch):
    """diffusers' V2V rejects every 16k+1 clip on 1.5 (odd latent count); on 13 frames (4 latents, no padding) both
    run the same math. Only for this comparison is our frame-count rule switched off."""
    ours, reference = load_pair(hub_folders, "v2v", "1.5-5b")
    monkeypatch.setattr(common, "check_num_frames", lambda *args, **kwargs: None)
    kwargs = call_kwargs("v2v", "1.5-5b", video=random_video(13))
    expected = reference(**kwargs, max_sequence_length=16).frames
    got = ours(**call_kwargs("v2v", "1.5-5b", video=random_video(13))).frames
    assert (got - expected).abs().max() <= 1e-4


def test_video_to_video_15_runs_at_valid_frame_counts_reference_rejects(hub_folders):
    ours, reference = load_pair(hub_folders, "v2v", "1.5-5b")
    with pytest.raises(ValueError, match="divisible"):
        reference(**call_kwargs("v2v", "1.5-5b", max_sequence_length=16))
    frames = ours(**call_kwargs("v2v", "1.5-5b")).frames
    assert frames.shape == (1, 17, 3, 16, 16)


@pytest.mark.parametrize("num_frames", [17, 33])
def test_image_to_video_15_at_several_frame_counts(num_frames):
    pipe = quiet(tiny_pipeline("1.5-5b-i2v", "i2v"))
    frames = pipe(**call_kwargs("i2v", "1.5-5b-i2v", num_frames=num_frames)).frames
    assert frames.shape == (1, num_frames, 3, 16, 16)


# ----------------------------------------------------------------------------------------------------------------------
# Loading and saving
# ----------------------------------------------------------------------------------------------------------------------


def test_official_layout_loads_our_classes(hub_folders):
    folder = hub_folders("t2v", "2b")
    index = json.loads((folder / "model_index.json").read_text())
    assert index["transformer"] == ["diffusers", "CogVideoXTransformer3DModel"]
    assert index["vae"] == ["diffusers", "AutoencoderKLCogVideoX"]
    pipe = CogVideoXPipeline.from_pretrained(folder)
    assert type(pipe.transformer) is CogVideoXTransformer3DModel
    assert type(pipe.vae) is AutoencoderKLCogVideoX
    assert type(pipe.scheduler).__name__ == "CogVideoXDDIMScheduler"
    assert type(pipe.text_encoder).__name__ == "T5EncoderModel"


def test_from_pretrained_honours_torch_dtype(hub_folders):
    pipe = CogVideoXPipeline.from_pretrained(hub_folders("t2v", "2b"), torch_dtype=torch.bfloat16)
    assert pipe.transformer.dtype == pipe.vae.dtype == pipe.text_encoder.dtype == torch.bfloat16
    per_component = {"transformer": torch.bfloat16, "default": torch.float16}
    pipe = CogVideoXPipeline.from_pretrained(hub_folders("t2v", "2b"), torch_dtype=per_component)
    assert pipe.transformer.dtype == torch.bfloat16 and pipe.vae.dtype == pipe.text_encoder.dtype == torch.float16


def test_save_pretrained_round_trip_names_this_package(t2v, tmp_path):
    t2v.save_pretrained(tmp_path)
    index = json.loads((tmp_path / "model_index.json").read_text())
    assert index["transformer"][0].startswith("diffusers_cogvideox")
    assert index["vae"][0].startswith("diffusers_cogvideox")
    reloaded = quiet(CogVideoXPipeline.from_pretrained(tmp_path))
    assert type(reloaded.transformer) is CogVideoXTransformer3DModel
    assert torch.equal(t2v(**call_kwargs("t2v", "2b")).frames, reloaded(**call_kwargs("t2v", "2b")).frames)


def test_lora_weights_load_into_our_transformer(tmp_path):
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    trained = quiet(tiny_pipeline("5b", "t2v"))
    base = trained(**call_kwargs("t2v", "5b")).frames
    trained.transformer.add_adapter(LoraConfig(r=4, lora_alpha=4, target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    with torch.no_grad():
        for name, param in trained.transformer.named_parameters():
            if "lora_B" in name:
                param.normal_(std=0.5)
    adapted = trained(**call_kwargs("t2v", "5b")).frames
    CogVideoXPipeline.save_lora_weights(
        tmp_path, transformer_lora_layers=get_peft_model_state_dict(trained.transformer)
    )

    fresh = quiet(tiny_pipeline("5b", "t2v"))
    fresh.load_lora_weights(tmp_path)
    assert (adapted - base).abs().max() > 1e-3
    assert (fresh(**call_kwargs("t2v", "5b")).frames - adapted).abs().max() <= 1e-5


# ----------------------------------------------------------------------------------------------------------------------
# Defaults, outputs, batching
# ----------------------------------------------------------------------------------------------------------------------


def test_default_video_shapes_follow_the_variant():
    class Config(dict):
        __getattr__ = dict.get

    one_oh = Config(patch_size_t=None, sample_height=60, sample_width=90, sample_frames=49)
    one_five = Config(patch_size_t=2, sample_height=300, sample_width=300, sample_frames=81)
    assert default_video_shape(one_oh) == (49, 480, 720)
    assert default_video_shape(one_five) == (81, 768, 1360)  # not the 2400x2400 of the reference


def test_default_call_uses_the_config_shape(t2v):
    frames = t2v(PROMPT, num_inference_steps=1, output_type="pt").frames
    num_frames, height, width = t2v.default_video_shape()
    assert frames.shape == (1, num_frames, 3, height, width)


@pytest.mark.parametrize("output_type", ["pil", "np", "pt", "latent"])
def test_output_types(t2v, output_type):
    out = t2v(**call_kwargs("t2v", "2b", output_type=output_type))
    assert isinstance(out, CogVideoXPipelineOutput)
    frames = out.frames
    if output_type == "pil":
        assert len(frames) == 1 and len(frames[0]) == 9 and isinstance(frames[0][0], PIL.Image.Image)
        assert frames[0][0].size == (16, 16)
    elif output_type == "np":
        assert isinstance(frames, np.ndarray) and frames.shape == (1, 9, 16, 16, 3)
    elif output_type == "pt":
        assert frames.shape == (1, 9, 3, 16, 16) and 0 <= frames.min() and frames.max() <= 1
    else:
        assert frames.shape == (1, 3, 4, 2, 2)


def test_return_dict_false_gives_a_tuple(t2v):
    (frames,) = t2v(**call_kwargs("t2v", "2b"), return_dict=False)
    assert frames.shape == (1, 9, 3, 16, 16)


@pytest.mark.parametrize("pipe_name, variant", [("t2v", "2b"), ("t2v_15", "1.5-5b")])
def test_latent_output_round_trip(request, pipe_name, variant):
    """``output_type="latent"`` returns what the VAE decodes (1.5's padding frame already dropped)."""
    pipe = request.getfixturevalue(pipe_name)
    latents = pipe(**call_kwargs("t2v", variant, output_type="latent")).frames
    direct = pipe(**call_kwargs("t2v", variant)).frames
    assert latents.shape[1] == (frames_for(variant) - 1) // 4 + 1
    assert torch.allclose(pipe.decode(latents, output_type="pt"), direct, atol=1e-6)


def test_same_seed_same_video_other_seed_other_video(t2v):
    a = t2v(**call_kwargs("t2v", "2b", generator=gen(1))).frames
    b = t2v(**call_kwargs("t2v", "2b", generator=gen(1))).frames
    c = t2v(**call_kwargs("t2v", "2b", generator=gen(2))).frames
    assert torch.equal(a, b)
    assert (a - c).abs().max() > 1e-3


def test_num_videos_per_prompt_text_to_video(t2v):
    prompts = [PROMPT, "a cat"]
    generators = [gen(s) for s in range(4)]
    frames = t2v(**call_kwargs("t2v", "2b", prompt=prompts, num_videos_per_prompt=2, generator=generators)).frames
    assert frames.shape == (4, 9, 3, 16, 16)
    for k in range(4):  # video k belongs to prompt k // 2 and was drawn with generator k
        alone = t2v(**call_kwargs("t2v", "2b", prompt=prompts[k // 2], generator=gen(k))).frames
        assert (frames[k] - alone[0]).abs().max() <= 1e-4
    assert (frames[0] - frames[1]).abs().max() > 1e-3


def test_num_videos_per_prompt_with_precomputed_embeddings(t2v):
    embeds, negative = t2v.encode_prompt(PROMPT, max_sequence_length=16)
    frames = t2v(**call_kwargs("t2v", "2b", prompt=None, prompt_embeds=embeds, negative_prompt_embeds=negative),
                 num_videos_per_prompt=3).frames  # fmt: skip
    assert frames.shape[0] == 3


def test_precomputed_embeddings_equal_prompts(t2v):
    embeds, negative = t2v.encode_prompt(PROMPT, negative_prompt="blurry", max_sequence_length=16)
    from_text = t2v(**call_kwargs("t2v", "2b", negative_prompt="blurry")).frames
    from_embeds = t2v(
        **call_kwargs("t2v", "2b", prompt=None, prompt_embeds=embeds, negative_prompt_embeds=negative)
    ).frames
    assert torch.allclose(from_text, from_embeds, atol=1e-5)


def test_encode_prompt_repeats_each_prompt_in_a_row(t2v):
    embeds, negative = t2v.encode_prompt(["a", "b"], num_videos_per_prompt=2, max_sequence_length=16)
    assert embeds.shape[0] == negative.shape[0] == 4
    assert torch.equal(embeds[0], embeds[1]) and torch.equal(embeds[2], embeds[3])
    assert not torch.equal(embeds[1], embeds[2])


def test_num_videos_per_prompt_image_to_video():
    pipe = quiet(tiny_pipeline("1.5-5b-i2v", "i2v"))
    kwargs = call_kwargs("i2v", "1.5-5b-i2v", num_videos_per_prompt=2, generator=[gen(0), gen(1)])
    frames = pipe(**kwargs).frames
    assert frames.shape == (2, 17, 3, 16, 16)
    alone = pipe(**call_kwargs("i2v", "1.5-5b-i2v", generator=gen(0))).frames
    assert (frames[0] - alone[0]).abs().max() <= 1e-4  # the image is encoded once, with the first generator
    assert (frames[0] - frames[1]).abs().max() > 1e-3


def test_num_videos_per_prompt_video_to_video():
    pipe = quiet(tiny_pipeline("5b", "v2v"))
    frames = pipe(**call_kwargs("v2v", "5b", prompt=[PROMPT, "a cat"], num_videos_per_prompt=2)).frames
    assert frames.shape == (4, 9, 3, 16, 16)


def test_one_image_per_prompt():
    pipe = quiet(tiny_pipeline("1.5-5b-i2v", "i2v"))
    images = [random_image(16, 0), random_image(16, 1)]
    frames = pipe(**call_kwargs("i2v", "1.5-5b-i2v", prompt=[PROMPT, PROMPT], image=images, generator=[gen(0), gen(0)]))
    assert (frames.frames[0] - frames.frames[1]).abs().max() > 1e-3


def test_generator_list_must_match_videos(t2v):
    with pytest.raises(ValueError, match="generators for 2 videos"):
        t2v(**call_kwargs("t2v", "2b", num_videos_per_prompt=2, generator=[gen(0)]))


# ----------------------------------------------------------------------------------------------------------------------
# Callbacks and progress
# ----------------------------------------------------------------------------------------------------------------------


def test_callback_gets_the_requested_tensors_every_step(t2v):
    seen = []

    def callback(pipe, step, timestep, tensors):
        seen.append((step, int(timestep), sorted(tensors), tensors["latents"].shape))
        return {}

    t2v(**call_kwargs("t2v", "2b", num_inference_steps=3), callback_on_step_end=callback,
        callback_on_step_end_tensor_inputs=["latents", "prompt_embeds", "negative_prompt_embeds"])  # fmt: skip
    assert [s[0] for s in seen] == [0, 1, 2]
    assert seen[0][2] == ["latents", "negative_prompt_embeds", "prompt_embeds"]
    assert seen[0][3] == (1, 3, 4, 2, 2)
    assert seen[0][1] > seen[-1][1]


def test_callback_can_replace_latents(t2v):
    def zero_latents(pipe, step, timestep, tensors):
        return {"latents": torch.zeros_like(tensors["latents"])}

    out = t2v(**call_kwargs("t2v", "2b", output_type="latent"), callback_on_step_end=zero_latents).frames
    assert torch.count_nonzero(out) == 0


def test_callback_can_interrupt(t2v):
    steps = []

    def stop_after_first(pipe, step, timestep, tensors):
        steps.append(step)
        pipe._interrupt = True
        return {}

    t2v(**call_kwargs("t2v", "2b", num_inference_steps=4), callback_on_step_end=stop_after_first)
    assert steps == [0]


def test_pipeline_callback_objects_choose_their_tensors(t2v):
    class Record(PipelineCallback):
        tensor_inputs = ["latents", "prompt_embeds"]

        def callback_fn(self, pipeline, step_index, timestep, callback_kwargs):
            self.seen = sorted(callback_kwargs)
            return callback_kwargs

    record = Record()
    t2v(**call_kwargs("t2v", "2b"), callback_on_step_end=record)
    assert record.seen == ["latents", "prompt_embeds"]


def test_progress_bar_counts_steps(capsys):
    pipe = tiny_pipeline("2b", "t2v")
    pipe(**call_kwargs("t2v", "2b", num_inference_steps=3))
    assert "3/3" in capsys.readouterr().err


def test_properties_after_a_call(t2v):
    t2v(**call_kwargs("t2v", "2b", num_inference_steps=3, guidance_scale=4.0))
    assert t2v.num_timesteps == 3 and t2v.guidance_scale == 4.0 and t2v.current_timestep is None


# ----------------------------------------------------------------------------------------------------------------------
# Dynamic CFG
# ----------------------------------------------------------------------------------------------------------------------


def test_step_dynamic_cfg_decays_smoothly_from_one_plus_scale():
    schedule = GuidanceSchedule(4.0, use_dynamic_cfg=True, dynamic_cfg_mode="step", num_inference_steps=50)
    scales = [schedule.scale_at(i, torch.tensor(999 - 20 * i), 50) for i in range(50)]
    assert scales[0] == pytest.approx(5.0)
    assert all(a >= b for a, b in zip(scales, scales[1:]))
    assert scales[-1] == pytest.approx(dynamic_cfg_scale(4.0, 1 / 50))


def test_timestep_dynamic_cfg_is_the_reference_formula():
    schedule = GuidanceSchedule(4.0, use_dynamic_cfg=True, dynamic_cfg_mode="timestep", num_inference_steps=50)
    t = torch.tensor(979)
    expected = 1 + 4.0 * (1 - np.cos(np.pi * ((50 - 979) / 50) ** 5.0)) / 2
    assert schedule.scale_at(1, t, 50) == pytest.approx(expected)


def test_video_to_video_step_cfg_counts_skipped_steps():
    """With strength, the schedule continues where the full N-step schedule is, not from its start."""
    schedule = GuidanceSchedule(4.0, True, "step", num_inference_steps=10, step_offset=5)
    assert schedule.scale_at(0, torch.tensor(0), 5) == pytest.approx(dynamic_cfg_scale(4.0, 0.5))


def test_no_guidance_at_scale_one(t2v):
    out = t2v(**call_kwargs("t2v", "2b", guidance_scale=1.0)).frames
    assert out.shape == (1, 9, 3, 16, 16)


# ----------------------------------------------------------------------------------------------------------------------
# Memory options: offload, VAE tiling and slicing
# ----------------------------------------------------------------------------------------------------------------------


def test_model_cpu_offload_installs_hooks_and_keeps_the_output():
    """On a CPU-only machine the "accelerator" is the CPU itself: the hooks and the call path are what is tested."""
    pipe = quiet(tiny_pipeline("5b", "t2v"))
    expected = pipe(**call_kwargs("t2v", "5b")).frames
    pipe.enable_model_cpu_offload(device="cpu")
    assert len(pipe._all_hooks) == 3
    assert all(hasattr(getattr(pipe, name), "_hf_hook") for name in ("text_encoder", "transformer", "vae"))
    assert torch.allclose(pipe(**call_kwargs("t2v", "5b")).frames, expected, atol=1e-6)


def test_sequential_cpu_offload_installs_hooks():
    """accelerate cannot run sequential offload with the CPU as execution device (its hooks fail on moving parameters
    back from ``meta`` to ``cpu``, for any module), so on CPU only the installed hooks are checked; the GPU test below
    runs it."""
    pipe = quiet(tiny_pipeline("1.5-5b-i2v", "i2v"))
    pipe.enable_sequential_cpu_offload(device="cpu")
    assert pipe._execution_device == torch.device("cpu:0")
    for name in ("text_encoder", "transformer", "vae"):
        component = getattr(pipe, name)
        assert any(hasattr(m, "_hf_hook") for m in component.modules())
        assert any(p.device.type == "meta" for p in component.parameters())  # weights wait on the CPU offload map


@pytest.mark.skipif(not torch.cuda.is_available(), reason="sequential offload onto a GPU needs a GPU")
def test_sequential_cpu_offload_on_gpu():
    pipe = quiet(tiny_pipeline("1.5-5b-i2v", "i2v"))
    expected = pipe(**call_kwargs("i2v", "1.5-5b-i2v")).frames
    pipe.enable_sequential_cpu_offload()
    got = pipe(**call_kwargs("i2v", "1.5-5b-i2v")).frames
    assert torch.allclose(got.cpu(), expected, atol=1e-3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="model offload onto a GPU needs a GPU")
def test_model_cpu_offload_on_gpu():
    pipe = quiet(tiny_pipeline("5b", "t2v"))
    expected = pipe(**call_kwargs("t2v", "5b")).frames
    pipe.enable_model_cpu_offload()
    got = pipe(**call_kwargs("t2v", "5b")).frames
    assert pipe.transformer.device.type == "cpu"  # offloaded again after the call
    assert torch.allclose(got.cpu(), expected, atol=1e-3)


def test_vae_slicing_passes_through(t2v):
    kwargs = call_kwargs("t2v", "2b", prompt=[PROMPT, "a cat"])
    expected = t2v(**kwargs).frames
    t2v.vae.enable_slicing()
    try:
        assert torch.allclose(t2v(**call_kwargs("t2v", "2b", prompt=[PROMPT, "a cat"])).frames, expected, atol=1e-5)
    finally:
        t2v.vae.disable_slicing()


def test_vae_tiling_passes_through(t2v, monkeypatch):
    """Decoding goes through the VAE's tiled path once ``pipe.vae.enable_tiling`` is on (tiles as in diffusers' own
    test: 96 px with 1/12 overlap, on a 128 px frame)."""
    tiled_calls = []
    tiled_decode = t2v.vae.tiled_decode
    monkeypatch.setattr(t2v.vae, "tiled_decode", lambda *a, **k: tiled_calls.append(1) or tiled_decode(*a, **k))
    latents = torch.randn(1, 1, 4, 16, 16, generator=gen())
    plain = t2v.decode(latents, output_type="pt")
    t2v.vae.enable_tiling(96, 96, tile_overlap_factor_height=1 / 12, tile_overlap_factor_width=1 / 12)
    try:
        tiled = t2v.decode(latents, output_type="pt")
    finally:
        t2v.vae.disable_tiling()
    assert tiled_calls and tiled.shape == plain.shape == (1, 1, 3, 128, 128)


# ----------------------------------------------------------------------------------------------------------------------
# Input validation
# ----------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("num_frames", [8, 10, 50, 57, 1])
def test_frame_count_rule_10(t2v, num_frames):
    with pytest.raises(
        ValueError, match=rf"num_frames must be 8\*k\+1 \(9, 17, \.\.\., 49\) for CogVideoX 1\.0; got {num_frames}"
    ):
        t2v(**call_kwargs("t2v", "2b", num_frames=num_frames))


@pytest.mark.parametrize("num_frames", [9, 41, 80, 177])
def test_frame_count_rule_15(t2v_15, num_frames):
    with pytest.raises(ValueError, match=rf"16\*k\+1 \(17, 33, \.\.\., 161\) for CogVideoX 1\.5; got {num_frames}"):
        t2v_15(**call_kwargs("t2v", "1.5-5b", num_frames=num_frames))


@pytest.mark.parametrize("height, width", [(24, 16), (16, 20), (0, 16)])
def test_height_width_multiples(t2v, height, width):
    with pytest.raises(ValueError, match="height and width must be"):
        t2v(**call_kwargs("t2v", "2b", height=height, width=width))


def test_15_size_is_bounded_by_its_positional_grid(t2v_15):
    limit = 8 * TINY_TRANSFORMER_CONFIGS["1.5-5b"]["sample_height"]
    with pytest.raises(ValueError, match=f"at most {limit}x{limit}"):
        t2v_15(**call_kwargs("t2v", "1.5-5b", height=limit + 16))


def test_learned_positions_fix_the_video_shape():
    pipe = quiet(tiny_pipeline("5b-i2v", "i2v"))
    with pytest.raises(ValueError, match="learned positional embeddings"):
        pipe(**call_kwargs("i2v", "5b-i2v", height=16, width=16, image=random_image(16)))


def test_prompt_and_embeddings_errors(t2v):
    embeds, negative = t2v.encode_prompt(PROMPT, max_sequence_length=16)
    cases = [
        (dict(prompt=None), "pass a `prompt` or `prompt_embeds`"),
        (dict(prompt_embeds=embeds), "either `prompt` or `prompt_embeds`"),
        (dict(prompt=3), "must be a string or a non-empty list"),
        (dict(prompt=[]), "must be a string or a non-empty list"),
        (dict(negative_prompt="x", negative_prompt_embeds=negative), "either `negative_prompt` or"),
        (dict(negative_prompt_embeds=negative), "go with `prompt_embeds`"),
        (dict(prompt=None, prompt_embeds=embeds[..., :8]), r"must be \[batch, tokens, 32\]"),
        (dict(prompt=None, prompt_embeds=embeds, negative_prompt_embeds=negative[:, :8]), "must have the shape"),
        (dict(prompt=[PROMPT, PROMPT], negative_prompt=["x"]), "got 1 negative prompts for 2 prompts"),
        (dict(num_videos_per_prompt=0), "num_videos_per_prompt must be a positive integer"),
        (dict(output_type="gif"), "output_type must be one of"),
        (dict(dynamic_cfg_mode="sigma"), "dynamic_cfg_mode must be one of"),
        (dict(max_sequence_length=8), "max_sequence_length must be 16"),
        (dict(callback_on_step_end_tensor_inputs=["noise_pred"]), r"may only name .*got \['noise_pred'\]"),
        (dict(latents=torch.zeros(1, 2, 4, 2, 2)), r"`latents` must have shape \(1, 3, 4, 2, 2\)"),
    ]
    for overrides, message in cases:
        with pytest.raises(ValueError, match=message):
            t2v(**call_kwargs("t2v", "2b", **overrides))


def test_long_prompt_warns_with_the_number_of_dropped_tokens(t2v, caplog):
    prompt = " ".join(["a panda playing a guitar in a bamboo forest"] * 4)
    n_tokens = len(t2v.tokenizer(prompt).input_ids)
    with caplog.at_level(logging.WARNING, logger="diffusers_cogvideox.pipelines.common"):
        t2v(**call_kwargs("t2v", "2b", prompt=prompt))
    assert f"{n_tokens - 16} tokens were dropped" in caplog.text
    assert f"prompt 0 is {n_tokens} tokens long" in caplog.text


def test_pipeline_kind_must_match_the_transformer(hub_folders):
    folder = hub_folders("i2v", "5b-i2v")
    with pytest.raises(ValueError, match=r"needs a text-to-video transformer \(in_channels = 4\)"):
        quiet(CogVideoXPipeline.from_pretrained(folder))(**call_kwargs("t2v", "5b-i2v"))
    t2v_pipe = tiny_pipeline("5b", "t2v")
    i2v_pipe = CogVideoXImageToVideoPipeline(**t2v_pipe.components)
    with pytest.raises(ValueError, match=r"needs an image-to-video transformer \(in_channels = 8\)"):
        i2v_pipe(**call_kwargs("i2v", "5b"))


def test_image_errors():
    pipe = quiet(tiny_pipeline("1.5-5b-i2v", "i2v"))
    cases = [
        (None, "needs an `image`"),
        (random_image(16).convert("RGBA"), "must be an RGB image; got mode 'RGBA'"),
        (random_image(16).convert("L"), "got mode 'L'"),
        (np.zeros((16, 16)), r"arrays must be \[H, W, 3\]"),
        (torch.zeros(1, 16, 16), r"tensors must be \[3, H, W\]"),
        (torch.zeros(3, 0, 16), "is empty"),
        ("image.png", "must be a PIL image, a numpy array or a torch tensor"),
        ([random_image(16)] * 3, r"one image or one per prompt \(1\); got 3 images"),
    ]
    for image, message in cases:
        with pytest.raises(ValueError, match=message):
            pipe(**call_kwargs("i2v", "1.5-5b-i2v", image=image))


def test_video_errors():
    pipe = quiet(tiny_pipeline("2b", "v2v"))
    mixed = random_video(8) + [random_image(32)]
    cases = [
        (dict(video=None), "needs a `video`"),
        (dict(video=random_video(8)), r"the input video's frame count must be 8\*k\+1 .* got 8"),
        (dict(video=mixed), "all frames of a video must have the same size"),
        (dict(video=[f.convert("RGBA") for f in random_video(9)]), "must be an RGB image"),
        (dict(video=[random_video(9), random_video(17)], prompt=[PROMPT, PROMPT]), "same number of frames"),
        (dict(video=[random_video(9)] * 3), r"one video or one per prompt \(1\); got 3 videos"),
        (dict(strength=0.0), r"strength must be in \(0, 1\]"),
        (dict(strength=1.5), r"strength must be in \(0, 1\]"),
        (dict(strength=0.1, num_inference_steps=2), "leave at least one of the 2 steps"),
    ]
    for overrides, message in cases:
        with pytest.raises(ValueError, match=message):
            pipe(**call_kwargs("v2v", "2b", **overrides))


def test_video_to_video_strength_sets_the_steps_run(t2v):
    pipe = quiet(tiny_pipeline("2b", "v2v"))
    pipe(**call_kwargs("v2v", "2b", num_inference_steps=10, strength=0.5))
    assert pipe.num_timesteps == 5
