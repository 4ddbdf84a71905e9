"""CogVLM2 processor: the official layouts (image block, frames with time indices), pixels, saving, bad inputs."""

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoProcessor

from trl_vision_reward.reward.cogvlm2 import CogVLM2ImageProcessor
from trl_vision_reward.reward.cogvlm2.configuration_cogvlm2 import CogVLM2Config, CogVLM2VideoConfig
from trl_vision_reward.reward.cogvlm2.tiny import tiny_cogvlm2_processor

from .conftest import random_frames, random_image

V = 1


def test_image_layout_is_bos_image_block_text():
    processor = tiny_cogvlm2_processor()
    tokenizer = processor.tokenizer
    text = "Question: Is the image clear? Short answer:"
    inputs = processor(text=text, images=random_image())
    slots = processor.tokens_per_image
    expected = (
        [tokenizer.bos_token_id] + [processor.pad_token_id] * slots + tokenizer.encode(text, add_special_tokens=False)
    )
    assert inputs["input_ids"][0].tolist() == expected
    assert inputs["token_type_ids"][0].tolist() == [0] + [V] * slots + [0] * (len(expected) - slots - 1)
    assert inputs["attention_mask"].all()


def test_video_layout_puts_each_frames_time_index_after_it():
    processor = tiny_cogvlm2_processor(video=True)
    tokenizer = processor.tokenizer
    inputs = processor(
        text="Question: Is there a man? Answer:", videos=[random_frames(3)], video_time_indices=[[0, 1, 12]]
    )
    slots = processor.tokens_per_image
    ids, types = inputs["input_ids"][0].tolist(), inputs["token_type_ids"][0].tolist()
    position = 1
    for index in (0, 1, 12):
        assert ids[position : position + slots] == [processor.pad_token_id] * slots
        assert types[position : position + slots] == [V] * slots
        time_ids = tokenizer.encode(str(index), add_special_tokens=False)
        position += slots
        assert ids[position : position + len(time_ids)] == time_ids and set(
            types[position : position + len(time_ids)]
        ) == {0}
        position += len(time_ids)
    assert ids[position:] == tokenizer.encode("Question: Is there a man? Answer:", add_special_tokens=False)
    assert inputs["pixel_values"].shape == (3, 3, 28, 28)


def test_batches_are_left_padded_with_text_type():
    processor = tiny_cogvlm2_processor()
    inputs = processor(text=["Question: Is it? Short answer:", "no"], images=[random_image(0), random_image(1)])
    assert inputs["attention_mask"][1, 0] == 0 and inputs["attention_mask"][0].all()
    assert (inputs["token_type_ids"][inputs["attention_mask"] == 0] == 0).all()
    right = processor(
        text=["Question: Is it? Short answer:", "no"], images=[random_image(0), random_image(1)], padding_side="right"
    )
    assert right["attention_mask"][1, -1] == 0


def test_image_pixels_are_bicubic_resized_and_clip_normalized():
    image_processor = CogVLM2ImageProcessor(image_size=28, patch_size=7)
    image = random_image(size=(40, 52))
    pixels = image_processor.preprocess_image(image)
    reference = np.asarray(image.resize((28, 28), Image.BICUBIC), dtype=np.float32) / 255.0
    mean, std = np.array(image_processor.image_mean), np.array(image_processor.image_std)
    torch.testing.assert_close(pixels, torch.from_numpy(((reference - mean) / std).transpose(2, 0, 1)).float())


def test_video_frames_are_short_side_scaled_and_centre_cropped():
    image_processor = CogVLM2ImageProcessor(image_size=28, patch_size=7)
    frames = np.zeros((2, 28, 56, 3), dtype=np.uint8)
    frames[:, :, 14:42] = 255  # a white band exactly where the centre crop of the (already 28 px high) frame falls
    pixels = image_processor.preprocess_frames(frames)
    assert pixels.shape == (2, 3, 28, 28)
    white = (1.0 - torch.tensor(image_processor.image_mean)) / torch.tensor(image_processor.image_std)
    torch.testing.assert_close(pixels[:, :, 2:-2, 2:-2], white.view(1, 3, 1, 1).expand(2, 3, 24, 24))


def test_video_image_processor_treats_images_as_frames():
    processor = tiny_cogvlm2_processor(video=True)
    frames = [Image.fromarray(frame) for frame in random_frames(3)]
    as_images = processor.image_processor(images=frames)["pixel_values"]
    torch.testing.assert_close(as_images, processor.image_processor.preprocess_frames(frames))


def test_processor_saves_and_loads_through_auto_processor(tmp_path, video):
    processor = tiny_cogvlm2_processor(video=video)
    processor.save_pretrained(tmp_path)
    config = (CogVLM2VideoConfig if video else CogVLM2Config)()
    config.save_pretrained(tmp_path)
    loaded = AutoProcessor.from_pretrained(tmp_path)
    assert type(loaded) is type(processor)
    assert loaded.image_processor.image_size == 28 and loaded.image_processor.is_video == video
    assert loaded.tokens_per_image == processor.tokens_per_image
    media = {"videos": [random_frames(2)]} if video else {"images": random_image()}
    a, b = processor(text="Question: x Answer:", **media), loaded(text="Question: x Answer:", **media)
    assert all(torch.equal(a[key], b[key]) for key in a)


# ---------------------------------------------------------------------------------------------- bad input
def test_images_of_unusable_modes_are_refused():
    processor = tiny_cogvlm2_processor()
    rgba = random_image().convert("RGBA")
    assert processor(text="x", images=rgba)["pixel_values"].shape == (1, 3, 28, 28)  # converted, as upstream
    with pytest.raises(ValueError, match="cannot be converted to 8-bit RGB without clipping"):
        processor(text="x", images=Image.new("I;16", (30, 30)))
    strict = CogVLM2ImageProcessor(image_size=28, patch_size=7, do_convert_rgb=False)
    with pytest.raises(ValueError, match="expected an RGB image, got mode 'RGBA'"):
        strict.preprocess_image(rgba)


def test_arrays_of_the_wrong_size_or_type_are_refused():
    processor = tiny_cogvlm2_processor()
    with pytest.raises(ValueError, match=r"uint8 of shape \(height, width, 3\)"):
        processor(text="x", images=np.zeros((30, 30, 4), dtype=np.uint8))
    with pytest.raises(ValueError, match=r"uint8 of shape \(height, width, 3\)"):
        processor(text="x", images=np.zeros((30, 30, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="image has no pixels"):
        processor(text="x", images=Image.new("RGB", (0, 10)))
    video = tiny_cogvlm2_processor(video=True)
    with pytest.raises(ValueError, match=r"num_frames, height, width, 3"):
        video(text="x", videos=[np.zeros((2, 30, 30), dtype=np.uint8)])


def test_too_many_frames_are_refused():
    processor = tiny_cogvlm2_processor(video=True)
    with pytest.raises(ValueError, match="at most 24 frames per video; got 25"):
        processor(text="x", videos=[random_frames(25, size=(8, 8))])


def test_one_image_or_video_per_text():
    processor = tiny_cogvlm2_processor()
    with pytest.raises(ValueError, match="one image per prompt"):
        processor(text=["x"], images=[[random_image(0), random_image(1)]])
    with pytest.raises(ValueError, match="got 2 text"):
        processor(text=["x", "y"], images=[random_image()])
    with pytest.raises(ValueError, match="not both"):
        processor(text="x", images=random_image(), videos=[random_frames(2)])
