"""``python -m trl_vision_reward.mpo`` (and ``accelerate launch -m trl_vision_reward.mpo``) runs ``mpo-train``."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
