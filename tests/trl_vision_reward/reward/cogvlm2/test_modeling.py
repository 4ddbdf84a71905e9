"""CogVLM2 / CogVLM2-Video modeling: forward, KV-cache generation, prefix reuse, expert routing, positions, errors."""

import pytest
import torch
from transformers import DynamicCache

from trl_vision_reward.reward.cogvlm2 import (
    LANGUAGE_TOKEN_TYPE,
    VISION_TOKEN_TYPE,
    build_position_ids,
    vision_expert_mask,
)
from trl_vision_reward.reward.cogvlm2.tiny import tiny_cogvlm2_model, tiny_cogvlm2_processor

from .conftest import media_inputs, random_frames, random_image

L, V = LANGUAGE_TOKEN_TYPE, VISION_TOKEN_TYPE


def test_position_ids_advance_by_three_per_image_block():
    # [bos, boi, patch, patch, eoi, text, text]: the patches share one position
    types = torch.tensor([[L, V, V, V, V, L, L]])
    assert build_position_ids(types).tolist() == [[0, 1, 2, 2, 3, 4, 5]]
    # padding does not advance; two frames each followed by a one-token time index. As upstream, a padded row starts
    # one later (the first position is never counted); RoPE only sees differences, so that changes nothing.
    types = torch.tensor([[L, L, V, V, V, V, L, V, V, V, V, L]])
    mask = torch.tensor([[0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]])
    assert build_position_ids(types, mask).tolist() == [[0, 1, 2, 3, 3, 4, 5, 6, 7, 7, 8, 9]]


def test_vision_expert_mask_routes_boi_and_patches_not_eoi():
    types = torch.tensor([[L, V, V, V, V, L, V, V, V, L]])
    assert vision_expert_mask(types).tolist() == [[False, True, True, True, False, False, True, True, False, False]]


def test_forward_shapes_and_cache(model, processor, video):
    inputs = media_inputs(processor, video, ["Question: Is the image clear? Short answer:"])
    num_images = 3 if video else 1
    assert inputs["pixel_values"].shape == (num_images, 3, 28, 28)
    assert int((inputs["token_type_ids"] == V).sum()) == num_images * processor.tokens_per_image
    with torch.no_grad():
        out = model(**inputs, use_cache=True)
    assert out.logits.shape == (1, inputs["input_ids"].shape[1], model.config.vocab_size)
    assert out.logits.dtype == torch.float32
    assert isinstance(out.cache, DynamicCache) and out.cache.get_seq_length() == inputs["input_ids"].shape[1]


def test_generate_with_cache_equals_without(model, processor, video):
    texts = ["Question: Is the image clear? Short answer:", "Question: Is there a man? Answer:"]
    inputs = media_inputs(processor, video, texts)
    assert (inputs["attention_mask"][:, 0] == 0).any(), "the batch should be left padded"
    kwargs = dict(max_new_tokens=6, do_sample=False, pad_token_id=processor.pad_token_id)
    with torch.no_grad():
        cached = model.generate(**inputs, use_cache=True, **kwargs)
        uncached = model.generate(**inputs, use_cache=False, **kwargs)
    assert cached.shape == (2, inputs["input_ids"].shape[1] + 6)
    assert torch.equal(cached, uncached)


@pytest.mark.parametrize("continuation", ["rope_deltas", "attention_mask", "full_token_type_ids"])
def test_prefix_cache_then_question_batch_equals_full_forward(model, processor, video, continuation):
    """The batched prefix path: media once, its cache repeated over questions whose tokens are all text."""
    prefix = media_inputs(processor, video, ["Question:"])
    tokenizer = processor.tokenizer
    questions = [" Is the image clear? Short answer:", " Is it? Short answer:", " Are the colors harmonious? Answer:"]
    suffixes = [tokenizer.encode(q, add_special_tokens=False) for q in questions]
    with torch.no_grad():
        cache = model(**prefix, use_cache=True).cache
        cache.batch_repeat_interleave(len(suffixes))
        width = max(map(len, suffixes))
        ids = torch.full((len(suffixes), width), processor.pad_token_id)
        mask = torch.zeros(len(suffixes), prefix["input_ids"].shape[1] + width, dtype=torch.long)
        mask[:, : prefix["input_ids"].shape[1]] = 1
        for row, suffix in enumerate(suffixes):
            ids[row, : len(suffix)] = torch.tensor(suffix)
            mask[row, prefix["input_ids"].shape[1] : prefix["input_ids"].shape[1] + len(suffix)] = 1
        extra = {}
        if continuation == "attention_mask":
            extra["attention_mask"] = mask
        elif continuation == "full_token_type_ids":
            extra["token_type_ids"] = torch.cat(
                [prefix["token_type_ids"].repeat(len(suffixes), 1), torch.zeros_like(ids)], dim=1
            )
            model.model.rope_deltas = None  # prove the positions come from the token types alone
        batched = model(input_ids=ids, past_key_values=cache, use_cache=True, **extra).logits

        for row, suffix in enumerate(suffixes):
            full = dict(prefix)
            full["input_ids"] = torch.cat([prefix["input_ids"], torch.tensor([suffix])], dim=1)
            full["attention_mask"] = torch.ones_like(full["input_ids"])
            full["token_type_ids"] = torch.cat(
                [prefix["token_type_ids"], torch.zeros(1, len(suffix), dtype=torch.long)], 1
            )
            reference = model(**full, use_cache=False).logits[0, -len(suffix) :]
            torch.testing.assert_close(batched[row, : len(suffix)], reference, rtol=1e-4, atol=1e-4)


def test_continuing_a_cache_without_positions_says_what_is_needed(model, processor, video):
    prefix = media_inputs(processor, video, ["Question:"])
    with torch.no_grad():
        cache = model(**prefix, use_cache=True).cache
        model.model.rope_deltas = None
        with pytest.raises(ValueError, match="pass position_ids, or token_type_ids covering the cached tokens"):
            model(input_ids=torch.tensor([[5, 6]]), past_key_values=cache)


def _perturb(module, scale=0.5):
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.add_(torch.randn_like(parameter) * scale)


def test_expert_routing_each_expert_touches_only_its_own_positions():
    """Vision positions (boi + patches) go through the vision expert; eoi, time indices and text through the language one."""
    video = False
    model, processor = tiny_cogvlm2_model(), tiny_cogvlm2_processor()
    inputs = media_inputs(processor, video, ["Question: Is the image clear? Short answer:"])
    routed_to_vision = vision_expert_mask(inputs["token_type_ids"])[0]
    assert routed_to_vision.any() and (~routed_to_vision).any()
    layer = model.model.layers[0]

    def first_layer(m):
        with torch.no_grad():
            out = m(**inputs, use_cache=True, output_hidden_states=True)
        keys, values = out.cache.layers[0].keys, out.cache.layers[0].values  # (1, kv_heads, length, head_dim)
        return out.hidden_states[1][0], torch.cat([keys, values], dim=1)[0].transpose(0, 1)

    hidden, kv = first_layer(model)
    for expert, expected in (("vision", routed_to_vision), ("language", ~routed_to_vision)):
        perturbed = tiny_cogvlm2_model(video=video)
        target = perturbed.model.layers[0]
        # per-position maps (output projection + MLP): only the expert's positions of the first layer's output move
        _perturb(getattr(target.self_attn, f"{expert}_expert_dense"))
        _perturb(getattr(target.mlp, f"{expert}_mlp"))
        changed = ~torch.isclose(first_layer(perturbed)[0], hidden, atol=1e-6).all(-1)
        assert torch.equal(changed, expected), expert
        # the QKV projection: only the expert's positions of the cached keys/values move
        perturbed = tiny_cogvlm2_model(video=video)
        _perturb(getattr(perturbed.model.layers[0].self_attn, f"{expert}_expert_query_key_value"))
        changed = ~torch.isclose(first_layer(perturbed)[1], kv, atol=1e-6).flatten(1).all(-1)
        assert torch.equal(changed, expected), expert
    assert layer is model.model.layers[0]


def test_video_model_sends_every_position_through_the_language_expert():
    """The official CogVLMVideoForCausalLM keeps only the language expert: image positions use it too."""
    model, processor = tiny_cogvlm2_model(video=True), tiny_cogvlm2_processor(video=True)
    layer = model.model.layers[0]
    assert layer.self_attn.vision_expert_query_key_value is None and layer.mlp.vision_mlp is None
    inputs = media_inputs(processor, True, ["Question: Is it clear? Answer:"])
    with torch.no_grad():
        hidden = model(**inputs, output_hidden_states=True).hidden_states[1][0]
        _perturb(layer.mlp.language_mlp)
        perturbed = model(**inputs, output_hidden_states=True).hidden_states[1][0]
    assert (~torch.isclose(perturbed, hidden, atol=1e-6).all(-1)).all()


def test_mm_token_type_ids_is_accepted_for_token_type_ids(model, processor, video):
    inputs = media_inputs(processor, video, ["Question: Is it? Short answer:"])
    with torch.no_grad():
        reference = model(**inputs).logits
        inputs["mm_token_type_ids"] = inputs.pop("token_type_ids")
        torch.testing.assert_close(model(**inputs).logits, reference)


def test_eager_attention_matches_sdpa(video):
    processor = tiny_cogvlm2_processor(video=video)
    texts = ["Question: Is it clear? Short answer:", "no"]
    if video:
        inputs = processor(text=texts, videos=[random_frames(2), random_frames(3, seed=1)])
    else:
        inputs = processor(text=texts, images=[random_image(0), random_image(1)])
    sdpa = tiny_cogvlm2_model(video=video)
    eager = tiny_cogvlm2_model(video=video, attn_implementation="eager")
    assert eager.config._attn_implementation == "eager" and sdpa.config._attn_implementation == "sdpa"
    with torch.no_grad():
        mask = inputs["attention_mask"].bool()
        torch.testing.assert_close(eager(**inputs).logits[mask], sdpa(**inputs).logits[mask], rtol=1e-4, atol=1e-4)


def test_gradient_checkpointing_gives_the_same_gradients(processor, video):
    inputs = media_inputs(processor, video, ["Question: Is it clear? Short answer: yes"])
    labels = inputs["input_ids"].masked_fill(inputs["token_type_ids"] == V, -100)

    def gradients(checkpointing):
        model = tiny_cogvlm2_model(video=video).train()
        if checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            assert model.model.layers[0].gradient_checkpointing
        loss = model(**inputs, labels=labels).loss
        loss.backward()
        return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    loss, grads = gradients(False)
    loss_ckpt, grads_ckpt = gradients(True)
    torch.testing.assert_close(loss_ckpt, loss)
    assert grads.keys() == grads_ckpt.keys()
    assert any("model.vision.transformer" in name for name in grads)
    assert any("vision_expert" in name for name in grads) != video  # CogVLM2-Video has no vision expert
    for name in grads:
        torch.testing.assert_close(grads_ckpt[name], grads[name], rtol=1e-4, atol=1e-6)


def test_pixel_values_of_the_wrong_size_are_refused(model, processor, video):
    inputs = media_inputs(processor, video, ["Question: Is it? Short answer:"])
    inputs["pixel_values"] = torch.zeros(inputs["pixel_values"].shape[0], 3, 32, 32)
    with pytest.raises(ValueError, match=r"pixel_values must have shape \(num_images, 3, 28, 28\)"):
        model(**inputs)


def test_image_count_must_match_the_vision_positions(model, processor, video):
    inputs = media_inputs(processor, video, ["Question: Is it? Short answer:"])
    inputs["pixel_values"] = inputs["pixel_values"][:1].repeat(4, 1, 1, 1)
    with pytest.raises(ValueError, match=r"token_type_ids mark \d+ vision positions"):
        model(**inputs)
    del inputs["pixel_values"]
    with pytest.raises(ValueError, match="no pixel_values were given"):
        model(**inputs)


def test_text_only_forward_needs_no_pixels(model, processor):
    inputs = processor(text=["Question: Is it? Short answer:"])
    assert "pixel_values" not in inputs and (inputs["token_type_ids"] == L).all()
    with torch.no_grad():
        assert model(**inputs).logits.isfinite().all()
