"""VisionReward prompt templates for the CogVLM2 backbones, in the form ``VisionRewardProcessor`` takes.

Official layouts (what the checkpoints were fine-tuned and evaluated on):

- VisionReward-Image (SAT, ``inference-image.py`` with ``--version vqa``): the prompt ``<EOI>Question: {q} Short
  answer:``, where ``<EOI>`` stands for the image block right after ``bos`` (SAT's ``llama2_text_processor_inference``
  puts ``image_length + 2`` slots - boi, patches, eoi - there). Same sequence as the transformers CogVLM2 ``vqa``
  template (``Question: {q} Short answer:`` after the image). Answer: ``yes<|end_of_text|>`` = "yes".
- VisionReward-Video (``inference-video.py``, ``template_version="chat"`` of CogVLM2-Video): ``bos``, then per frame
  its 66 slots followed by its time index as text (``"0"``, ``"1"``, ...), then ``Question: {q} Answer:``; the first
  generated token decoded is compared with ``"yes"``. The released script reads questions with ``readlines()``, so
  each question but the file's last ends with a newline (``Question: ...?\n Answer:``); ``VisionRewardScorer`` asks
  them that way for this template by default (``question_text``, ``official_question_texts`` in ``..scoring``).

The answers are the bare words ``yes``/``no`` right after the cue - the fine-tuning targets were encoded on their
own (``tokenizer.encode(answer)`` upstream), without a leading space.

``VisionRewardProcessor`` builds the prefix as ``prefix.replace("{media}", blocks)`` with one ``image_block`` per image
or frame, and marks the placeholder token in ``mm_token_type_ids``, which this package's model reads as its token
types. The per-frame time index is the ``{frame_index}`` field of the video ``image_block``.
"""

from __future__ import annotations

from ..processing_vision_reward import PromptTemplate, VisionRewardProcessor, register_prompt_template
from .configuration_cogvlm2 import VISION_TOKEN_TYPE
from .processing_cogvlm2 import CogVLM2Processor

BOS_TOKEN = "<|begin_of_text|>"  # Llama-3 bos (id 128000)
SLOT_TOKEN = "<|reserved_special_token_0|>"  # id 128002, the vision slot of the official code
IMAGE_QUESTION = "Question: {question} Short answer:"  # VisionReward-Image, SAT "vqa" (<EOI> = the image block)
VIDEO_QUESTION = "Question: {question} Answer:"  # VisionReward-Video, CogVLM2-Video "chat"
FRAME_INDEX_FIELD = "{frame_index}"


def cogvlm2_prompt_template(
    video: bool = False, tokens_per_image: int | None = None, bos_token: str = BOS_TOKEN, slot_token: str = SLOT_TOKEN
) -> PromptTemplate:
    """The VisionReward template of CogVLM2 (image, 2306 slots per image) or CogVLM2-Video (66 slots per frame)."""
    if tokens_per_image is None:
        tokens_per_image = 66 if video else 2306
    return PromptTemplate(
        name="cogvlm2_video" if video else "cogvlm2",
        prefix=bos_token + "{media}",
        image_block="{image_tokens}" + (FRAME_INDEX_FIELD if video else ""),
        image_token=slot_token,
        image_seq_length=tokens_per_image,
        frame_separator="",
        question=VIDEO_QUESTION if video else IMAGE_QUESTION,
        yes="yes",
        no="no",
        mm_token_type_ids=True,
    )


# The full-size checkpoints' templates, by name ("cogvlm2", "cogvlm2_video").
COGVLM2_IMAGE_TEMPLATE = register_prompt_template(cogvlm2_prompt_template(video=False), exist_ok=True)
COGVLM2_VIDEO_TEMPLATE = register_prompt_template(cogvlm2_prompt_template(video=True), exist_ok=True)


def vision_reward_processor(processor: CogVLM2Processor, video: bool | None = None, **kwargs) -> VisionRewardProcessor:
    """A ``VisionRewardProcessor`` over a CogVLM2 processor's image processor and tokenizer, with the right template.

    Checks that the generic processor reproduces the official layout of ``CogVLM2Processor`` (token ids and token
    types of the prefix) for two frames or one image, and raises if it does not.
    """
    image_processor = processor.image_processor
    video = image_processor.is_video if video is None else video
    template = cogvlm2_prompt_template(
        video=video,
        tokens_per_image=image_processor.tokens_per_image,
        bos_token=processor.tokenizer.bos_token,
        slot_token=processor.tokenizer.convert_ids_to_tokens(processor.pad_token_id),
    )
    reward_processor = VisionRewardProcessor(
        image_processor, processor.tokenizer, prompt_template=template, max_frames=processor.max_num_frames, **kwargs
    )
    check_prefix_layout(reward_processor, processor, video)
    return reward_processor


def check_prefix_layout(reward_processor: VisionRewardProcessor, processor: CogVLM2Processor, video: bool) -> None:
    """Raise unless the generic prefix equals ``CogVLM2Processor``'s (ids, token types) for the same media."""
    from PIL import Image

    frames = [Image.new("RGB", (32, 32), (i * 40, 0, 0)) for i in range(2 if video else 1)]
    generic = reward_processor.prefix_inputs(frames)
    if video:
        reference = processor(text="", videos=[frames], padding_side="right")
    else:
        reference = processor(text="", images=[frames[0]], padding_side="right")
    same_ids = generic["input_ids"].tolist() == reference["input_ids"].tolist()
    types = generic.get("mm_token_type_ids")
    same_types = (
        types is not None
        and (types == VISION_TOKEN_TYPE).tolist() == (reference["token_type_ids"] == VISION_TOKEN_TYPE).tolist()
    )
    if not (same_ids and same_types):
        raise NotImplementedError(
            "VisionRewardProcessor does not reproduce the official CogVLM2 prefix "
            f"({'frames each followed by its time index' if video else 'bos + image slots'}): generic ids "
            f"{generic['input_ids'].tolist()[0][:12]}... vs official {reference['input_ids'].tolist()[0][:12]}...; "
            f"the video template needs `{FRAME_INDEX_FIELD}` in `image_block` filled with the frame's index"
        )


__all__ = [
    "COGVLM2_IMAGE_TEMPLATE",
    "COGVLM2_VIDEO_TEMPLATE",
    "IMAGE_QUESTION",
    "VIDEO_QUESTION",
    "check_prefix_layout",
    "cogvlm2_prompt_template",
    "vision_reward_processor",
]
