"""One SFT step: ``CogVideoXSFTTrainer`` on cached latents vs diffusers' example-script approach, same model and run.

    python benchmarks/bench_sft_step.py                          # CogVideoX-5b-shaped scaled config on CPU
    python benchmarks/bench_sft_step.py --device cuda --dtype bfloat16 --layers 8 --frames 13 --height 30 --width 45

Variants (both: LoRA rank 128 / alpha 64 on the attention projections, AdamW, gradient checkpointing, one clip):

* ``ours``: ``CogVideoXSFTTrainer``'s step on a cached clip (posterior mean and std of the scaled latents, T5
  embedding): the VAE and the text encoder are not loaded while training.
* ``diffusers example``: ``examples/cogvideo/train_cogvideox_lora.py``'s setup - the text encoder, the VAE and the
  transformer all resident on the device in the weight dtype; the clips' latent distributions encoded once by the VAE
  before training and kept; the prompts encoded by T5 in every step. The step itself is the GPU suite's rendering of
  the script's loss (``gpu_cases/sft.py``: ``add_adapter`` LoRA, ``add_noise``, ``get_velocity`` x0, the
  ``1 / (1 - abar_t)``-weighted x0 MSE), run with ``--gradient_checkpointing`` as the script offers it.

The text encoder and VAE are scaled with the transformer so that their sizes relative to it stay near the released
checkpoints' (T5-XXL's encoder about 0.85x and the VAE about 0.04x the CogVideoX-5b transformer's parameters); the
header prints all three counts.

Peak memory: each variant in a fresh child process, over its two training steps with everything it keeps resident
(the window opens before the models are built and its peak is reset after set-up, so the one-off VAE encode is not
counted - in the example it runs before training); on CUDA ``max_memory_allocated``, on CPU the bytes held by live
tensors (``_tensor_memory.py``). ``--whole-clip`` adds the VAE encode table: whole-clip (exact SAT statistics,
streamed) vs the diffusers-compatible 8-frame batches vs one unstreamed whole-clip pass.
Throughput: clips per second, median over ``--steps`` steps after a warm-up, both variants in one process with their
steps interleaved; on CPU the clock is the process's CPU time.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import statistics
import subprocess
import sys
import tempfile
import time
from types import SimpleNamespace

import torch
from _configs import add_scaled_transformer_arguments, scaled_5b_transformer_config
from _tensor_memory import TensorMemoryPeak
from gpu_cases.sft import example_step, make_batch, ours_step, sft_classes

VARIANTS = ("ours", "diffusers example")
# Parameter counts of the released checkpoints relative to the CogVideoX-5b transformer (about 5.6B): T5-XXL's encoder
# (about 4.8B) and the VAE (about 0.2B).
T5_RATIO, VAE_RATIO = 0.85, 0.04


def _params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def clip_shape(args: argparse.Namespace) -> tuple[int, int, int]:
    """The clip in pixels: ``args.frames`` latent frames of ``height x width`` latents."""
    return 4 * (args.frames - 1) + 1, 8 * args.height, 8 * args.width


def build_transformer(args: argparse.Namespace):
    from diffusers_cogvideox import CogVideoXTransformer3DModel

    torch.manual_seed(0)
    model = CogVideoXTransformer3DModel(**scaled_5b_transformer_config(args)).to(args.device)
    return model.to(getattr(torch, args.dtype)).train()


def build_text_encoder(args: argparse.Namespace, transformer_params: int):
    """A T5 v1.1 encoder of width ``text_dim`` with as many layers as keep it near T5_RATIO of the transformer."""
    from transformers import T5Config, T5EncoderModel

    def config(layers):
        return T5Config(vocab_size=1024, d_model=args.text_dim, d_kv=64, d_ff=5 * args.text_dim // 2,
                        num_layers=layers, num_heads=max(args.text_dim // 64, 1), feed_forward_proj="gated-gelu",
                        is_encoder_decoder=False, use_cache=False, dropout_rate=0.0)  # fmt: skip

    layers = args.t5_layers
    if layers is None:
        with torch.device("meta"):
            one, two = _params(T5EncoderModel(config(1))), _params(T5EncoderModel(config(2)))
        layers = max(1, round((T5_RATIO * transformer_params - one) / (two - one)) + 1)
    torch.manual_seed(1)
    return T5EncoderModel(config(layers)).to(args.device, getattr(torch, args.dtype)).eval().requires_grad_(False)


def build_vae(args: argparse.Namespace):
    from diffusers_cogvideox import AutoencoderKLCogVideoX

    c = args.vae_width
    torch.manual_seed(2)
    vae = AutoencoderKLCogVideoX(block_out_channels=(c, 2 * c, 2 * c, 4 * c), norm_num_groups=min(32, c))
    return vae.to(args.device, getattr(torch, args.dtype)).eval().requires_grad_(False)


def _ctx(args: argparse.Namespace) -> SimpleNamespace:
    """What the GPU suite's step builders read from their case context."""
    return SimpleNamespace(device=args.device, dtype=getattr(torch, args.dtype), details={})


def build_variant(variant: str, args: argparse.Namespace, output_dir: str):
    """The variant's resident models and ``step()``; returns ``(step, trainable, resident parameters by part)``."""
    clip = clip_shape(args)
    batch = make_batch(clip, (args.text_length, args.text_dim), args.device)
    classes = sft_classes()
    ctx = _ctx(args)
    transformer = build_transformer(args)
    parts = {"transformer": _params(transformer)}
    if variant == "ours":
        step, trainable = ours_step(classes, transformer, batch, clip, ctx, output_dir)
        return step, trainable, parts

    text_encoder = build_text_encoder(args, parts["transformer"])
    vae = build_vae(args)
    parts.update(text_encoder=_params(text_encoder), vae=_params(vae))
    generator = torch.Generator().manual_seed(4)
    video = torch.rand((1, 3, *clip), generator=generator).mul(2).sub(1).to(args.device, vae.dtype)
    with torch.no_grad():  # the script encodes every clip once before training and keeps the distributions
        posterior = vae.encode(video).latent_dist
    scale = vae.config.scaling_factor
    batch["latent_mean"] = (posterior.mean * scale).permute(0, 2, 1, 3, 4).float()
    batch["latent_std"] = (posterior.std * scale).permute(0, 2, 1, 3, 4).float()
    del video, posterior
    ids = torch.randint(0, text_encoder.config.vocab_size, (1, args.text_length), generator=generator).to(args.device)
    transformer_step, trainable = example_step(classes, transformer, batch, clip, ctx, output_dir)

    def step():
        with torch.no_grad():  # compute_prompt_embeddings(..., requires_grad=False) in every step
            batch["prompt_embeds"] = text_encoder(ids)[0]
        transformer_step()

    step.keep_alive = (text_encoder, vae)  # resident for the whole run, as in the script
    return step, trainable, parts


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def measure_memory(variant: str, args: argparse.Namespace) -> dict:
    """Peak bytes over two steps with the variant's resident models; meant for a fresh process."""
    warm = argparse.Namespace(**{**vars(args), "layers": 1, "heads": 2, "head_dim": 16, "text_dim": 64, "t5_layers": 1})
    with tempfile.TemporaryDirectory(prefix="bench_sft_") as out:  # one-off set-up costs out of the figure
        step, _, _ = build_variant(variant, warm, out)
        step()
        step()
    del step
    gc.collect()
    cuda = args.device == "cuda"
    with tempfile.TemporaryDirectory(prefix="bench_sft_") as out:
        if cuda:
            torch.cuda.synchronize()
            start = torch.cuda.memory_allocated()
        with contextlib.nullcontext() if cuda else TensorMemoryPeak() as tensors:
            step, trainable, parts = build_variant(variant, args, out)
            _sync(args.device)
            gc.collect()
            if cuda:
                resident = torch.cuda.memory_allocated() - start
                torch.cuda.reset_peak_memory_stats()
            else:
                resident = tensors.current
                tensors.peak = tensors.current  # the training steps' peak, the resident models included
            step()
            step()
            _sync(args.device)
        peak = torch.cuda.max_memory_allocated() - start if cuda else tensors.peak
    return {"peak_bytes": peak, "resident_bytes": resident, "trainable": trainable, "parts": parts}


def measure_speed(variants: list[str], args: argparse.Namespace) -> dict[str, float]:
    """Clips per second per variant: all built in this process, steps interleaved so machine noise hits all alike."""
    with tempfile.TemporaryDirectory(prefix="bench_sft_") as out:
        steps = {v: build_variant(v, args, out)[0] for v in variants}
        for step in steps.values():
            step()  # warm-up
        times: dict[str, list[float]] = {v: [] for v in variants}
        clock = time.perf_counter if args.device == "cuda" else time.process_time
        for _ in range(args.steps):
            for v, step in steps.items():
                t0 = clock()
                step()
                _sync(args.device)
                times[v].append(clock() - t0)
    return {v: 1 / statistics.median(ts) for v, ts in times.items()}


def measure_encode(mode: str, args: argparse.Namespace) -> dict:
    """Peak bytes (beyond the VAE and the clip) and seconds of one ``vae.encode`` of ``--encode-frames`` frames."""
    vae = build_vae(args)
    if mode != "batched":
        vae.enable_whole_clip_encoding(streamed=mode == "whole clip, streamed")
    frames = args.encode_frames
    video = torch.rand((1, 3, frames, 8 * args.height, 8 * args.width), generator=torch.Generator().manual_seed(5))
    video = video.mul(2).sub(1).to(args.device, vae.dtype)
    vae.encode(video[:, :, :5])  # one-off costs
    _sync(args.device)
    cuda = args.device == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
        start = torch.cuda.memory_allocated()
    t0 = time.perf_counter() if cuda else time.process_time()
    with contextlib.nullcontext() if cuda else TensorMemoryPeak() as tensors:
        mean = vae.encode(video).latent_dist.mean
        _sync(args.device)
    seconds = (time.perf_counter() if cuda else time.process_time()) - t0
    peak = torch.cuda.max_memory_allocated() - start if cuda else tensors.peak
    return {"peak_bytes": peak, "seconds": seconds, "mean": mean.float().cpu()}


ENCODE_MODES = ("batched", "whole clip, streamed", "whole clip, one pass")


def _child(argv: list[str], *extra: str) -> dict:
    out = subprocess.run([sys.executable, __file__, *argv, *extra], capture_output=True, text=True)
    line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"{extra} failed:\n{out.stderr[-3000:]}")
    return json.loads(line[len("RESULT ") :])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_scaled_transformer_arguments(parser, text_length=64, frames=3)
    parser.add_argument("--t5-layers", type=int, default=None, help="default: T5_RATIO of the transformer's size")
    parser.add_argument("--vae-width", type=int, default=8, help="first VAE block width (official: 128)")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per variant (after one warm-up)")
    parser.add_argument("--whole-clip", action="store_true", help="also measure the VAE encode modes")
    parser.add_argument("--encode-frames", type=int, default=33, help="pixel frames of the encode table's clip")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--encode-child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    argv = list(sys.argv[1:] if argv is None else argv)

    if args.child:
        print("RESULT " + json.dumps(measure_memory(args.child, args)))
        return 0
    if args.encode_child:
        result = measure_encode(args.encode_child, args)
        path = tempfile.mktemp(prefix="bench_sft_mean_", suffix=".pt")
        torch.save(result.pop("mean"), path)
        print("RESULT " + json.dumps({**result, "mean_path": path}))
        return 0
    results = {v: _child(argv, "--child", v) for v in VARIANTS}
    for variant, speed in measure_speed(list(VARIANTS), args).items():
        results[variant]["clips_per_s"] = speed
    ours, example = results["ours"], results["diffusers example"]
    parts = example["parts"]
    frames, height, width = clip_shape(args)
    print(
        f"\nOne SFT step, 1 clip of {frames}x{height}x{width} (latents {args.frames}x16x{args.height}x{args.width}), "
        f"{args.dtype}, {args.device}; transformer {parts['transformer'] / 1e6:.1f}M parameters "
        f"({args.layers} layers, {args.heads}x{args.head_dim}), T5 encoder {parts['text_encoder'] / 1e6:.1f}M, "
        f"VAE {parts['vae'] / 1e6:.2f}M"
    )
    print("| variant | trainable | clips/s | peak MiB | resident MiB | memory ratio | throughput ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for variant, r in results.items():
        other = variant != "ours"
        mem = f"{ours['peak_bytes'] / r['peak_bytes']:.2f}x" if other else "-"
        speed = f"{ours['clips_per_s'] / r['clips_per_s']:.2f}x" if other else "-"
        print(f"| {variant} | {r['trainable']:,} | {r['clips_per_s']:.3f} | {r['peak_bytes'] / 2**20:.1f} | "
              f"{r['resident_bytes'] / 2**20:.1f} | {mem} | {speed} |")  # fmt: skip
    print("memory ratio = ours / example peak (goal <= 0.6x); throughput ratio = ours / example clips/s (goal >= 1.0x)")

    if args.whole_clip:
        encodes = {m: _child(argv, "--encode-child", m) for m in ENCODE_MODES}
        means = {m: torch.load(r.pop("mean_path")) for m, r in encodes.items()}
        exact = means["whole clip, one pass"]
        print(f"\nVAE encode of one {args.encode_frames}x{height}x{width} clip (VAE width {args.vae_width})")
        print("| mode | peak MiB | seconds | memory vs batched | max abs diff vs one whole-clip pass |")
        print("|---|---:|---:|---:|---:|")
        for mode, r in encodes.items():
            diff = (means[mode] - exact).abs().max().item()
            print(f"| {mode} | {r['peak_bytes'] / 2**20:.1f} | {r['seconds']:.2f} | "
                  f"{r['peak_bytes'] / encodes['batched']['peak_bytes']:.2f}x | {diff:.2e} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
