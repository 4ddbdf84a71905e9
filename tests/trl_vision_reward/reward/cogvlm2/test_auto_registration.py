"""``import trl_vision_reward`` alone registers cogvlm2 / cogvlm2_video with the Auto classes, importing nothing heavy."""

import subprocess
import sys
import textwrap

import pytest

from trl_vision_reward.reward.cogvlm2.tiny import tiny_cogvlm2_model, tiny_cogvlm2_processor

SCRIPT = textwrap.dedent(
    """
    import sys
    import trl_vision_reward
    assert "torch" not in sys.modules and "transformers" not in sys.modules, "import trl_vision_reward stays light"
    from transformers import (
        AutoConfig, AutoImageProcessor, AutoModelForCausalLM, AutoModelForImageTextToText, AutoProcessor,
    )
    assert "trl_vision_reward.reward.cogvlm2.modeling_cogvlm2" not in sys.modules, "modeling stays lazy"
    folder = sys.argv[1]
    config = AutoConfig.from_pretrained(folder)
    print(type(config).__name__)
    print(type(AutoModelForCausalLM.from_pretrained(folder)).__name__)
    print(type(AutoModelForImageTextToText.from_config(config)).__name__)
    print(type(AutoProcessor.from_pretrained(folder)).__name__)
    print(type(AutoImageProcessor.from_pretrained(folder)).__name__)
    """
)


@pytest.mark.slow  # two fresh interpreters importing torch and transformers
def test_import_alone_registers_every_auto_class(tmp_path):
    for video in (False, True):
        folder = tmp_path / ("video" if video else "image")
        tiny_cogvlm2_model(video=video).save_pretrained(folder)
        tiny_cogvlm2_processor(video=video).save_pretrained(folder)
    # the video folder in one process, the image folder in another whose transformers is imported first
    video = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "video")], capture_output=True, text=True, timeout=300
    )
    assert video.returncode == 0, video.stderr
    assert video.stdout.split() == [
        "CogVLM2VideoConfig",
        "CogVLM2VideoForConditionalGeneration",
        "CogVLM2VideoForConditionalGeneration",
        "CogVLM2Processor",
        "CogVLM2ImageProcessor",
    ]
    transformers_first = "from transformers import AutoModelForCausalLM, AutoConfig\n" + SCRIPT.replace(
        'assert "torch" not in sys.modules and "transformers" not in sys.modules, "import trl_vision_reward stays light"',
        "",
    )
    image = subprocess.run(
        [sys.executable, "-W", "error::UserWarning", "-c", transformers_first, str(tmp_path / "image")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert image.returncode == 0, image.stderr
    assert image.stdout.split()[:3] == ["CogVLM2Config"] + ["CogVLM2ForConditionalGeneration"] * 2
