"""CogVideoX 3D causal VAE (``AutoencoderKLCogVideoX``), checkpoint- and output-compatible with diffusers' class.

The video is processed in frame batches - 8 pixel frames per encoder call, 2 latent frames per decoder call, the
remainder going into the first batch - and every causal convolution carries the last two frames of its input from one
batch to the next (the "conv cache"). This schedule is what the official weights were trained with and what the
reference produces, so it is reproduced exactly: processing the whole clip at once gives different numbers.

Inference without gradients takes a leaner path with the same numbers: activations and normalisations work in place,
and large activations are normalised one group at a time and convolved a few output frames at a time (no padded copy
of the whole activation, small convolution work buffers); the resamplers convert one frame at a time into a
preallocated output, each cache entry is dropped as soon as its successor exists, 1x1x1 convolutions cache nothing,
and the decoded clip is written into one preallocated tensor. With gradients enabled the plain formulation is used, so
autograd and gradient checkpointing work as usual.
"""

from __future__ import annotations

import math
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.activations import get_activation
from diffusers.models.autoencoders.vae import DecoderOutput, DiagonalGaussianDistribution
from diffusers.models.modeling_outputs import AutoencoderKLOutput
from diffusers.models.modeling_utils import ModelMixin
from diffusers.utils.accelerate_utils import apply_forward_hook
from torch import nn

try:  # diffusers >= 0.36 groups the tiling/slicing switches of all autoencoders in one mixin
    from diffusers.models.autoencoders.vae import AutoencoderMixin
except ImportError:  # pragma: no cover - older diffusers
    AutoencoderMixin = object

# Output frames computed per convolution call on the inference path: one, so that the padded input piece and the
# convolution's work buffers stay a small fraction of a frame batch (oneDNN keeps its speed on single frames).
FRAMES_PER_CONV = 1
# Tensors with fewer elements are processed whole (as the reference does): splitting them saves little memory and
# costs a call per piece.
SPLIT_MIN_NUMEL = 1 << 18


def frame_batches(num_frames: int, batch_size: int) -> list[tuple[int, int]]:
    """The official frame schedule: ``num_frames // batch_size`` batches (at least one), remainder in the first.

    13 latent frames in batches of 2 -> (0, 3), (3, 5), ..., (11, 13); 49 pixel frames in batches of 8 -> (0, 9),
    (9, 17), ..., (41, 49).
    """
    num_batches = max(num_frames // batch_size, 1)
    remainder = num_frames % batch_size
    return [
        (0 if i == 0 else batch_size * i + remainder, min(batch_size * (i + 1) + remainder, num_frames))
        for i in range(num_batches)
    ]


def decoded_num_frames(num_latent_frames: int, temporal_levels: int) -> int:
    """Frames one decoder call makes from ``num_latent_frames``: each temporal upsampling doubles all frames but an
    odd first one (1 -> 1, 2 -> 4, 3 -> 5)."""
    n = num_latent_frames
    for _ in range(temporal_levels):
        n = 2 * n - n % 2
    return n


def _inference() -> bool:
    """The lean path (in place, written into preallocated tensors) is taken exactly when autograd is off."""
    return not torch.is_grad_enabled()


def _split(numel: int) -> bool:
    """Whether a tensor of ``numel`` elements is worth processing piecewise (by frames or groups) on the lean path."""
    return _inference() and numel >= SPLIT_MIN_NUMEL


def _interpolate_latents(zq: torch.Tensor, size: torch.Size) -> torch.Tensor:
    """Nearest-neighbour resize of the decoder input to a feature map of ``size`` (t, h, w); an odd first frame is
    resized on its own, as in the official model."""
    if size[0] > 1 and size[0] % 2 == 1:
        first = F.interpolate(zq[:, :, :1], size=(1, *size[1:]))
        rest = F.interpolate(zq[:, :, 1:], size=(size[0] - 1, *size[1:]))
        return torch.cat([first, rest], dim=2)
    return F.interpolate(zq, size=size)


class _StreamedGroupNorms:
    """Whole-clip GroupNorm statistics gathered frame batch by frame batch (see ``_encode_streamed``).

    Each norm is in one of three states: its statistics are known (it normalises with them), it is the ``target``
    whose statistics this pass gathers (its input is summed, per sample and group, with Chan's pairwise update in
    float64), or neither (a norm later in the same block as the target: its output is discarded, so it passes its
    input through).
    """

    def __init__(self):
        self.stats: dict[nn.GroupNorm, tuple[torch.Tensor, torch.Tensor]] = {}  # norm -> (mean, rstd) [B, G]
        self.target: nn.GroupNorm | None = None
        self._count = 0
        self._mean: torch.Tensor | None = None
        self._m2: torch.Tensor | None = None

    def collect(self, norm: nn.GroupNorm) -> None:
        self.target, self._count, self._mean, self._m2 = norm, 0, None, None

    def finish(self) -> None:
        var = self._m2 / self._count
        self.stats[self.target] = (self._mean, torch.rsqrt(var + self.target.eps))
        self.target = None

    def __call__(self, x: torch.Tensor, norm: nn.GroupNorm, out: torch.Tensor | None) -> torch.Tensor:
        groups = norm.num_groups
        size = x.shape[1] // groups
        if norm in self.stats:
            mean, rstd = self.stats[norm]
            out = torch.empty_like(x) if out is None else out
            shape = (x.shape[0], 1, *([1] * (x.ndim - 2)))
            for g in range(groups):  # one group of temporaries at a time, as _group_norm
                channels = slice(g * size, (g + 1) * size)
                y = (x[:, channels].float() - mean[:, g].to(x.device).view(shape)) * rstd[:, g].to(x.device).view(shape)
                if norm.weight is not None:
                    y = y * norm.weight[channels].float().view(1, size, *shape[2:])
                    y = y + norm.bias[channels].float().view(1, size, *shape[2:])
                out[:, channels] = y.to(out.dtype)
            return out
        if norm is self.target:
            n = x[0, :size].numel()
            means, m2s = [], []
            for g in range(groups):
                var, mean = torch.var_mean(x[:, g * size : (g + 1) * size].float().flatten(1), dim=1, correction=0)
                means.append(mean.double())
                m2s.append(var.double() * n)
            mean, m2 = torch.stack(means, 1), torch.stack(m2s, 1)
            if self._mean is None:
                self._count, self._mean, self._m2 = n, mean, m2
            else:
                total = self._count + n
                delta = mean - self._mean
                self._mean = self._mean + delta * (n / total)
                self._m2 = self._m2 + m2 + delta**2 * (self._count * n / total)
                self._count = total
        return x


_STREAM: ContextVar[_StreamedGroupNorms | None] = ContextVar("cogvideox_vae_streamed_group_norms", default=None)


@contextmanager
def _streaming(stream: _StreamedGroupNorms):
    token = _STREAM.set(stream)
    try:
        yield stream
    finally:
        _STREAM.reset(token)


def _group_norm(x: torch.Tensor, norm: nn.GroupNorm, out: torch.Tensor | None = None) -> torch.Tensor:
    """``norm(x)``; without autograd, one group at a time into ``out`` (which may be ``x`` itself).

    Groups are normalised independently, so each group's statistics - and thus the result - are those of the full
    call, while the temporary memory is one group instead of the whole tensor. During a streamed whole-clip encode
    the statistics are the whole clip's (``_StreamedGroupNorms``).
    """
    stream = _STREAM.get()
    if stream is not None and _inference():
        return stream(x, norm, out)
    if not _split(x.numel()):
        return norm(x)
    out = torch.empty_like(x) if out is None else out
    group = x.shape[1] // norm.num_groups
    for start in range(0, x.shape[1], group):
        channels = slice(start, start + group)
        weight = norm.weight[channels] if norm.weight is not None else None
        bias = norm.bias[channels] if norm.bias is not None else None
        out[:, channels] = F.group_norm(x[:, channels], 1, weight, bias, norm.eps)
    return out


def _activate(x: torch.Tensor, activation: nn.Module) -> torch.Tensor:
    if _inference() and isinstance(activation, nn.SiLU):
        return F.silu(x, inplace=True)
    return activation(x)


def _frame_chunks(num_frames: int) -> range:
    return range(0, num_frames, FRAMES_PER_CONV)


def _piecewise_conv(conv: nn.Conv2d | nn.Conv3d, whole_shape: tuple[int, ...], like: torch.Tensor):
    """A function computing ``conv`` on pieces of an input of ``whole_shape`` with the numbers of the unsplit call,
    or ``None`` when that input is better left whole.

    On CPU, PyTorch runs large float convolutions with oneDNN, whose results do not depend on how the input is split,
    so the pieces are sent straight to oneDNN - PyTorch's own choice for a small piece could be the im2col kernel,
    which is slower, needs a buffer of 27x the input and rounds differently. Inputs PyTorch would not send to oneDNN
    are small and are left whole. Other devices split freely.
    """
    if like.device.type != "cpu":
        return conv
    select = getattr(torch._C, "_select_conv_backend", None)
    if select is None or not torch.backends.mkldnn.is_available():  # pragma: no cover - other torch builds
        return None
    try:
        backend = select(
            like.new_zeros(()).expand(whole_shape),
            conv.weight,
            conv.bias,
            list(conv.stride),
            list(conv.padding),
            list(conv.dilation),
            False,
            [0] * len(conv.stride),
            conv.groups,
            None,
        )
    except (TypeError, RuntimeError):  # pragma: no cover - a torch whose private selector differs: stay whole
        return None
    if backend != torch._C._ConvBackend.Mkldnn:
        return None
    return lambda piece: torch.mkldnn_convolution(
        piece.contiguous(), conv.weight, conv.bias, conv.padding, conv.stride, conv.dilation, conv.groups
    )


def _map_frames(conv: nn.Conv3d, x: torch.Tensor) -> torch.Tensor:
    """A frame-wise (1x1x1) ``conv(x)`` computed a few frames at a time into one preallocated tensor, so that the
    convolution's work buffers stay small."""
    fn = _piecewise_conv(conv, tuple(x.shape), x) if _split(x.numel()) else None
    if fn is None or x.shape[2] <= FRAMES_PER_CONV:
        return conv(x)
    out = None
    for t0 in _frame_chunks(x.shape[2]):
        piece = fn(x[:, :, t0 : t0 + FRAMES_PER_CONV])
        if out is None:
            out = piece.new_empty((*piece.shape[:2], x.shape[2], *piece.shape[3:]))
        out[:, :, t0 : t0 + piece.shape[2]] = piece
    return out


def _per_frame(conv: nn.Conv2d, frames: list[int], x: torch.Tensor, prepare, size: tuple[int, int]) -> torch.Tensor:
    """``conv(prepare(x[:, :, s]))`` for each source frame ``s`` in ``frames`` (``prepare`` makes frames of ``size``),
    stacked into one preallocated tensor; a frame repeated back to back is convolved once. Same numbers as one call
    over all frames as a batch."""
    if not _split(x.shape[0] * x.shape[1] * len(frames) * size[0] * size[1]):  # one batched call, as the reference
        batch = torch.stack([prepare(x[:, :, source]) for source in frames], dim=1).flatten(0, 1)
        return conv(batch).unflatten(0, (x.shape[0], len(frames))).transpose(1, 2)
    fn = _piecewise_conv(conv, (x.shape[0] * len(frames), x.shape[1], *size), x) or conv
    out = None
    for t, source in enumerate(frames):
        if t == 0 or source != frames[t - 1]:
            frame = fn(prepare(x[:, :, source]))
        if out is None:
            out = frame.new_empty((frame.shape[0], frame.shape[1], len(frames), *frame.shape[2:]))
        out[:, :, t] = frame
    return out


class CogVideoXCausalConv3d(nn.Module):
    """3D convolution that only looks back in time.

    The time axis is padded in front with ``kernel - 1`` frames: the first frame repeated for the first batch, the
    cached tail of the previous batch's input afterwards. Height and width are zero-padded inside the convolution.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3):
        super().__init__()
        self.time_padding = kernel_size - 1
        self.conv = nn.Conv3d(
            in_channels, out_channels, kernel_size, padding=(0, (kernel_size - 1) // 2, (kernel_size - 1) // 2)
        )

    def forward(
        self, x: torch.Tensor, cache: torch.Tensor | None = None, residual: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Returns ``(conv(x) + residual, new_cache)``; without autograd the sum is accumulated into ``residual``."""
        p = self.time_padding
        if p == 0:
            out = self.conv(x)
            return (out if residual is None else out + residual), None

        head = cache if cache is not None else x[:, :, :1].expand(-1, -1, p, -1, -1)
        num_frames = x.shape[2]
        if num_frames >= p:
            new_cache = x[:, :, num_frames - p :].clone()
        else:
            new_cache = torch.cat([head[:, :, num_frames:], x], dim=2)

        fn = _piecewise_conv(self.conv, (*x.shape[:2], num_frames + p, *x.shape[3:]), x) if _split(x.numel()) else None
        if fn is None or num_frames <= FRAMES_PER_CONV:
            out = self.conv(torch.cat([head, x], dim=2))
            if residual is None:
                return out, new_cache
            return (residual.add_(out) if _inference() else out + residual), new_cache

        # One chunk of output frames at a time: input frames [t0 - p, t1) of the padded sequence head ++ x.
        out = residual
        for t0 in _frame_chunks(num_frames):
            t1 = min(t0 + FRAMES_PER_CONV, num_frames)
            if t0 >= p:
                chunk = fn(x[:, :, t0 - p : t1])
            else:
                chunk = fn(torch.cat([head[:, :, t0:], x[:, :, :t1]], dim=2))
            if out is None:
                out = chunk.new_empty((*chunk.shape[:2], num_frames, *chunk.shape[3:]))
                out[:, :, t0:t1] = chunk
            elif residual is None:
                out[:, :, t0:t1] = chunk
            else:
                out[:, :, t0:t1] += chunk
        return out, new_cache


class CogVideoXSpatialNorm3D(nn.Module):
    """Decoder normalisation conditioned on the latents: ``GroupNorm(f) * conv_y(zq) + conv_b(zq)``.

    ``zq`` must already be resized to ``f``'s frames and size (see ``_interpolate_latents``).
    """

    def __init__(self, f_channels: int, zq_channels: int, groups: int = 32):
        super().__init__()
        self.norm_layer = nn.GroupNorm(num_channels=f_channels, num_groups=groups, eps=1e-6, affine=True)
        self.conv_y = CogVideoXCausalConv3d(zq_channels, f_channels, kernel_size=1)
        self.conv_b = CogVideoXCausalConv3d(zq_channels, f_channels, kernel_size=1)

    def forward(self, f: torch.Tensor, zq: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        if not _inference():
            return self.norm_layer(f) * self.conv_y(zq)[0] + self.conv_b(zq)[0]
        out = _group_norm(f, self.norm_layer, out=out)
        conv_y = _piecewise_conv(self.conv_y.conv, tuple(zq.shape), zq) if _split(f.numel()) else None
        conv_b = _piecewise_conv(self.conv_b.conv, tuple(zq.shape), zq) if _split(f.numel()) else None
        if conv_y is None or conv_b is None:  # in one go
            return out.mul_(self.conv_y.conv(zq)).add_(self.conv_b.conv(zq))
        for t0 in _frame_chunks(f.shape[2]):
            frames = slice(t0, t0 + FRAMES_PER_CONV)
            out[:, :, frames].mul_(conv_y(zq[:, :, frames])).add_(conv_b(zq[:, :, frames]))
        return out


class CogVideoXResnetBlock3D(nn.Module):
    """norm -> act -> causal conv -> norm -> act -> causal conv, plus a 1x1x1 shortcut when the width changes.

    The encoder normalises with GroupNorm; the decoder (``spatial_norm_dim`` set) with ``CogVideoXSpatialNorm3D``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        groups: int = 32,
        eps: float = 1e-6,
        non_linearity: str = "swish",
        spatial_norm_dim: int | None = None,
    ):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.nonlinearity = get_activation(non_linearity)
        if spatial_norm_dim is None:
            self.norm1 = nn.GroupNorm(num_channels=in_channels, num_groups=groups, eps=eps)
            self.norm2 = nn.GroupNorm(num_channels=out_channels, num_groups=groups, eps=eps)
        else:
            self.norm1 = CogVideoXSpatialNorm3D(in_channels, spatial_norm_dim, groups=groups)
            self.norm2 = CogVideoXSpatialNorm3D(out_channels, spatial_norm_dim, groups=groups)
        self.conv1 = CogVideoXCausalConv3d(in_channels, out_channels, kernel_size=3)
        self.conv2 = CogVideoXCausalConv3d(out_channels, out_channels, kernel_size=3)
        self.conv_shortcut = nn.Conv3d(in_channels, out_channels, 1) if in_channels != out_channels else None

    def _norm(self, norm: nn.Module, x: torch.Tensor, zq: torch.Tensor | None, out: torch.Tensor | None):
        if zq is None:
            return _group_norm(x, norm, out=out)
        return norm(x, zq, out=out)

    def forward(
        self, x: torch.Tensor, zq: torch.Tensor | None = None, cache: dict | None = None
    ) -> tuple[torch.Tensor, dict]:
        cache = cache or {}
        inference = _inference()
        if self.conv_shortcut is None:
            residual = x
        else:
            residual = _map_frames(self.conv_shortcut, x)
        if zq is not None:
            zq = _interpolate_latents(zq, x.shape[-3:])

        # Without autograd, norm1 may overwrite x when x is not the residual (nothing reads x afterwards).
        h = self._norm(self.norm1, x, zq, out=x if inference and residual is not x else None)
        h = _activate(h, self.nonlinearity)
        h, conv1_cache = self.conv1(h, cache.get("conv1"))
        h = self._norm(self.norm2, h, zq, out=h if inference else None)
        h = _activate(h, self.nonlinearity)
        # The residual sum is accumulated into the residual itself without autograd; x is only reused when it is a
        # tensor this model made (never the caller's input: conv_in always comes first).
        out, conv2_cache = self.conv2(h, cache.get("conv2"), residual=residual)
        return out, {"conv1": conv1_cache, "conv2": conv2_cache}


class CogVideoXDownsample3D(nn.Module):
    """Halve height and width (pad right/bottom by one, 3x3 conv with stride 2, frame by frame); with
    ``compress_time`` first average frame pairs, keeping an odd first frame on its own."""

    def __init__(self, in_channels: int, out_channels: int, compress_time: bool = False):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=2, padding=0)
        self.compress_time = compress_time

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.compress_time:
            pair = dict(kernel_size=(2, 1, 1), stride=(2, 1, 1))
            if x.shape[2] % 2 == 1:
                x = torch.cat([x[:, :, :1], F.avg_pool3d(x[:, :, 1:], **pair)], dim=2) if x.shape[2] > 1 else x
            else:
                x = F.avg_pool3d(x, **pair)
        size = (x.shape[3] + 1, x.shape[4] + 1)
        return _per_frame(self.conv, list(range(x.shape[2])), x, lambda frame: F.pad(frame, (0, 1, 0, 1)), size)


class CogVideoXUpsample3D(nn.Module):
    """Double height and width (nearest), then a 3x3 conv frame by frame; with ``compress_time`` also double the
    frames, except that an odd first frame stays single. Repeated frames are convolved once and copied."""

    def __init__(self, in_channels: int, out_channels: int, compress_time: bool = False):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=1, padding=1)
        self.compress_time = compress_time

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        num_frames = x.shape[2]
        if not self.compress_time or num_frames == 1:
            sources = list(range(num_frames))
        elif num_frames % 2 == 1:
            sources = [0] + [1 + t // 2 for t in range(2 * (num_frames - 1))]
        else:
            sources = [t // 2 for t in range(2 * num_frames)]
        size = (2 * x.shape[3], 2 * x.shape[4])
        return _per_frame(self.conv, sources, x, lambda frame: F.interpolate(frame, scale_factor=2.0), size)


class _ResnetStack(nn.Module):
    """Resnets applied in order, each with its own cache; gradient checkpointing wraps each resnet."""

    def __init__(self, resnets: list[CogVideoXResnetBlock3D]):
        super().__init__()
        self.resnets = nn.ModuleList(resnets)
        self.gradient_checkpointing = False

    def _run_resnets(self, x: torch.Tensor, zq: torch.Tensor | None, cache: list | None) -> tuple[torch.Tensor, list]:
        new_cache = []
        for i, resnet in enumerate(self.resnets):
            old = cache[i] if cache else None
            if cache:
                cache[i] = None  # the old entry dies with this call, not with the whole frame batch
            if torch.is_grad_enabled() and self.gradient_checkpointing:
                x, entry = self._gradient_checkpointing_func(resnet, x, zq, old)
            else:
                x, entry = resnet(x, zq, old)
            new_cache.append(entry)
        return x, new_cache


class CogVideoXDownBlock3D(_ResnetStack):
    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        num_layers: int = 1,
        resnet_eps: float = 1e-6,
        resnet_act_fn: str = "swish",
        resnet_groups: int = 32,
        add_downsample: bool = True,
        compress_time: bool = False,
    ):
        super().__init__(
            [
                CogVideoXResnetBlock3D(
                    in_channels if i == 0 else out_channels, out_channels, resnet_groups, resnet_eps, resnet_act_fn
                )
                for i in range(num_layers)
            ]
        )
        self.downsamplers = (
            nn.ModuleList([CogVideoXDownsample3D(out_channels, out_channels, compress_time=compress_time)])
            if add_downsample
            else None
        )

    def forward(self, x: torch.Tensor, zq=None, cache: list | None = None) -> tuple[torch.Tensor, list]:
        x, new_cache = self._run_resnets(x, None, cache)
        if self.downsamplers is not None:
            x = self.downsamplers[0](x)
        return x, new_cache


class CogVideoXMidBlock3D(_ResnetStack):
    def __init__(
        self,
        in_channels: int,
        num_layers: int = 2,
        resnet_eps: float = 1e-6,
        resnet_act_fn: str = "swish",
        resnet_groups: int = 32,
        spatial_norm_dim: int | None = None,
    ):
        super().__init__(
            [
                CogVideoXResnetBlock3D(
                    in_channels, in_channels, resnet_groups, resnet_eps, resnet_act_fn, spatial_norm_dim
                )
                for _ in range(num_layers)
            ]
        )

    def forward(self, x: torch.Tensor, zq=None, cache: list | None = None) -> tuple[torch.Tensor, list]:
        return self._run_resnets(x, zq, cache)


class CogVideoXUpBlock3D(_ResnetStack):
    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        num_layers: int = 1,
        resnet_eps: float = 1e-6,
        resnet_act_fn: str = "swish",
        resnet_groups: int = 32,
        spatial_norm_dim: int = 16,
        add_upsample: bool = True,
        compress_time: bool = False,
    ):
        super().__init__(
            [
                CogVideoXResnetBlock3D(
                    in_channels if i == 0 else out_channels,
                    out_channels,
                    resnet_groups,
                    resnet_eps,
                    resnet_act_fn,
                    spatial_norm_dim,
                )
                for i in range(num_layers)
            ]
        )
        self.upsamplers = (
            nn.ModuleList([CogVideoXUpsample3D(out_channels, out_channels, compress_time=compress_time)])
            if add_upsample
            else None
        )

    def forward(self, x: torch.Tensor, zq=None, cache: list | None = None) -> tuple[torch.Tensor, list]:
        x, new_cache = self._run_resnets(x, zq, cache)
        if self.upsamplers is not None:
            x = self.upsamplers[0](x)
        return x, new_cache


def _check_block_types(kind: str, block_types: tuple[str, ...], expected: str, num_blocks: int) -> None:
    if any(t != expected for t in block_types):
        raise ValueError(f"{kind} must all be {expected!r}; got {tuple(block_types)}")
    if len(block_types) != num_blocks:
        raise ValueError(f"{kind} needs one entry per block_out_channels entry ({num_blocks}); got {len(block_types)}")


class CogVideoXEncoder3D(nn.Module):
    """Video (B, C, T, H, W) -> posterior parameters (B, 2 * latent, T', H / 8, W / 8) for one frame batch."""

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 16,
        down_block_types: tuple[str, ...] = ("CogVideoXDownBlock3D",) * 4,
        block_out_channels: tuple[int, ...] = (128, 256, 256, 512),
        layers_per_block: int = 3,
        act_fn: str = "silu",
        norm_eps: float = 1e-6,
        norm_num_groups: int = 32,
        temporal_compression_ratio: float = 4,
    ):
        super().__init__()
        _check_block_types("down_block_types", down_block_types, "CogVideoXDownBlock3D", len(block_out_channels))
        temporal_levels = int(math.log2(temporal_compression_ratio))
        self.conv_in = CogVideoXCausalConv3d(in_channels, block_out_channels[0], kernel_size=3)
        self.down_blocks = nn.ModuleList(
            CogVideoXDownBlock3D(
                block_out_channels[max(i - 1, 0)],
                channels,
                num_layers=layers_per_block,
                resnet_eps=norm_eps,
                resnet_act_fn=act_fn,
                resnet_groups=norm_num_groups,
                add_downsample=i < len(block_out_channels) - 1,
                compress_time=i < temporal_levels,
            )
            for i, channels in enumerate(block_out_channels)
        )
        self.mid_block = CogVideoXMidBlock3D(
            block_out_channels[-1], resnet_eps=norm_eps, resnet_act_fn=act_fn, resnet_groups=norm_num_groups
        )
        self.norm_out = nn.GroupNorm(norm_num_groups, block_out_channels[-1], eps=1e-6)
        self.conv_act = nn.SiLU()
        self.conv_out = CogVideoXCausalConv3d(block_out_channels[-1], 2 * out_channels, kernel_size=3)

    def forward(self, sample: torch.Tensor, cache: dict | None = None) -> tuple[torch.Tensor, dict]:
        """One frame batch; ``cache`` is the previous batch's returned cache (consumed) or ``None`` for the first."""
        cache = cache or {}
        new_cache = {}
        h, new_cache["conv_in"] = self.conv_in(sample, cache.pop("conv_in", None))
        for i, block in enumerate(self.down_blocks):
            h, new_cache[f"down_block_{i}"] = block(h, None, cache.pop(f"down_block_{i}", None))
        h, new_cache["mid_block"] = self.mid_block(h, None, cache.pop("mid_block", None))
        h = _activate(_group_norm(h, self.norm_out, out=h if _inference() else None), self.conv_act)
        h, new_cache["conv_out"] = self.conv_out(h, cache.pop("conv_out", None))
        return h, new_cache


class CogVideoXDecoder3D(nn.Module):
    """Latents (B, latent, T, h, w) -> video (B, C, T', 8h, 8w) for one frame batch; every norm is conditioned on
    the latents themselves."""

    def __init__(
        self,
        in_channels: int = 16,
        out_channels: int = 3,
        up_block_types: tuple[str, ...] = ("CogVideoXUpBlock3D",) * 4,
        block_out_channels: tuple[int, ...] = (128, 256, 256, 512),
        layers_per_block: int = 3,
        act_fn: str = "silu",
        norm_eps: float = 1e-6,
        norm_num_groups: int = 32,
        temporal_compression_ratio: float = 4,
    ):
        super().__init__()
        _check_block_types("up_block_types", up_block_types, "CogVideoXUpBlock3D", len(block_out_channels))
        widths = list(reversed(block_out_channels))
        temporal_levels = int(math.log2(temporal_compression_ratio))
        self.conv_in = CogVideoXCausalConv3d(in_channels, widths[0], kernel_size=3)
        self.mid_block = CogVideoXMidBlock3D(
            widths[0],
            resnet_eps=norm_eps,
            resnet_act_fn=act_fn,
            resnet_groups=norm_num_groups,
            spatial_norm_dim=in_channels,
        )
        self.up_blocks = nn.ModuleList(
            CogVideoXUpBlock3D(
                widths[max(i - 1, 0)],
                channels,
                num_layers=layers_per_block + 1,
                resnet_eps=norm_eps,
                resnet_act_fn=act_fn,
                resnet_groups=norm_num_groups,
                spatial_norm_dim=in_channels,
                add_upsample=i < len(widths) - 1,
                compress_time=i < temporal_levels,
            )
            for i, channels in enumerate(widths)
        )
        self.norm_out = CogVideoXSpatialNorm3D(widths[-1], in_channels, groups=norm_num_groups)
        self.conv_act = nn.SiLU()
        self.conv_out = CogVideoXCausalConv3d(widths[-1], out_channels, kernel_size=3)

    def forward(self, sample: torch.Tensor, cache: dict | None = None) -> tuple[torch.Tensor, dict]:
        """One frame batch; ``cache`` is the previous batch's returned cache (consumed) or ``None`` for the first."""
        cache = cache or {}
        new_cache = {}
        h, new_cache["conv_in"] = self.conv_in(sample, cache.pop("conv_in", None))
        h, new_cache["mid_block"] = self.mid_block(h, sample, cache.pop("mid_block", None))
        for i, block in enumerate(self.up_blocks):
            h, new_cache[f"up_block_{i}"] = block(h, sample, cache.pop(f"up_block_{i}", None))
        zq = _interpolate_latents(sample, h.shape[-3:])
        h = _activate(self.norm_out(h, zq, out=h if _inference() else None), self.conv_act)
        h, new_cache["conv_out"] = self.conv_out(h, cache.pop("conv_out", None))
        return h, new_cache


class AutoencoderKLCogVideoX(ModelMixin, AutoencoderMixin, ConfigMixin):
    r"""The CogVideoX 3D causal VAE: 8x spatial and 4x temporal compression of RGB video into 16-channel latents.

    Same constructor, config keys, parameter names, methods and outputs as diffusers' ``AutoencoderKLCogVideoX``, so
    the official ``vae/`` folders load with ``from_pretrained`` and code written for diffusers runs unchanged.

    ``encode`` takes ``1 + 4k`` frames (1, 5, 9, ..., 49) whose height and width are multiples of 8; ``decode`` takes
    any number of latent frames (``n`` latents give ``1 + 4 (n - 1)`` frames when ``n`` is odd). Latents are scaled by
    the pipelines, not here: ``z * scaling_factor`` into the transformer (``/`` for image latents when
    ``invert_scale_latents`` is set, as in CogVideoX 1.5), ``z / scaling_factor`` before ``decode``.
    """

    _supports_gradient_checkpointing = True
    _no_split_modules = ["CogVideoXResnetBlock3D"]

    @register_to_config
    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        down_block_types: tuple[str, ...] = ("CogVideoXDownBlock3D",) * 4,
        up_block_types: tuple[str, ...] = ("CogVideoXUpBlock3D",) * 4,
        block_out_channels: tuple[int, ...] = (128, 256, 256, 512),
        latent_channels: int = 16,
        layers_per_block: int = 3,
        act_fn: str = "silu",
        norm_eps: float = 1e-6,
        norm_num_groups: int = 32,
        temporal_compression_ratio: float = 4,
        sample_height: int = 480,
        sample_width: int = 720,
        scaling_factor: float = 1.15258426,
        shift_factor: float | None = None,
        latents_mean: tuple[float, ...] | None = None,
        latents_std: tuple[float, ...] | None = None,
        force_upcast: bool = True,
        use_quant_conv: bool = False,
        use_post_quant_conv: bool = False,
        invert_scale_latents: bool = False,
    ):
        super().__init__()
        common = dict(
            block_out_channels=block_out_channels,
            layers_per_block=layers_per_block,
            act_fn=act_fn,
            norm_eps=norm_eps,
            norm_num_groups=norm_num_groups,
            temporal_compression_ratio=temporal_compression_ratio,
        )
        self.encoder = CogVideoXEncoder3D(in_channels, latent_channels, down_block_types, **common)
        self.decoder = CogVideoXDecoder3D(latent_channels, out_channels, up_block_types, **common)
        # The widths below follow the reference (``out_channels``, not ``latent_channels``) so checkpoints match;
        # no released CogVideoX VAE uses either convolution.
        self.quant_conv = nn.Conv3d(2 * out_channels, 2 * out_channels, 1) if use_quant_conv else None
        self.post_quant_conv = nn.Conv3d(out_channels, out_channels, 1) if use_post_quant_conv else None

        self.use_slicing = False
        self.use_tiling = False
        # The frame batches the weights were trained with; other sizes change (and degrade) the output.
        self.num_latent_frames_batch_size = 2
        self.num_sample_frames_batch_size = 8
        self.use_whole_clip_encoding = False  # see enable_whole_clip_encoding
        self.whole_clip_streaming = True

        self.spatial_compression = 2 ** (len(block_out_channels) - 1)
        self.temporal_levels = int(math.log2(temporal_compression_ratio))
        # Default tiles are half the training resolution; the overlap factors were tuned for 480x720.
        self.tile_sample_min_height = sample_height // 2
        self.tile_sample_min_width = sample_width // 2
        self.tile_latent_min_height = int(self.tile_sample_min_height / self.spatial_compression)
        self.tile_latent_min_width = int(self.tile_sample_min_width / self.spatial_compression)
        self.tile_overlap_factor_height = 1 / 6
        self.tile_overlap_factor_width = 1 / 5

    # ------------------------------------------------------------------------------------------ switches

    def enable_tiling(
        self,
        tile_sample_min_height: int | None = None,
        tile_sample_min_width: int | None = None,
        tile_overlap_factor_height: float | None = None,
        tile_overlap_factor_width: float | None = None,
    ) -> None:
        """Encode/decode larger-than-tile videos tile by tile, blending the overlaps (saves memory, changes the output
        slightly). Arguments left ``None`` keep their current values."""
        height = self.tile_sample_min_height if tile_sample_min_height is None else tile_sample_min_height
        width = self.tile_sample_min_width if tile_sample_min_width is None else tile_sample_min_width
        factor_h = self.tile_overlap_factor_height if tile_overlap_factor_height is None else tile_overlap_factor_height
        factor_w = self.tile_overlap_factor_width if tile_overlap_factor_width is None else tile_overlap_factor_width
        for name, size in (("tile_sample_min_height", height), ("tile_sample_min_width", width)):
            if not isinstance(size, int) or size < self.spatial_compression:
                raise ValueError(f"{name} must be an integer >= {self.spatial_compression} (one latent); got {size!r}")
        for name, factor, size in (
            ("tile_overlap_factor_height", factor_h, height),
            ("tile_overlap_factor_width", factor_w, width),
        ):
            if not 0 < factor < 1 or int(int(size / self.spatial_compression) * (1 - factor)) < 1:
                raise ValueError(
                    f"{name} must be in (0, 1) and leave tiles at least one latent apart "
                    f"(tile {size} pixels = {int(size / self.spatial_compression)} latents); got {factor!r}"
                )
        self.use_tiling = True
        self.tile_sample_min_height, self.tile_sample_min_width = height, width
        self.tile_latent_min_height = int(height / self.spatial_compression)
        self.tile_latent_min_width = int(width / self.spatial_compression)
        self.tile_overlap_factor_height, self.tile_overlap_factor_width = factor_h, factor_w

    def disable_tiling(self) -> None:
        self.use_tiling = False

    def enable_slicing(self) -> None:
        """Encode/decode one batch element at a time."""
        self.use_slicing = True

    def disable_slicing(self) -> None:
        self.use_slicing = False

    def enable_whole_clip_encoding(self, streamed: bool = True) -> None:
        """Encode so that every GroupNorm normalises over all the clip's frames: the official SAT encoder's result
        (training latents). The default 8-frame batches (diffusers' and this package's pipelines) take GroupNorm
        statistics per batch and differ from it beyond the first batch.

        ``streamed`` (used without autograd): the clip still goes through in 8-frame batches, and each GroupNorm's
        whole-clip statistics are gathered in a pass of their own before it normalises, so the working memory is that
        of the batched mode plus the output of the first down block (1/8 of its activation). Each pass re-runs the
        block up to the norm it gathers for, so the encode costs a few times the one-pass compute. ``streamed=False``
        (and any encode with autograd): one encoder pass over the whole clip, memory growing with its length.
        """
        self.use_whole_clip_encoding = True
        self.whole_clip_streaming = streamed

    def disable_whole_clip_encoding(self) -> None:
        self.use_whole_clip_encoding = False

    # ------------------------------------------------------------------------------------------ input checks

    def _check_5d(self, x: torch.Tensor, what: str, channels: int, channels_name: str) -> None:
        if x.ndim != 5:
            raise ValueError(
                f"{what} must be a 5D tensor (batch, channels, frames, height, width); got shape {tuple(x.shape)}"
            )
        if x.shape[1] != channels:
            raise ValueError(
                f"{what} must have {channels} channels ({channels_name}) in dim 1 of (batch, channels, frames, "
                f"height, width); got shape {tuple(x.shape)}"
            )
        if x.shape[2] < 1:
            raise ValueError(f"{what} must have at least one frame; got shape {tuple(x.shape)}")

    def _check_video(self, x: torch.Tensor) -> None:
        self._check_5d(x, "the video", self.config.in_channels, "config.in_channels")
        ratio = 2**self.temporal_levels
        num_frames, height, width = x.shape[2:]
        if (num_frames - 1) % ratio != 0:
            raise ValueError(
                f"the causal VAE encodes 1 + {ratio}*k frames (1, {1 + ratio}, {1 + 2 * ratio}, ...); "
                f"got {num_frames}. Other counts drop frames or merge the first frame into the next latent."
            )
        s = self.spatial_compression
        if height % s or width % s:
            raise ValueError(f"video height and width must be multiples of {s}; got {height}x{width}")

    def _check_latents(self, z: torch.Tensor) -> None:
        self._check_5d(z, "latents", self.config.latent_channels, "config.latent_channels")

    def _no_grad_unless_training(self, x: torch.Tensor):
        """Take the lean inference path whenever no gradient can flow, even if autograd is on (a frozen VAE)."""
        needs_grad = torch.is_grad_enabled() and (x.requires_grad or any(p.requires_grad for p in self.parameters()))
        return nullcontext() if needs_grad else torch.no_grad()

    # ------------------------------------------------------------------------------------------ encode

    def _encoder_segments(self) -> list[list[tuple]]:
        """The encoder as segments of ``(op, norms)``; ``op(x, cache) -> (x, cache)``. A segment's output is kept
        whole between segments: after the first down block it is 1/8 of that block's activation."""
        encoder = self.encoder

        def resnet_op(resnet):
            return (lambda x, cache: resnet(x, None, cache)), [resnet.norm1, resnet.norm2]

        def downsample_op(down):
            return (lambda x, cache: (down(x), None)), []

        def tail(x, cache):
            h = _activate(_group_norm(x, encoder.norm_out, out=x), encoder.conv_act)
            h, cache = encoder.conv_out(h, cache)
            return (self.quant_conv(h) if self.quant_conv is not None else h), cache

        segments = []
        for i, block in enumerate(encoder.down_blocks):
            ops = [resnet_op(r) for r in block.resnets]
            if block.downsamplers is not None:
                ops.append(downsample_op(block.downsamplers[0]))
            if i == 0:
                ops.insert(0, (encoder.conv_in, []))
            segments.append(ops)
        segments.append([*(resnet_op(r) for r in encoder.mid_block.resnets), (tail, [encoder.norm_out])])
        return segments

    def _encode_streamed(self, x: torch.Tensor) -> torch.Tensor:
        """Whole-clip encode with every GroupNorm's statistics streamed over 8-frame batches (no autograd)."""
        stream = _StreamedGroupNorms()
        h = x
        with _streaming(stream):
            for ops in self._encoder_segments():
                batches = frame_batches(h.shape[2], self.num_sample_frames_batch_size)
                for last, (_, norms) in enumerate(ops):
                    for norm in norms:
                        stream.collect(norm)
                        self._run_segment(ops[: last + 1], h, batches)
                        stream.finish()
                h = self._run_segment(ops, h, batches, keep=True)
        return h

    @staticmethod
    def _run_segment(ops: list[tuple], h: torch.Tensor, batches: list[tuple[int, int]], keep: bool = False):
        """``ops`` over ``h`` batch by batch with their causal caches; the output concatenated when ``keep``."""
        caches = [None] * len(ops)
        outputs = []
        for start, end in batches:
            piece = h[:, :, start:end].clone()  # ops may write into their input (the lean path)
            for i, (op, _) in enumerate(ops):
                piece, caches[i] = op(piece, caches[i])
            if keep:
                outputs.append(piece)
        if not keep:
            return None
        return torch.cat(outputs, dim=2) if len(outputs) > 1 else outputs[0]

    def _encode_frames(self, x: torch.Tensor) -> torch.Tensor:
        if self.use_whole_clip_encoding and self.whole_clip_streaming and _inference():
            return self._encode_streamed(x)
        cache = None
        latents = []
        batches = (
            [(0, x.shape[2])]
            if self.use_whole_clip_encoding
            else frame_batches(x.shape[2], self.num_sample_frames_batch_size)
        )
        for start, end in batches:
            h, cache = self.encoder(x[:, :, start:end], cache)
            latents.append(self.quant_conv(h) if self.quant_conv is not None else h)
        return torch.cat(latents, dim=2) if len(latents) > 1 else latents[0]

    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        if self.use_tiling and (width > self.tile_sample_min_width or height > self.tile_sample_min_height):
            return self.tiled_encode(x)
        return self._encode_frames(x)

    @apply_forward_hook
    def encode(
        self, x: torch.Tensor, return_dict: bool = True
    ) -> AutoencoderKLOutput | tuple[DiagonalGaussianDistribution]:
        """Video (B, C, 1 + 4k, H, W) in [-1, 1] -> posterior over (B, latent, 1 + k, H / 8, W / 8)."""
        self._check_video(x)
        with self._no_grad_unless_training(x):
            if self.use_slicing and x.shape[0] > 1:
                h = torch.cat([self._encode(x_slice) for x_slice in x.split(1)])
            else:
                h = self._encode(x)
        posterior = DiagonalGaussianDistribution(h)
        if not return_dict:
            return (posterior,)
        return AutoencoderKLOutput(latent_dist=posterior)

    # ------------------------------------------------------------------------------------------ decode

    def _decode_frames(self, z: torch.Tensor) -> torch.Tensor:
        batches = frame_batches(z.shape[2], self.num_latent_frames_batch_size)
        total = sum(decoded_num_frames(end - start, self.temporal_levels) for start, end in batches)
        cache, video, offset = None, None, 0
        for start, end in batches:
            chunk = z[:, :, start:end]
            if self.post_quant_conv is not None:
                chunk = self.post_quant_conv(chunk)
            frames, cache = self.decoder(chunk, cache)
            if len(batches) == 1:
                return frames
            if video is None:  # the whole clip is written into one tensor: no list of chunks, no final copy
                video = frames.new_empty((*frames.shape[:2], total, *frames.shape[3:]))
            video[:, :, offset : offset + frames.shape[2]] = frames
            offset += frames.shape[2]
            del frames
        return video

    def _decode(self, z: torch.Tensor, return_dict: bool = True) -> DecoderOutput | tuple[torch.Tensor]:
        height, width = z.shape[-2:]
        if self.use_tiling and (width > self.tile_latent_min_width or height > self.tile_latent_min_height):
            return self.tiled_decode(z, return_dict=return_dict)
        video = self._decode_frames(z)
        return DecoderOutput(sample=video) if return_dict else (video,)

    @apply_forward_hook
    def decode(self, z: torch.Tensor, return_dict: bool = True) -> DecoderOutput | tuple[torch.Tensor]:
        """Latents (B, latent, T, h, w), already divided by ``scaling_factor`` -> video (B, C, T', 8h, 8w)."""
        self._check_latents(z)
        with self._no_grad_unless_training(z):
            if self.use_slicing and z.shape[0] > 1:
                video = None
                for i, z_slice in enumerate(z.split(1)):
                    frames = self._decode(z_slice).sample
                    if video is None:
                        video = frames.new_empty((z.shape[0], *frames.shape[1:]))
                    video[i : i + 1] = frames
            else:
                video = self._decode(z).sample
        if not return_dict:
            return (video,)
        return DecoderOutput(sample=video)

    # ------------------------------------------------------------------------------------------ tiling

    def blend_v(self, a: torch.Tensor, b: torch.Tensor, blend_extent: int) -> torch.Tensor:
        """Fade the top rows of ``b`` in from the bottom rows of ``a`` (in place on ``b``)."""
        blend_extent = min(a.shape[3], b.shape[3], blend_extent)
        for y in range(blend_extent):
            b[:, :, :, y, :] = a[:, :, :, -blend_extent + y, :] * (1 - y / blend_extent) + b[:, :, :, y, :] * (
                y / blend_extent
            )
        return b

    def blend_h(self, a: torch.Tensor, b: torch.Tensor, blend_extent: int) -> torch.Tensor:
        """Fade the left columns of ``b`` in from the right columns of ``a`` (in place on ``b``)."""
        blend_extent = min(a.shape[4], b.shape[4], blend_extent)
        for x in range(blend_extent):
            b[:, :, :, :, x] = a[:, :, :, :, -blend_extent + x] * (1 - x / blend_extent) + b[:, :, :, :, x] * (
                x / blend_extent
            )
        return b

    def _tiled(self, x: torch.Tensor, process, tile: tuple[int, int], stride: tuple[int, int], blend, limit, out_size):
        """Run ``process`` on overlapping tiles row by row, blend each with its already-blended upper and left
        neighbours, and write the kept part straight into the output. Only the borders the next tiles blend with are
        kept, not every tile."""
        height, width = x.shape[-2:]
        row_starts, col_starts = range(0, height, stride[0]), range(0, width, stride[1])
        row_sizes = [min(out_size(min(tile[0], height - r)), limit[0]) for r in row_starts]
        col_sizes = [min(out_size(min(tile[1], width - c)), limit[1]) for c in col_starts]
        out, above, top = None, [None] * len(col_starts), 0
        for i, r in enumerate(row_starts):
            left, below, lead = None, [], 0
            for j, c in enumerate(col_starts):
                piece = process(x[:, :, :, r : r + tile[0], c : c + tile[1]])
                if i > 0:
                    piece = self.blend_v(above[j], piece, blend[0])
                if j > 0:
                    piece = self.blend_h(left, piece, blend[1])
                below.append(piece[:, :, :, piece.shape[3] - min(blend[0], piece.shape[3]) :].clone())
                left = piece[:, :, :, :, piece.shape[4] - min(blend[1], piece.shape[4]) :].clone()
                if out is None:
                    out = piece.new_empty((*piece.shape[:3], sum(row_sizes), sum(col_sizes)))
                out[:, :, :, top : top + row_sizes[i], lead : lead + col_sizes[j]] = piece[
                    :, :, :, : row_sizes[i], : col_sizes[j]
                ]
                lead += col_sizes[j]
                del piece
            above, top = below, top + row_sizes[i]
        return out

    def tiled_encode(self, x: torch.Tensor) -> torch.Tensor:
        """Encode tile by tile (``enable_tiling``); tiles overlap and are blended, so seams are smoothed, not gone."""
        self._check_video(x)
        factor = (self.tile_overlap_factor_height, self.tile_overlap_factor_width)
        sample_tile = (self.tile_sample_min_height, self.tile_sample_min_width)
        latent_tile = (self.tile_latent_min_height, self.tile_latent_min_width)
        blend = tuple(int(t * f) for t, f in zip(latent_tile, factor))

        def out_size(n: int) -> int:
            for _ in range(len(self.config.block_out_channels) - 1):
                n = (n - 2) // 2 + 1  # pad right by 1, 3x3 conv, stride 2
            return n

        return self._tiled(
            x,
            self._encode_frames,
            sample_tile,
            tuple(int(t * (1 - f)) for t, f in zip(sample_tile, factor)),
            blend,
            tuple(t - b for t, b in zip(latent_tile, blend)),
            out_size,
        )

    def tiled_decode(self, z: torch.Tensor, return_dict: bool = True) -> DecoderOutput | tuple[torch.Tensor]:
        """Decode tile by tile (``enable_tiling``): peak memory follows the tile size, not the video size."""
        self._check_latents(z)
        factor = (self.tile_overlap_factor_height, self.tile_overlap_factor_width)
        sample_tile = (self.tile_sample_min_height, self.tile_sample_min_width)
        latent_tile = (self.tile_latent_min_height, self.tile_latent_min_width)
        blend = tuple(int(t * f) for t, f in zip(sample_tile, factor))
        video = self._tiled(
            z,
            self._decode_frames,
            latent_tile,
            tuple(int(t * (1 - f)) for t, f in zip(latent_tile, factor)),
            blend,
            tuple(t - b for t, b in zip(sample_tile, blend)),
            lambda n: n * self.spatial_compression,
        )
        return DecoderOutput(sample=video) if return_dict else (video,)

    # ------------------------------------------------------------------------------------------ forward

    def forward(
        self,
        sample: torch.Tensor,
        sample_posterior: bool = False,
        return_dict: bool = True,
        generator: torch.Generator | None = None,
    ) -> DecoderOutput | tuple[torch.Tensor]:
        """Encode, take the posterior mode (or a sample), decode."""
        posterior = self.encode(sample).latent_dist
        z = posterior.sample(generator=generator) if sample_posterior else posterior.mode()
        video = self.decode(z).sample
        if not return_dict:
            return (video,)
        return DecoderOutput(sample=video)
