"""CogVideoX transformer forward: ours vs diffusers' reference class, same weights and input, one run.

    python benchmarks/bench_transformer.py                 # mid-size CPU config, a forward takes about a second
    python benchmarks/bench_transformer.py --device cuda --layers 8 --frames 13 --height 60 --width 90

Time: median of ``--repeats`` forwards per model, interleaved (ours, reference, ours, ...) after one warm-up each, so
machine noise hits both alike; wall-clock time, and the process's CPU time (all threads), which is steadier on a
shared machine. Peak memory: on CUDA, ``torch.cuda.max_memory_allocated`` during the forward minus the
allocation before it; on CPU, each model runs its forward in a fresh child process and reports the growth of the
process's peak resident set size (``ru_maxrss``) over its resident size just before the forward - a coarse measure
(allocator caching included) but the same for both. Max abs diff compares the two outputs in float32.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import torch
from _configs import scaled_5b_transformer_config


def build_models(config: dict, device: str):
    from diffusers.models.transformers.cogvideox_transformer_3d import CogVideoXTransformer3DModel as Reference

    from diffusers_cogvideox import CogVideoXTransformer3DModel as Ours

    torch.manual_seed(0)
    reference = Reference(**config).eval()
    with torch.no_grad():  # weights away from their init, so nothing cancels by accident
        for p in reference.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    ours = Ours(**config).eval()
    ours.load_state_dict(reference.state_dict(), strict=True)
    return ours.to(device), reference.to(device)


def make_inputs(config: dict, args: argparse.Namespace, device: str) -> dict:
    from diffusers_cogvideox.models.embeddings import rotary_embeddings_for_video

    g = torch.Generator().manual_seed(1)
    latents = torch.randn(args.batch, args.frames, 16, args.height, args.width, generator=g)
    text = torch.randn(args.batch, args.text_length, args.text_dim, generator=g)
    rope = rotary_embeddings_for_video(config, args.height * 8, args.width * 8, args.frames)
    return dict(
        hidden_states=latents.to(device),
        encoder_hidden_states=text.to(device),
        timestep=torch.full((args.batch,), 500, device=device),
        image_rotary_emb=tuple(r.to(device) for r in rope),
    )


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed_forward(model, inputs: dict, device: str) -> tuple[float, float, torch.Tensor]:
    """Wall-clock and process CPU seconds (all threads) of one forward, and its output."""
    sync(device)
    start, start_cpu = time.perf_counter(), time.process_time()
    with torch.no_grad():
        out = model(**inputs).sample
    sync(device)
    return time.perf_counter() - start, time.process_time() - start_cpu, out


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def child_peak_memory(which: str, args: argparse.Namespace) -> None:
    """Runs in a child process: one forward of one model; prints the peak-RSS growth in bytes as JSON."""
    config = scaled_5b_transformer_config(args)
    ours, reference = build_models(config, "cpu")
    model = ours if which == "ours" else reference
    del ours, reference
    inputs = make_inputs(config, args, "cpu")
    before = rss_bytes()
    with torch.no_grad():
        model(**inputs)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB
    print(json.dumps({"peak_growth": max(0, peak - before)}))


def cpu_peak_memory(which: str, argv: list[str]) -> int:
    result = subprocess.run(
        [sys.executable, __file__, *argv, "--child-memory", which], capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout.strip().splitlines()[-1])["peak_growth"]


def cuda_peak_memory(model, inputs: dict) -> int:
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    before = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    with torch.no_grad():
        model(**inputs)
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - before


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--head-dim", type=int, default=64)
    parser.add_argument("--frames", type=int, default=13, help="latent frames")
    parser.add_argument("--height", type=int, default=24, help="latent height")
    parser.add_argument("--width", type=int, default=32, help="latent width")
    parser.add_argument("--text-length", type=int, default=226)
    parser.add_argument("--text-dim", type=int, default=256)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--child-memory", choices=["ours", "reference"], help=argparse.SUPPRESS)
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.child_memory:
        child_peak_memory(args.child_memory, args)
        return 0

    config = scaled_5b_transformer_config(args)
    ours, reference = build_models(config, args.device)
    inputs = make_inputs(config, args, args.device)
    tokens = args.frames * (args.height // 2) * (args.width // 2)
    print(
        f"5b-style transformer: {args.layers} layers, {args.heads}x{args.head_dim} heads, {args.frames} latent frames "
        f"of {args.height}x{args.width} latents ({tokens} video + {args.text_length} text tokens), batch "
        f"{args.batch}, device {args.device}, {torch.get_num_threads()} CPU threads"
    )

    *_, out_ours = timed_forward(ours, inputs, args.device)  # warm-up
    *_, out_reference = timed_forward(reference, inputs, args.device)
    max_abs_diff = (out_ours.float() - out_reference.float()).abs().max().item()
    times = {"ours": [], "reference": []}
    cpu_times = {"ours": [], "reference": []}
    for _ in range(args.repeats):
        for name, model in (("ours", ours), ("reference", reference)):
            wall, cpu, _ = timed_forward(model, inputs, args.device)
            times[name].append(wall)
            cpu_times[name].append(cpu)
    median = {name: statistics.median(values) for name, values in times.items()}
    median_cpu = {name: statistics.median(values) for name, values in cpu_times.items()}

    if args.device.startswith("cuda"):
        memory = {"ours": cuda_peak_memory(ours, inputs), "reference": cuda_peak_memory(reference, inputs)}
        memory_method = "torch.cuda.max_memory_allocated growth during the forward"
    else:
        del ours, reference
        memory = {name: cpu_peak_memory(name, argv) for name in ("ours", "reference")}
        memory_method = "peak RSS growth during the forward, fresh process per model"

    rows = [
        ("time per forward (median)", f"{median['ours']:.3f} s", f"{median['reference']:.3f} s",
         f"{median['ours'] / median['reference']:.3f}x"),
        ("process CPU time per forward (median)", f"{median_cpu['ours']:.3f} s", f"{median_cpu['reference']:.3f} s",
         f"{median_cpu['ours'] / median_cpu['reference']:.3f}x"),
        ("peak memory", f"{memory['ours'] / 2**20:.1f} MiB", f"{memory['reference'] / 2**20:.1f} MiB",
         f"{memory['ours'] / max(memory['reference'], 1):.3f}x"),
    ]  # fmt: skip
    header = ("", "ours", "diffusers", "ours / diffusers")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(4)]
    line = lambda r: "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    print(line(header))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print(line(row))
    print(f"max abs diff of the outputs: {max_abs_diff:.3e}")
    print(
        f"times (s): ours {[round(t, 3) for t in times['ours']]}, diffusers {[round(t, 3) for t in times['reference']]}"
    )
    print(f"memory method: {memory_method}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
