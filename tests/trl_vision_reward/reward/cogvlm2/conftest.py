"""Tiny CogVLM2 / CogVLM2-Video fixtures (random weights, built locally; see trl_vision_reward.reward.cogvlm2.tiny)."""

import numpy as np
import pytest
from PIL import Image

from trl_vision_reward.reward.cogvlm2.tiny import tiny_cogvlm2_model, tiny_cogvlm2_processor


@pytest.fixture(params=[False, True], ids=["image", "video"])
def video(request):
    return request.param


@pytest.fixture
def model(video):
    return tiny_cogvlm2_model(video=video)


@pytest.fixture
def processor(video):
    return tiny_cogvlm2_processor(video=video)


def random_image(seed=0, size=(40, 52)):
    return Image.fromarray(np.random.RandomState(seed).randint(0, 255, (*size, 3), dtype=np.uint8))


def random_frames(num_frames=3, seed=0, size=(36, 48)):
    return np.random.RandomState(seed).randint(0, 255, (num_frames, *size, 3), dtype=np.uint8)


def media_inputs(processor, video, texts, seed=0):
    """Processor inputs for one image (or 3-frame video) per text, left padded."""
    if video:
        return processor(text=texts, videos=[random_frames(seed=seed + i) for i in range(len(texts))])
    return processor(text=texts, images=[random_image(seed + i) for i in range(len(texts))])
