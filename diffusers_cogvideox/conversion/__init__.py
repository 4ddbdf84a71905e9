"""Official SAT checkpoints -> diffusers format (transformer and VAE), as functions; ``cogvideox convert`` is the CLI."""

from .keys import StateDictMismatchError, check_state_dict_keys
from .transformer import TRANSFORMER_CONFIGS, convert_sat_transformer, transformer_config, unwrap_sat_checkpoint

try:
    from .vae import convert_sat_vae
except ModuleNotFoundError as error:  # the VAE converter lands separately; only its own absence is tolerated here
    if error.name != f"{__name__}.vae":
        raise

__all__ = [
    "TRANSFORMER_CONFIGS",
    "StateDictMismatchError",
    "check_state_dict_keys",
    "convert_sat_transformer",
    "convert_sat_vae",
    "transformer_config",
    "unwrap_sat_checkpoint",
]
