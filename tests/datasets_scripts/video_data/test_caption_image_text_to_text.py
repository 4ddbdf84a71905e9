"""The ``image-text-to-text`` captioner backend on a tiny LLaVA saved in the Hub layout: frames go in as images
(LLaVA's processor has no video processor), through ``AutoModelForImageTextToText`` / ``AutoProcessor`` exactly as a
real checkpoint would load, and from the ``vr-datasets caption`` command."""

from __future__ import annotations

import pytest
import torch

from datasets_scripts.video_data.caption import (
    OFFICIAL_CAPTION_PROMPT,
    ImageTextToTextCaptioner,
    caption_frames,
    load_captioner,
)
from diffusers_cogvideox.records import load_clips

from . import synthetic

IMAGE_TOKEN = "<image>"
CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] }}: {% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}<image>{% else %}{{ c['text'] }}{% endif %}{% endfor %}{{ '\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}assistant: {% endif %}"
)


def save_tiny_llava(folder) -> str:
    """A random 32-wide LLaVA (CLIP tower, Llama LM) with a locally trained byte-level BPE tokenizer; PIL image
    processor, so no torchvision is needed."""
    from transformers import (
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
        PreTrainedTokenizerFast,
    )
    from transformers.models.clip import CLIPImageProcessorPil

    from trl_vision_reward.reward.tiny import _corpus, train_byte_level_bpe

    bpe = train_byte_level_bpe(_corpus(), 400, ["<|endoftext|>", IMAGE_TOKEN, "<pad>"])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|endoftext|>", pad_token="<pad>")
    processor = LlavaProcessor(
        image_processor=CLIPImageProcessorPil(size={"shortest_edge": 28}, crop_size={"height": 28, "width": 28}),
        tokenizer=tokenizer,
        patch_size=14,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,  # CLIP's class token, dropped by the "default" strategy
        chat_template=CHAT_TEMPLATE,
    )
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=28,
            patch_size=14,
        ),
        text_config=LlamaConfig(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=2,
            vocab_size=len(tokenizer),
        ),
        image_token_id=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
        vision_feature_layer=-1,
    )
    torch.manual_seed(0)
    LlavaForConditionalGeneration(config).save_pretrained(folder)
    processor.save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def llava_folder(tmp_path_factory):
    return save_tiny_llava(tmp_path_factory.mktemp("tiny-llava"))


@pytest.fixture(scope="module")
def captioner(llava_folder):
    return load_captioner(llava_folder, "image-text-to-text", max_new_tokens=5)


def test_frames_go_in_as_images_after_the_official_prompt(captioner, tmp_path):
    assert isinstance(captioner, ImageTextToTextCaptioner)
    frames = caption_frames(synthetic.write(synthetic.moving(0, 27), tmp_path / "a.mp4"))
    inputs = captioner.inputs([frames])
    assert inputs["pixel_values"].shape[0] == len(frames) == 4
    tokenizer = captioner.processor.tokenizer
    ids = inputs["input_ids"][0].tolist()
    # one image per sampled frame, 2x2 patch tokens each (CLIP's class token is dropped by the "default" strategy)
    assert ids.count(tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)) == 4 * 4
    assert tokenizer.decode(ids).endswith(f"{OFFICIAL_CAPTION_PROMPT}\nassistant: ")


def test_batched_captions_equal_one_at_a_time(captioner, clip_set):
    paths = [clip_set["moving"][0], clip_set["cut"][1], clip_set["static"][0]]
    captions = captioner(paths)
    assert [c.text for c in captions] == [captioner([p])[0].text for p in paths]
    assert all(c.new_tokens <= 5 for c in captions)


def test_caption_command_writes_clips_with_the_image_text_to_text_backend(llava_folder, tmp_path):
    from datasets_scripts.cli import main

    folder = tmp_path / "in"
    for kind in ("moving", "cut"):
        synthetic.write(synthetic.KINDS[kind](0), folder / f"{kind}.mp4")
    out = tmp_path / "captions"
    args = ["caption", "--clips", str(folder), "--out", str(out), "--model", llava_folder]  # 4 tokens: cut off, kept
    assert (
        main(
            [*args, "--backend", "image-text-to-text", "--max-new-tokens", "4", "--truncated", "keep", "--no-progress"]
        )
        == 0
    )
    clips = load_clips(out)
    assert sorted(c.clip_id.split("-")[0] for c in clips) == ["cut", "moving"]
    assert all(c.caption.strip() for c in clips)
