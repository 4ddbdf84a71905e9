"""CogVideoX VAE decode: ours vs diffusers' reference class, same weights and latents, one run.

    python benchmarks/bench_vae.py                  # mid-size CPU config: 13 latent frames -> 49 frames, seconds each
    python benchmarks/bench_vae.py --height 30 --width 45 --channels 128 256 256 512   # official widths, 240x360
    python benchmarks/bench_vae.py --device cuda --height 60 --width 90 --channels 128 256 256 512

Both models get the same weights (the reference's, perturbed off their init, through a file) and decode the same
latents under ``torch.no_grad()`` with the official frame schedule. Peak memory: on CPU each decode runs in a fresh
child process, which resets its peak resident set size (Linux ``/proc/self/clear_refs``) after building the model and
the latents and reports the growth of the peak (``VmHWM``) over the resident size then - everything the decode
allocates, convolution work buffers included; on CUDA,
``torch.cuda.max_memory_allocated`` during the decode minus the allocation before it. Time is the wall time of that one
decode. The child processes save their outputs, and the parent reports the max abs difference in float32.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import torch


def build_config(args: argparse.Namespace) -> dict:
    """The official CogVideoX VAE layout with narrower blocks."""
    return dict(
        block_out_channels=tuple(args.channels),
        latent_channels=16,
        layers_per_block=args.layers,
        norm_num_groups=args.groups,
    )


def reference_weights(config: dict) -> dict:
    """The reference model's weights, moved away from their init so that nothing cancels by accident."""
    from diffusers import AutoencoderKLCogVideoX as Reference

    torch.manual_seed(0)
    model = Reference(**config)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for _, p in sorted(model.named_parameters()):
            p.add_(torch.randn(p.shape, generator=g) * 0.02)
    return model.state_dict()


def build_model(which: str, config: dict, weights: str):
    if which == "reference":
        from diffusers import AutoencoderKLCogVideoX as Model
    else:
        from diffusers_cogvideox import AutoencoderKLCogVideoX as Model
    model = Model(**config).eval()
    model.load_state_dict(torch.load(weights), strict=True)
    return model


def start_peak_window() -> int:
    """Resident bytes now, with the process's peak resident size reset to it where Linux allows (``clear_refs``), so
    that a peak reached while loading the weights cannot hide the decode's."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # not Linux: the peak so far is the best baseline there is
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def peak_bytes() -> int:
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def child(args: argparse.Namespace) -> None:
    """Decode once with one model and report time and peak memory as JSON on stdout."""
    torch.set_num_threads(args.threads)
    model = build_model(args.child, build_config(args), args.weights).to(args.device)
    g = torch.Generator().manual_seed(1)
    latents = torch.randn(1, 16, args.frames, args.height, args.width, generator=g).to(args.device)
    cuda = args.device.startswith("cuda")
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = start_peak_window()
    start = time.perf_counter()
    with torch.no_grad():
        video = model.decode(latents).sample
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    if cuda:
        peak = torch.cuda.max_memory_allocated() - base
    else:
        peak = peak_bytes() - base
    torch.save(video.float().cpu(), args.output)
    print(json.dumps({"seconds": seconds, "peak_bytes": peak, "shape": list(video.shape)}))


def run_child(which: str, args: argparse.Namespace, output: str) -> dict:
    command = [sys.executable, __file__, "--child", which, "--output", output, "--weights", args.weights]
    for key in ("device", "frames", "height", "width", "layers", "groups", "threads"):
        command += [f"--{key}", str(getattr(args, key))]
    command += ["--channels", *map(str, args.channels)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{which} decode failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--frames", type=int, default=13, help="latent frames (13 -> 49 video frames)")
    parser.add_argument("--height", type=int, default=12, help="latent height (video height / 8)")
    parser.add_argument("--width", type=int, default=18, help="latent width (video width / 8)")
    parser.add_argument("--channels", type=int, nargs=4, default=[32, 64, 64, 128], help="block_out_channels")
    parser.add_argument("--layers", type=int, default=3, help="layers_per_block (official: 3)")
    parser.add_argument("--groups", type=int, default=32, help="norm_num_groups (official: 32)")
    parser.add_argument("--threads", type=int, default=max(1, min(4, os.cpu_count() or 1)))
    parser.add_argument("--child", choices=["ours", "reference"], help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    parser.add_argument("--weights", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args)
        return

    with tempfile.TemporaryDirectory() as tmp:
        args.weights = os.path.join(tmp, "weights.pt")
        torch.save(reference_weights(build_config(args)), args.weights)
        results = {which: run_child(which, args, os.path.join(tmp, f"{which}.pt")) for which in ("reference", "ours")}
        diff = (torch.load(os.path.join(tmp, "ours.pt")) - torch.load(os.path.join(tmp, "reference.pt"))).abs().max()

    ours, ref = results["ours"], results["reference"]
    mib = 2**20
    print(
        f"VAE decode, block_out_channels={tuple(args.channels)}, layers_per_block={args.layers}, "
        f"{args.frames} latent frames of {args.height}x{args.width} -> video {tuple(ours['shape'])}, "
        f"device={args.device}, threads={args.threads}"
    )
    print(f"| {'':<10} | {'time (s)':>9} | {'peak memory (MiB)':>18} |")
    print(f"|{'-' * 12}|{'-' * 11}|{'-' * 20}|")
    print(f"| {'reference':<10} | {ref['seconds']:>9.2f} | {ref['peak_bytes'] / mib:>18.1f} |")
    print(f"| {'ours':<10} | {ours['seconds']:>9.2f} | {ours['peak_bytes'] / mib:>18.1f} |")
    print(
        f"| {'ratio':<10} | {ours['seconds'] / ref['seconds']:>9.2f} | "
        f"{ours['peak_bytes'] / ref['peak_bytes']:>18.2f} |"
    )
    print(f"max abs diff (ours - reference): {diff.item():.3g}")


if __name__ == "__main__":
    main()
