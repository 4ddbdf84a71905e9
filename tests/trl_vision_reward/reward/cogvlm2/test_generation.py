"""Greedy ``generate`` equals step-by-step ``forward`` with the official positions (not transformers' generic ones)."""

import pytest
import torch

from trl_vision_reward.reward.cogvlm2 import LANGUAGE_TOKEN_TYPE, build_position_ids

from .conftest import media_inputs

STEPS = 4


def step_by_step(model, inputs, steps=STEPS):
    """The official decoding loop without a cache: positions rebuilt from all token types and the mask every step."""
    ids, types, mask = inputs["input_ids"], inputs["token_type_ids"], inputs["attention_mask"]
    logits = []
    with torch.no_grad():
        for _ in range(steps):
            out = model(
                input_ids=ids,
                pixel_values=inputs.get("pixel_values"),
                token_type_ids=types,
                attention_mask=mask,
                position_ids=build_position_ids(types, mask),
                use_cache=False,
            )
            logits.append(out.logits[:, -1])
            token = out.logits[:, -1].argmax(-1, keepdim=True)
            ids = torch.cat([ids, token], dim=1)
            types = torch.cat([types, torch.full_like(token, LANGUAGE_TOKEN_TYPE)], dim=1)
            mask = torch.cat([mask, torch.ones_like(token)], dim=1)
    return ids, torch.stack(logits, dim=1)


@pytest.mark.parametrize("use_cache", [True, False], ids=["cache", "no-cache"])
@pytest.mark.parametrize("batch", [1, 2])
def test_greedy_generate_equals_step_by_step_forward(model, processor, video, use_cache, batch):
    texts = ["Question: Is the image clear? Short answer:", "Question: Is there a man? Answer:"][:batch]
    inputs = media_inputs(processor, video, texts)
    if batch == 2:
        assert (inputs["attention_mask"][:, 0] == 0).any(), "the batch should be left padded"
    expected_ids, expected_logits = step_by_step(model, inputs)
    with torch.no_grad():
        out = model.generate(
            **inputs,
            max_new_tokens=STEPS,
            do_sample=False,
            use_cache=use_cache,
            pad_token_id=processor.pad_token_id,
            eos_token_id=None,
            output_logits=True,
            return_dict_in_generate=True,
        )
    assert torch.equal(out.sequences, expected_ids)
    torch.testing.assert_close(torch.stack(out.logits, dim=1), expected_logits, rtol=1e-5, atol=1e-5)


def test_generic_cumsum_positions_would_change_the_first_step(model, processor, video):
    """What the override fixes: positions ``mask.cumsum(-1) - 1`` move the logits of the last prompt position."""
    inputs = media_inputs(processor, video, ["Question: Is the image clear? Short answer:"])
    _, official = step_by_step(model, inputs, steps=1)
    with torch.no_grad():
        generic = model(**inputs, position_ids=inputs["attention_mask"].cumsum(-1) - 1).logits[:, -1]
    assert (generic - official[:, 0]).abs().max() > 1e-4


def test_mm_token_type_ids_give_the_same_generation(model, processor, video):
    """The VisionReward processor names the token types ``mm_token_type_ids``; generate reads them the same way."""
    inputs = media_inputs(processor, video, ["Question: Is it clear? Answer:"])
    kwargs = dict(max_new_tokens=STEPS, do_sample=False, pad_token_id=processor.pad_token_id, eos_token_id=None)
    with torch.no_grad():
        reference = model.generate(**inputs, **kwargs)
        inputs["mm_token_type_ids"] = inputs.pop("token_type_ids")
        assert torch.equal(model.generate(**inputs, **kwargs), reference)
