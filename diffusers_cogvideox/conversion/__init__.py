"""Official SAT checkpoints -> diffusers format (transformer and VAE), as functions; ``cogvideox convert`` is the CLI."""

from .keys import StateDictMismatchError, check_state_dict_keys
from .transformer import TRANSFORMER_CONFIGS, convert_sat_transformer, transformer_config, unwrap_sat_checkpoint
from .vae import VAE_CONFIGS, convert_sat_vae, vae_config

__all__ = [
    "TRANSFORMER_CONFIGS",
    "VAE_CONFIGS",
    "StateDictMismatchError",
    "check_state_dict_keys",
    "convert_sat_transformer",
    "convert_sat_vae",
    "transformer_config",
    "unwrap_sat_checkpoint",
    "vae_config",
]
