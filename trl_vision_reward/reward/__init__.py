"""The VisionReward reward model: checklists and the scoring rule, the transformers model/processor, the batched
scorer, the native CogVLM2 backbones, and its two-stage training (checklist SFT, non-negative weight fitting) and
evaluation. Public names are exported lazily from :mod:`trl_vision_reward`."""
