"""MPO: Diffusion-DPO on pairs that dominate on every VisionReward dimension - pair rules, losses, the config, the pair
data and the trainer; ``mpo-train`` lives in :mod:`.cli`. Public names are exported lazily from
:mod:`trl_vision_reward`."""
