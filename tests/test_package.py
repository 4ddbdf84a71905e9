"""The distribution's top level: lazy exports and the CLI dispatcher."""

import pytest

import diffusers_cogvideox
import trl_vision_reward
from diffusers_cogvideox import cli as cogvideox_cli
from trl_vision_reward import cli as vision_reward_cli


def test_unknown_export_names_what_exists():
    with pytest.raises(AttributeError, match="CogVideoXTransformer3DModel"):
        diffusers_cogvideox.NotAThing  # noqa: B018
    with pytest.raises(AttributeError, match="has no attribute 'NotAThing'"):
        trl_vision_reward.NotAThing  # noqa: B018


@pytest.mark.parametrize("cli", [cogvideox_cli, vision_reward_cli])
def test_cli_rejects_unknown_command(cli, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["not-a-command"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    for name in cli.COMMANDS:
        assert name in err
