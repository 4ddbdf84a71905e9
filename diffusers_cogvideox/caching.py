"""TeaCache-style step caching for the CogVideoX transformer, built on diffusers' hook machinery.

Consecutive denoising steps often change the transformer's blocks' *residual* (output minus input of the block stack)
very little. TeaCache (Liu et al., "Timestep Embedding Tells: It's Time to Cache for Video Diffusion Model",
arXiv:2411.19108) measures how much the timestep-modulated input of the first block changed since the previous step,

    d_t = mean|x_t - x_{t-1}| / mean|x_{t-1}|                     (relative L1)

optionally maps it through a fitted polynomial, and accumulates it; while the sum stays below ``threshold`` the step
reuses the last computed residual instead of running the blocks, and when it crosses the threshold the blocks run and
the sum restarts at zero. The first ``warmup_steps`` steps and the last step always run.

It is attached as ``diffusers.hooks`` ``ModelHook``s on the transformer blocks, the way diffusers' ``FirstBlockCache``
is, so the transformer's own file is untouched: the head hook on block 0 decides and, on a cached step, returns the
input plus the cached residual; the other blocks then pass their input through; the tail hook records the new residual
on computed steps. State is kept per ``cache_context`` name, so a batched ``[uncond; cond]`` call (the pipelines) is
one decision over both halves with one residual per sample, and pipelines that call the two halves separately keep
two independent caches.

    >>> from diffusers_cogvideox.caching import TeaCacheConfig
    >>> pipe.enable_step_cache(TeaCacheConfig(threshold=0.1))     # or apply_teacache(pipe.transformer, config)
    >>> video = pipe(prompt).frames[0]
    >>> pipe.step_cache_stats                                     # which steps ran the blocks, per call
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field

import numpy as np
import torch
from diffusers.hooks import HookRegistry, ModelHook
from diffusers.hooks.hooks import BaseState, StateManager

_HEAD_HOOK = "cogvideox_teacache_head"
_BLOCK_HOOK = "cogvideox_teacache_block"

# Polynomials (numpy.poly1d order, highest power first) that the TeaCache authors fitted for CogVideoX's timestep
# embedding as the indicator (ali-vilab/TeaCache, TeaCache4CogVideoX1.5, Apache-2.0).
TIMESTEP_EMBEDDING_COEFFICIENTS = {
    "sincos": (-3.10658903e01, 2.54732368e01, -5.92380459e00, 1.75769064e00, -3.61568434e-03),  # CogVideoX-2b
    "rotary": (-1.53880483e03, 8.43202495e02, -1.34363087e02, 7.97131516e00, -5.23162339e-02),  # 5b and 1.5-5B
}
INDICATORS = ("modulated_input", "timestep_embedding")


@dataclass
class TeaCacheConfig:
    """How step caching decides.

    Args:
        threshold: reuse the cached residual while the accumulated (rescaled) relative L1 change stays below this.
            0 never reuses (output identical to no caching); larger values skip more steps.
        indicator: what to compare between steps: ``"modulated_input"`` (the first block's AdaLN-modulated video
            tokens, TeaCache's signal) or ``"timestep_embedding"`` (the block's ``temb``, which the TeaCache authors
            use for CogVideoX with fitted polynomials).
        rescale_coefficients: polynomial applied to each relative L1 change before accumulating (highest power first);
            ``"auto"`` takes the TeaCache authors' fit for the ``timestep_embedding`` indicator and none otherwise.
        warmup_steps: leading steps that always run.
        compute_last_step: always run the final step.
        num_inference_steps: the number of steps per call, needed to know which step is last when the pipeline does
            not say so through ``cache_context`` (this package's pipelines do).
    """

    threshold: float = 0.1
    indicator: str = "modulated_input"
    rescale_coefficients: tuple[float, ...] | str | None = "auto"
    warmup_steps: int = 1
    compute_last_step: bool = True
    num_inference_steps: int | None = None

    def __post_init__(self):
        if self.indicator not in INDICATORS:
            raise ValueError(f"indicator must be one of {INDICATORS}; got {self.indicator!r}")
        if self.threshold < 0:
            raise ValueError(f"threshold must be >= 0; got {self.threshold}")

    def rescale(self, transformer_config) -> np.poly1d | None:
        coefficients = self.rescale_coefficients
        if coefficients == "auto":
            if self.indicator != "timestep_embedding":
                return None
            rotary = transformer_config.use_rotary_positional_embeddings
            coefficients = TIMESTEP_EMBEDDING_COEFFICIENTS["rotary" if rotary else "sincos"]
        return None if coefficients is None else np.poly1d(coefficients)


@dataclass
class TeaCacheStats:
    """Which steps ran the blocks (True) or reused the residual (False), one list per denoising call."""

    calls: list[list[bool]] = field(default_factory=list)

    @property
    def computed(self) -> int:
        return sum(sum(call) for call in self.calls)

    @property
    def skipped(self) -> int:
        return sum(len(call) - sum(call) for call in self.calls)


class TeaCacheState(BaseState):
    def __init__(self) -> None:
        self.reset()

    def reset(self, *args, **kwargs) -> None:
        self.step = 0  # calls seen, when the pipeline gives no step index
        self.previous_indicator: torch.Tensor | None = None
        self.accumulated = 0.0
        self.should_compute = True
        self.block_input: tuple[torch.Tensor, torch.Tensor] | None = None
        self.residual: tuple[torch.Tensor, torch.Tensor] | None = None
        self.decisions: list[bool] | None = None


class _StateManager(StateManager):
    """diffusers' ``StateManager``, with one default state for calls made outside ``cache_context``."""

    def get_state(self):
        if self._context is None:
            self._state_cache.setdefault("default", self._state_cls())
            return self._state_cache["default"]
        return super().get_state()


def _relative_l1(current: torch.Tensor, previous: torch.Tensor) -> float:
    return ((current - previous).abs().mean() / previous.abs().mean()).item()


class _BlockArguments:
    """Reads ``hidden_states``, ``encoder_hidden_states`` and ``temb`` from a block call, by name or position."""

    def __init__(self, block: torch.nn.Module):
        names = list(inspect.signature(type(block).forward).parameters)[1:]
        self.positions = {name: names.index(name) for name in ("hidden_states", "encoder_hidden_states", "temb")}

    def __call__(self, name: str, args, kwargs):
        return kwargs[name] if name in kwargs else args[self.positions[name]]


class TeaCacheHeadHook(ModelHook):
    """On the first block: decide whether this step runs the blocks, and short-cut it when it does not."""

    _is_stateful = True

    def __init__(self, state_manager: StateManager, config: TeaCacheConfig, rescale, stats: TeaCacheStats, is_tail):
        super().__init__()
        self.state_manager = state_manager
        self.config = config
        self.rescale = rescale
        self.stats = stats
        self.is_tail = is_tail

    def initialize_hook(self, module):
        self.arguments = _BlockArguments(module)
        return module

    def new_forward(self, module, *args, **kwargs):
        hidden_states = self.arguments("hidden_states", args, kwargs)
        encoder_hidden_states = self.arguments("encoder_hidden_states", args, kwargs)
        state = self.state_manager.get_state()
        state.should_compute = self._should_compute(module, state, hidden_states, encoder_hidden_states, args, kwargs)
        if state.decisions is None:
            state.decisions = []
            self.stats.calls.append(state.decisions)
        state.decisions.append(state.should_compute)
        if not state.should_compute:
            return hidden_states + state.residual[0], encoder_hidden_states + state.residual[1]
        state.block_input = (hidden_states, encoder_hidden_states)
        output = self.fn_ref.original_forward(*args, **kwargs)
        if self.is_tail:
            state.residual = (output[0] - hidden_states, output[1] - encoder_hidden_states)
        return output

    @torch.no_grad()
    def _should_compute(self, block, state: TeaCacheState, hidden_states, encoder_hidden_states, args, kwargs) -> bool:
        context = self.state_manager._context
        step = context.step_index if context is not None and context.step_index is not None else state.step
        num_steps = (context.num_inference_steps if context is not None else None) or self.config.num_inference_steps
        state.step = step + 1

        temb = self.arguments("temb", args, kwargs)
        if self.config.indicator == "timestep_embedding":
            indicator = temb
        else:
            indicator = block.norm1(hidden_states, encoder_hidden_states, temb)[0]
        previous, state.previous_indicator = state.previous_indicator, indicator

        always = (
            self.config.threshold == 0
            or previous is None
            or state.residual is None
            or previous.shape != indicator.shape
            or step < self.config.warmup_steps
            or (self.config.compute_last_step and num_steps is not None and step >= num_steps - 1)
        )
        if always:
            state.accumulated = 0.0
            return True
        change = _relative_l1(indicator, previous)
        state.accumulated += float(self.rescale(change)) if self.rescale is not None else change
        if state.accumulated < self.config.threshold:
            return False
        state.accumulated = 0.0
        return True

    def reset_state(self, module):
        self.state_manager.reset()
        return module


class TeaCacheBlockHook(ModelHook):
    """On the other blocks: run on computed steps (the last one records the residual), pass through on cached ones."""

    def __init__(self, state_manager: StateManager, is_tail: bool):
        super().__init__()
        self.state_manager = state_manager
        self.is_tail = is_tail

    def initialize_hook(self, module):
        self.arguments = _BlockArguments(module)
        return module

    def new_forward(self, module, *args, **kwargs):
        state = self.state_manager.get_state()
        if not state.should_compute:
            return self.arguments("hidden_states", args, kwargs), self.arguments("encoder_hidden_states", args, kwargs)
        output = self.fn_ref.original_forward(*args, **kwargs)
        if self.is_tail:
            hidden_states, encoder_hidden_states = state.block_input
            state.residual = (output[0] - hidden_states, output[1] - encoder_hidden_states)
        return output


def apply_teacache(transformer: torch.nn.Module, config: TeaCacheConfig) -> None:
    """Attach step caching to a ``CogVideoXTransformer3DModel`` (ours or diffusers')."""
    if _head_hook(transformer) is not None:
        raise ValueError("step caching is already enabled on this transformer; call remove_teacache first")
    blocks = list(transformer.transformer_blocks)
    if not blocks:
        raise ValueError("the transformer has no transformer_blocks to cache")
    state_manager = _StateManager(TeaCacheState)
    head = TeaCacheHeadHook(
        state_manager, config, config.rescale(transformer.config), TeaCacheStats(), len(blocks) == 1
    )
    HookRegistry.check_if_exists_or_initialize(blocks[0]).register_hook(head, _HEAD_HOOK)
    for i, block in enumerate(blocks[1:], start=1):
        hook = TeaCacheBlockHook(state_manager, is_tail=i == len(blocks) - 1)
        HookRegistry.check_if_exists_or_initialize(block).register_hook(hook, _BLOCK_HOOK)
    # the transformer caches which of its children carry hooks; `cache_context` must now reach the new ones
    HookRegistry.check_if_exists_or_initialize(transformer).invalidate_child_registries_cache()


def remove_teacache(transformer: torch.nn.Module) -> None:
    registry = HookRegistry.check_if_exists_or_initialize(transformer)
    registry.remove_hook(_HEAD_HOOK, recurse=True)
    registry.remove_hook(_BLOCK_HOOK, recurse=True)
    registry.invalidate_child_registries_cache()


def reset_teacache(transformer: torch.nn.Module) -> None:
    """Forget cached residuals and indicators (start of a new video); keeps the stats."""
    head = _head_hook(transformer)
    if head is not None:
        head.reset_state(transformer)


def teacache_stats(transformer: torch.nn.Module) -> TeaCacheStats | None:
    head = _head_hook(transformer)
    return None if head is None else head.stats


def _head_hook(transformer: torch.nn.Module) -> TeaCacheHeadHook | None:
    blocks = getattr(transformer, "transformer_blocks", None)
    if not blocks or not hasattr(blocks[0], "_diffusers_hook"):
        return None
    return blocks[0]._diffusers_hook.get_hook(_HEAD_HOOK)
