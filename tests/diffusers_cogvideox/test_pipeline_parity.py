"""Drop-in parity with diffusers' CogVideoX classes: signatures, loading checks, V2V ``latents``, the callback protocol.

Each deliberate difference is listed once below with its reason, and the same names must appear in
``docs/diffusers_parity.md``; anything else diffusers offers must exist here with the same name, kind and default.
Reference objects are diffusers' own classes, loaded from the same tiny Hub-layout folders as ours.
"""

from __future__ import annotations

import inspect
from contextlib import contextmanager
from pathlib import Path

import diffusers
import pytest
import torch
from diffusers import CogVideoXDPMScheduler
from diffusers.callbacks import (
    IPAdapterScaleCutoffCallback,
    MultiPipelineCallbacks,
    PipelineCallback,
    SD3CFGCutoffCallback,
    SDCFGCutoffCallback,
    SDXLCFGCutoffCallback,
)

from diffusers_cogvideox import CogVideoXPipeline
from diffusers_cogvideox.models.autoencoder_kl_cogvideox import AutoencoderKLCogVideoX
from diffusers_cogvideox.models.transformer_cogvideox import CogVideoXTransformer3DModel
from diffusers_cogvideox.pipelines.common import GuidanceSchedule
from diffusers_cogvideox.pipelines.pipeline_cogvideox_video2video import strength_timesteps
from diffusers_cogvideox.tiny import TINY_MAX_TEXT_LENGTH, tiny_components, tiny_pipeline

from .test_pipelines import (
    OURS,
    REFERENCE,
    call_kwargs,
    gen,
    hub_folders,  # noqa: F401  (fixture)
    load_pair,
    quiet,
    random_video,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "diffusers_parity.md"

# (pipeline kind or "*", parameter) -> why our default differs from diffusers'
CALL_DEFAULT_DIFFERENCES = {
    ("*", "max_sequence_length"): "None: the transformer's max_text_seq_length (226 for every official checkpoint)",
    ("i2v", "num_frames"): "None: the variant's default, 49 for 1.0 and 81 for 1.5 (CogVideoX1.5-5B-I2V's own)",
}
# parameters we add; they come after all of diffusers' so that positional calls mean the same
CALL_EXTRAS = ["dynamic_cfg_mode"]
# (model, public method) diffusers has and we do not -> why
METHOD_DIFFERENCES = {
    ("vae", "from_single_file"): "diffusers' single-file loader only resolves its own classes; use `cogvideox convert`",
}
MODELS = {
    "transformer": (CogVideoXTransformer3DModel, diffusers.CogVideoXTransformer3DModel),
    "vae": (AutoencoderKLCogVideoX, diffusers.AutoencoderKLCogVideoX),
}


def parameters(function) -> list[tuple[str, inspect._ParameterKind, object]]:
    """Name, kind and default of each parameter (annotations are strings on our side: ``from __future__``)."""
    return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()]


def differs(kind: str, name: str) -> bool:
    return (kind, name) in CALL_DEFAULT_DIFFERENCES or ("*", name) in CALL_DEFAULT_DIFFERENCES


def max_abs(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a - b).abs().max().item()


# ----------------------------------------------------------------------------------------------------------------------
# Signatures
# ----------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["t2v", "i2v", "v2v"])
def test_call_signature_is_diffusers_then_our_extras(kind):
    ours, reference = parameters(OURS[kind].__call__), parameters(REFERENCE[kind].__call__)
    assert [p[0] for p in ours] == [p[0] for p in reference] + CALL_EXTRAS  # same order: positional calls agree
    for (name, ref_kind, ref_default), (_, our_kind, our_default) in zip(reference, ours):
        assert our_kind == ref_kind, name
        if differs(kind, name):
            assert our_default != ref_default, f"{name} is listed as differing but has diffusers' default"
        else:
            assert our_default == ref_default, f"{name}: {our_default!r} != diffusers' {ref_default!r}"
    extras = dict((p[0], p[2]) for p in ours[len(reference) :])
    assert all(default is not inspect.Parameter.empty for default in extras.values())


@pytest.mark.parametrize("model", sorted(MODELS))
def test_model_public_methods_match_diffusers(model):
    ours, reference = MODELS[model]
    public = sorted(n for n in dir(reference) if not n.startswith("_") and callable(getattr(reference, n)))
    assert "forward" in public and (model != "vae" or {"encode", "decode", "enable_tiling"} <= set(public))
    for name in public:
        if (model, name) in METHOD_DIFFERENCES:
            assert not hasattr(ours, name)  # still absent: otherwise drop it from the list
            continue
        assert hasattr(ours, name), f"{ours.__name__}.{name} is missing"
        assert parameters(getattr(ours, name)) == parameters(getattr(reference, name)), name


def test_every_listed_difference_is_in_the_docs():
    text = DOC.read_text()
    rows = [line for line in text.splitlines() if line.startswith("|")]
    for _, name in [*CALL_DEFAULT_DIFFERENCES, *METHOD_DIFFERENCES]:
        assert any(f"`{name}`" in row for row in rows), f"{name} is not in the table of {DOC.name}"
    for name in CALL_EXTRAS:
        assert any(f"`{name}`" in row for row in rows), name
    readme = (DOC.parents[1] / "README.md").read_text()
    assert "docs/diffusers_parity.md" in readme


# ----------------------------------------------------------------------------------------------------------------------
# Loading: diffusers' checks first, with diffusers' exceptions
# ----------------------------------------------------------------------------------------------------------------------

BAD_LOADING_ARGUMENTS = [
    dict(variant="fp16"),
    dict(quantization_config=1),
    dict(dduf_file="pipeline.dduf"),
    dict(device_map=3),
    dict(device_map="auto"),
    dict(device_map="balanced", low_cpu_mem_usage=False),
]


def raised(load) -> tuple[type, str]:
    with pytest.raises(Exception) as info:
        load()
    return info.type, str(info.value)


@pytest.mark.parametrize("bad", BAD_LOADING_ARGUMENTS, ids=lambda bad: ",".join(f"{k}={v}" for k, v in bad.items()))
def test_from_pretrained_raises_what_diffusers_raises(hub_folders, bad):  # noqa: F811
    folder = hub_folders("t2v", "2b")
    expected = raised(lambda: diffusers.CogVideoXPipeline.from_pretrained(folder, **bad))
    assert raised(lambda: CogVideoXPipeline.from_pretrained(folder, **bad)) == expected


@pytest.mark.parametrize("name", ["not/a/repo/id", "no-such-org/no-such-repo"])
def test_from_pretrained_bad_names_raise_what_diffusers_raises(name):
    expected = raised(lambda: diffusers.CogVideoXPipeline.from_pretrained(name, local_files_only=True))
    assert raised(lambda: CogVideoXPipeline.from_pretrained(name, local_files_only=True)) == expected


def test_variant_folder_loads_our_classes_with_the_variant_weights(tmp_path):
    components = tiny_components("5b", library="diffusers")
    diffusers.CogVideoXPipeline(**components).save_pretrained(tmp_path, variant="fp16")
    assert (tmp_path / "transformer" / "diffusion_pytorch_model.fp16.safetensors").is_file()
    pipe = CogVideoXPipeline.from_pretrained(tmp_path, variant="fp16")
    assert type(pipe.transformer) is CogVideoXTransformer3DModel and type(pipe.vae) is AutoencoderKLCogVideoX
    assert pipe.name_or_path == tmp_path  # what was passed, as diffusers records it
    for name in ("transformer", "vae"):
        expected = components[name].state_dict()
        got = getattr(pipe, name).state_dict()
        assert got.keys() == expected.keys() and all(torch.equal(got[k], expected[k]) for k in expected)


# ----------------------------------------------------------------------------------------------------------------------
# Video-to-video `latents`
# ----------------------------------------------------------------------------------------------------------------------


def start_latents(shape, seed: int = 7) -> torch.Tensor:
    return torch.randn(shape, generator=gen(seed))


@pytest.mark.parametrize("variant", ["2b", "5b"])
def test_video_to_video_latents_equal_reference(hub_folders, variant):  # noqa: F811
    ours, reference = load_pair(hub_folders, "v2v", variant)
    latents = start_latents((1, 3, 4, 2, 2))
    kwargs = dict(video=None, latents=latents, num_inference_steps=3)
    expected = reference(**call_kwargs("v2v", variant, **kwargs, max_sequence_length=TINY_MAX_TEXT_LENGTH)).frames
    got = ours(**call_kwargs("v2v", variant, **kwargs)).frames
    assert got.shape == expected.shape == (1, 9, 3, 16, 16)
    assert max_abs(got, expected) <= 1e-4
    other = ours(**call_kwargs("v2v", variant, **dict(kwargs, latents=start_latents((1, 3, 4, 2, 2), 8)))).frames
    assert max_abs(other, got) > 1e-3  # the latents are used


def test_video_to_video_15_latents_equal_reference_without_the_padding_frame(hub_folders):  # noqa: F811
    """On 1.5 the latents carry the front padding frame (6 = 5 latents of 17 frames + 1); diffusers returns it, we drop
    it before decoding, so latent outputs agree from the second frame on."""
    ours, reference = load_pair(hub_folders, "v2v", "1.5-5b")
    kwargs = dict(video=None, latents=start_latents((1, 6, 4, 2, 2)), output_type="latent")
    expected = reference(**call_kwargs("v2v", "1.5-5b", **kwargs, max_sequence_length=TINY_MAX_TEXT_LENGTH)).frames
    got = ours(**call_kwargs("v2v", "1.5-5b", **kwargs)).frames
    assert expected.shape[1] == 6 and got.shape[1] == 5
    assert max_abs(got, expected[:, 1:]) <= 1e-4


@pytest.mark.parametrize("variant, num_frames", [("2b", 9), ("1.5-5b", 17)])
def test_video_to_video_latents_are_the_noised_video(variant, num_frames):
    """The latents a video call starts from, built by hand and passed in, give the same video."""
    pipe = quiet(tiny_pipeline(variant, "v2v"))
    video = random_video(num_frames)
    expected = pipe(**call_kwargs("v2v", variant, video=video, generator=gen(3))).frames
    generator = gen(3)  # encoding, then noising, draw from it in this order
    pixels = pipe.video_processor.preprocess_video(video, height=16, width=16)
    _, pad = pipe.latent_frame_layout(num_frames)
    clean = pipe.prepare_video_latents(pixels, pad, generator, torch.float32)
    pipe.scheduler.set_timesteps(2)
    timesteps, _ = strength_timesteps(pipe.scheduler.timesteps, 0.8)
    latents = pipe.noise_to_strength(clean, timesteps[:1], generator)
    got = pipe(**call_kwargs("v2v", variant, video=None, latents=latents, generator=gen(99))).frames
    assert got.shape == expected.shape == (1, num_frames, 3, 16, 16)
    assert max_abs(got, expected) <= 1e-5


def test_video_to_video_latents_errors():
    pipe = quiet(tiny_pipeline("2b", "v2v"))
    cases = [
        (dict(latents=start_latents((1, 3, 4, 2, 2))), "pass either `video` or `latents`"),
        (dict(video=None), r"needs a `video` \(or the `latents` to start from\)"),
        (dict(video=None, latents=start_latents((3, 4, 2, 2))), "`latents` must be a 5D tensor"),
        (dict(video=None, latents=start_latents((1, 4, 4, 2, 2))), r"3, 5, 7, 9, 11, 13 latent frames .* got 4"),
        (dict(video=None, latents=start_latents((1, 3, 4, 2, 2)), num_videos_per_prompt=2), r"shape \(2, 3, 4, 2, 2\)"),
    ]
    for overrides, message in cases:
        with pytest.raises(ValueError, match=message):
            pipe(**call_kwargs("v2v", "2b", **overrides))


def test_video_to_video_latents_with_num_videos_per_prompt():
    pipe = quiet(tiny_pipeline("2b", "v2v"))
    latents = start_latents((2, 3, 4, 2, 2))
    both = pipe(**call_kwargs("v2v", "2b", video=None, latents=latents, num_videos_per_prompt=2)).frames
    first = pipe(**call_kwargs("v2v", "2b", video=None, latents=latents[:1])).frames
    assert both.shape == (2, 9, 3, 16, 16) and max_abs(both[:1], first) <= 1e-5


# ----------------------------------------------------------------------------------------------------------------------
# Callbacks that change the guidance scale; diffusers' callback classes
# ----------------------------------------------------------------------------------------------------------------------

CALLBACK_CASES = [("t2v", "5b"), ("i2v", "5b-i2v"), ("v2v", "2b")]


def set_scale_at(step: int, scale: float):
    """A plain callback that leaves ``scale`` in ``pipe._guidance_scale`` after ``step`` (what diffusers reads)."""

    def callback(pipe, step_index, timestep, tensors):
        if step_index == step:
            pipe._guidance_scale = scale
        return tensors

    return callback


@contextmanager
def transformer_batches(pipe):
    """The batch size of every transformer call made inside the block: 2 per video while guiding, else 1."""
    batches = []
    hook = pipe.transformer.register_forward_pre_hook(
        lambda module, args, kwargs: batches.append(len(kwargs["hidden_states"])), with_kwargs=True
    )
    try:
        yield batches
    finally:
        hook.remove()


def cutoff(**config) -> SDCFGCutoffCallback:
    return SDCFGCutoffCallback(**{"cutoff_step_ratio": None, **config})


@pytest.mark.parametrize("kind, variant", CALLBACK_CASES)
def test_cfg_cutoff_callback_equals_guidance_one_after_the_cutoff(hub_folders, kind, variant):  # noqa: F811
    """diffusers' ``SDCFGCutoffCallback`` (guidance 0 and only the positive embeddings after the cut-off step) gives
    what diffusers' own pipeline gives when a callback sets the scale to 1 there (diffusers' CogVideoX pipelines cannot
    run the cut-off callback itself: their batch stays doubled)."""
    ours, reference = load_pair(hub_folders, kind, variant)
    kwargs = dict(num_inference_steps=4, guidance_scale=6.0)
    expected = reference(
        **call_kwargs(kind, variant, **kwargs, max_sequence_length=16), callback_on_step_end=set_scale_at(1, 1.0)
    ).frames
    got = ours(**call_kwargs(kind, variant, **kwargs), callback_on_step_end=cutoff(cutoff_step_index=1)).frames
    assert max_abs(got, expected) <= 1e-4
    guided_throughout = ours(**call_kwargs(kind, variant, **kwargs)).frames
    assert max_abs(got, guided_throughout) > 1e-3  # the cut-off changed the result
    with pytest.raises(RuntimeError, match="Sizes of tensors must match"):  # if this starts running, compare with it
        reference(
            **call_kwargs(kind, variant, **kwargs, max_sequence_length=16),
            callback_on_step_end=cutoff(cutoff_step_index=1),
        )


def test_cfg_cutoff_by_ratio_and_the_transformer_passes(t2v_5b):
    """``cutoff_step_ratio`` 0.5 of 4 steps cuts after step 2; from then on one conditional pass per step."""
    with transformer_batches(t2v_5b) as batches:
        by_ratio = t2v_5b(
            **call_kwargs("t2v", "5b", num_inference_steps=4), callback_on_step_end=cutoff(cutoff_step_ratio=0.5)
        ).frames
    assert batches == [2, 2, 2, 1]
    by_index = t2v_5b(
        **call_kwargs("t2v", "5b", num_inference_steps=4), callback_on_step_end=cutoff(cutoff_step_index=2)
    ).frames
    assert torch.equal(by_ratio, by_index)


def test_scale_from_a_callback_wins_over_dynamic_cfg(t2v_5b, monkeypatch):
    """With dynamic CFG, a callback's new scale is used unchanged from the next step on (diffusers overwrites it)."""
    seen = []

    def callback(pipe, step_index, timestep, tensors):
        seen.append(pipe.guidance_scale)
        if step_index == 1:
            pipe._guidance_scale = 2.5
        return tensors

    def dynamic_call(**kwargs):  # a fresh generator each time
        return t2v_5b(
            **call_kwargs("t2v", "5b", num_inference_steps=4, guidance_scale=6.0, use_dynamic_cfg=True), **kwargs
        )

    got = dynamic_call(callback_on_step_end=callback).frames
    dynamic = [GuidanceSchedule(6.0, True, "step", 4).scale_at(i, None, 4) for i in range(4)]
    assert seen == pytest.approx(dynamic[:2] + [2.5, 2.5])

    scale_at = GuidanceSchedule.scale_at  # the same call with the schedule itself switching to 2.5 after step 1
    monkeypatch.setattr(GuidanceSchedule, "scale_at", lambda self, i, t, n: scale_at(self, i, t, n) if i <= 1 else 2.5)
    assert torch.equal(got, dynamic_call().frames)
    monkeypatch.undo()
    assert max_abs(got, dynamic_call().frames) > 1e-3  # the callback changed the result


def test_plain_callback_scale_equals_reference(hub_folders):  # noqa: F811
    """Without dynamic CFG, a callback's scale applies from the next step in both pipelines."""
    ours, reference = load_pair(hub_folders, "t2v", "5b")
    kwargs = dict(num_inference_steps=3, guidance_scale=6.0)
    callback = set_scale_at(0, 3.0)
    expected = reference(**call_kwargs("t2v", "5b", **kwargs, max_sequence_length=16), callback_on_step_end=callback)
    got = ours(**call_kwargs("t2v", "5b", **kwargs), callback_on_step_end=callback)
    assert max_abs(got.frames, expected.frames) <= 1e-4


def test_guidance_can_come_back_and_is_checked(t2v_5b):
    def off_then_on(pipe, step_index, timestep, tensors):
        pipe._guidance_scale = 0.0 if step_index == 0 else 4.0
        return tensors

    with transformer_batches(t2v_5b) as batches:
        t2v_5b(**call_kwargs("t2v", "5b", num_inference_steps=3), callback_on_step_end=off_then_on)
    assert batches == [2, 1, 2]
    with pytest.raises(ValueError, match="started with guidance_scale <= 1, so no negative prompt embeddings"):
        t2v_5b(**call_kwargs("t2v", "5b", guidance_scale=1.0), callback_on_step_end=set_scale_at(0, 5.0))
    with pytest.raises(ValueError, match="it must be a number"):
        t2v_5b(**call_kwargs("t2v", "5b"), callback_on_step_end=set_scale_at(0, "high"))


def test_cutoff_callback_on_a_batch_names_the_rows_it_left(t2v_5b):
    """``SDCFGCutoffCallback`` keeps the last row only (``prompt_embeds[-1:]``), one video's worth."""
    with pytest.raises(ValueError, match=r"must have 2 rows \(one per video\) or 4 .* got 1"):
        t2v_5b(**call_kwargs("t2v", "5b", num_inference_steps=3, num_videos_per_prompt=2, generator=[gen(0), gen(1)]),
               callback_on_step_end=cutoff(cutoff_step_index=0))  # fmt: skip


def test_multi_pipeline_callbacks_run_in_order(t2v_5b):
    class Record(PipelineCallback):
        tensor_inputs = ["prompt_embeds"]

        def callback_fn(self, pipeline, step_index, timestep, callback_kwargs):
            self.rows = [*getattr(self, "rows", []), len(callback_kwargs["prompt_embeds"])]
            return callback_kwargs

    record = Record()
    both = MultiPipelineCallbacks([cutoff(cutoff_step_index=1), record])
    got = t2v_5b(**call_kwargs("t2v", "5b", num_inference_steps=3), callback_on_step_end=both).frames
    assert record.rows == [2, 1, 1]
    alone = t2v_5b(**call_kwargs("t2v", "5b", num_inference_steps=3), callback_on_step_end=cutoff(cutoff_step_index=1))
    assert torch.equal(got, alone.frames)


@pytest.mark.parametrize("callback_class", [SDXLCFGCutoffCallback, SD3CFGCutoffCallback, IPAdapterScaleCutoffCallback])
def test_other_pipelines_callbacks_fail_as_in_diffusers(hub_folders, callback_class):  # noqa: F811
    """Callbacks made for SDXL, SD3 or IP adapters ask for tensors or methods CogVideoX has not: same exception."""
    ours, reference = load_pair(hub_folders, "t2v", "5b")
    callback = callback_class(cutoff_step_ratio=None, cutoff_step_index=0)
    expected = raised(
        lambda: reference(**call_kwargs("t2v", "5b", max_sequence_length=16), callback_on_step_end=callback)
    )
    got_type, _ = raised(lambda: ours(**call_kwargs("t2v", "5b"), callback_on_step_end=callback))
    assert got_type is expected[0]


def test_dpm_scheduler_cutoff(hub_folders):  # noqa: F811
    """The cut-off also holds with the DPM-Solver++ scheduler (noise drawn every step)."""
    ours, reference = load_pair(hub_folders, "t2v", "5b")
    for pipe in (ours, reference):
        pipe.scheduler = CogVideoXDPMScheduler.from_config(pipe.scheduler.config)
    kwargs = dict(num_inference_steps=3)
    expected = reference(
        **call_kwargs("t2v", "5b", **kwargs, max_sequence_length=16), callback_on_step_end=set_scale_at(0, 1.0)
    )
    got = ours(**call_kwargs("t2v", "5b", **kwargs), callback_on_step_end=cutoff(cutoff_step_index=0))
    assert max_abs(got.frames, expected.frames) <= 1e-4


@pytest.fixture(scope="module")
def t2v_5b():
    return quiet(tiny_pipeline("5b", "t2v"))
