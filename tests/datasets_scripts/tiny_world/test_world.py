"""The tiny world's scenes and rules: the rules read back every level they were rendered with, the confounder has
the documented strength, and the checklist's labels follow the project's own labelling."""

import numpy as np
import pytest

from datasets_scripts.tiny_world import checklist as world_checklist
from datasets_scripts.tiny_world import truth, world


def test_rules_recover_every_rendered_level():
    rng = np.random.default_rng(7)
    for _ in range(150):
        scene = world.sample_scene(rng, confounded=False)
        frames = world.render(scene)
        assert frames.shape == (world.NUM_FRAMES, world.HEIGHT, world.WIDTH, 3)
        assert truth.levels(frames) == {a: scene.level(a) for a in world.ATTRIBUTES}


def test_rules_read_uint8_frames_like_floats():
    scene = world.sample_scene(np.random.default_rng(3))
    frames = world.render(scene)
    as_uint8 = (frames * 255).round().astype(np.uint8)
    assert truth.levels(as_uint8) == truth.levels(frames)


@pytest.mark.parametrize("confounded, expected", [(True, world.CONFOUNDING), (False, 1 / 3)])
def test_confounder_couples_speed_and_flicker(confounded, expected):
    rng = np.random.default_rng(0)
    draws = np.array([world.sample_levels(rng, confounded) for _ in range(6000)])
    speed, flicker = draws[:, world.ATTRIBUTES.index("speed")], draws[:, world.ATTRIBUTES.index("flicker")]
    assert abs(np.mean(flicker == 2 - speed) - expected) < 0.02
    others = [a for a in world.ATTRIBUTES if a not in world.CONFOUNDED]
    for a in others:  # every other attribute stays uniform
        shares = np.bincount(draws[:, world.ATTRIBUTES.index(a)], minlength=3) / len(draws)
        assert np.all(np.abs(shares - 1 / 3) < 0.03)


def test_prompts_round_trip_and_bad_prompts_name_the_vocabulary():
    for prompt in world.all_prompts():
        assert world.prompt_for(*world.parse_prompt(prompt)) == prompt
    scene = world.sample_scene(np.random.default_rng(1), prompt="a blue square on a teal background")
    assert (scene.shape, scene.colour, scene.background) == ("square", "blue", "teal")
    with pytest.raises(ValueError, match=r"names a colour \['red', 'green', 'blue', 'yellow'\]"):
        world.parse_prompt("a panda playing a guitar")


def test_utility_weights_dynamic_double():
    still_steady = {"Quality": 1, "Dynamic": 0, "Stability": 2, "Preservation": 1, "Composition": 1}
    fast_flicker = {**still_steady, "Dynamic": 2, "Stability": 0}
    assert truth.utility(fast_flicker) - truth.utility(still_steady) == 2.0  # the trade the confounder invites


def test_world_checklist_is_official_questions_two_per_dimension():
    from trl_vision_reward.reward.checklist import Checklist

    checklist = world_checklist.world_checklist()
    official = {q.text: q for q in Checklist.load("video", select=False).questions}
    assert len(checklist.questions) == 2 * len(world.ATTRIBUTES)
    assert set(checklist.dimensions) == set(world.DIMENSION_OF.values())
    for q in checklist.questions:
        assert q.dimension == official[q.text].dimension and q.sub_dimension == official[q.text].sub_dimension
        assert q.qa_line is None and q.select_line is None  # asked as written
    with pytest.raises(ValueError, match="has 10 questions; got 3 weights"):
        world_checklist.world_checklist(weights=[1.0, 2.0, 3.0])


@pytest.mark.parametrize("level", [0, 1, 2])
def test_annotations_label_like_the_rules_answer(level):
    from trl_vision_reward.reward.labels import label_records

    levels = {a: (level + k) % 3 for k, a in enumerate(world.ATTRIBUTES)}
    record = {"id": "clip", "prompt": "p", "annotation": world_checklist.annotation(levels)}
    (labels,) = label_records([record], "video", questions=world_checklist.question_texts())
    expected = world_checklist.answers(levels)
    assert {q: bool(lab) for q, lab in zip(labels.questions, labels.labels)} == expected
