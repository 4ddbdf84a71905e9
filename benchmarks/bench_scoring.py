"""VisionReward scoring: the batched prefix-cache pass vs the official method (one greedy ``generate`` per question).

The batched pass is run twice: with the prefix shared inside attention (the default) and with the prefix cache
repeated once per question (the fallback for backbones with their own attention code).

    python benchmarks/bench_scoring.py                    # CogVLM2-like prefix lengths (the goal's setting), CPU
    python benchmarks/bench_scoring.py --preset small     # short prefixes: 400 / 576 visual tokens
    python benchmarks/bench_scoring.py --backbone cogvlm2 # the official models' architecture, random and narrow
    python benchmarks/bench_scoring.py --device cuda --hidden 2048 --layers 16

One image and one video, each against ALL questions of the full official checklist (image: alignment + 59 = 60;
video: 64), on the same random backbone built from the same seed. The backbone is a Qwen2-VL with random weights, sized
by the flags (defaults: text 512-d x 4 layers, vision 256-d x 2 blocks). Its byte-level BPE tokenizer is trained on the
checklists with enough merges (``--vocab 4096``, 886 tokens) to split the questions about as a real LLM tokenizer does,
word by word: 17-19 tokens per question with the chat template's closing tokens (``--vocab 512`` gives 26-29).
``--backbone cogvlm2`` runs the architecture of the official VisionReward models instead (this package's CogVLM2 /
CogVLM2-Video: an EVA vision tower, a Llama-3 decoder with vision experts, the official prompt layouts; 13 tokens per
question), at the same widths. The visual prefix is set by the media size:

- ``--preset cogvlm2`` (default): the prefix lengths of the official VisionReward models. An image of 1344 x 1344 px
  gives 48 x 48 = 2304 visual tokens (CogVLM2: 1344 px, 2304 + 2 slots); a video of 24 frames of 224 x 224 px gives
  24 x 64 tokens (CogVLM2-Video: 24 frames of 66 slots, the most the official sampler keeps).
- ``--preset small``: an image of 560 x 560 px (400 tokens) and 4 frames of 336 x 336 px (4 x 144 tokens).

``--image-size``, ``--frame-size`` and ``--frames`` override the preset (``--frames 7`` is a 6 s clip).

The speed-up is bounded by how much of one official call is the prefix: the table reports the vision tower's share of
a prefix pass (vision time / language-model time). The official CogVLM2 models spend about 3.3x (image) and 2.2x
(24-frame video) as much compute in the vision tower as in the language model's prefix pass (EVA2-CLIP-E, 4.4 B
parameters at 4 patches per language token, against Llama-3-8B), so a backbone with a cheaper vision tower - as here
for video - understates their speed-up. Answers of the methods are compared (they must agree).

Time: wall time of scoring one item (media already decoded), after one warm-up forward. Peak memory: on CUDA
``torch.cuda.max_memory_allocated`` during the scoring minus the allocation before it; on CPU each method runs in a
fresh child process, and a thread samples its resident set size every millisecond during the scoring; the peak minus
the size just before scoring is reported - coarse (allocator caching included) but the same for both methods.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time

import numpy as np
import torch

PROMPT = "a panda playing a guitar in a bamboo forest"
PRESETS = {
    "cogvlm2": {"image_size": 1344, "frame_size": 224, "frames": 24},
    "small": {"image_size": 560, "frame_size": 336, "frames": 4},
}


def build_scorer(args: argparse.Namespace, modality: str):
    from trl_vision_reward.reward.checklist import Checklist
    from trl_vision_reward.reward.modeling_vision_reward import VisionRewardModel
    from trl_vision_reward.reward.scoring import VisionRewardScorer

    size = args.image_size if modality == "image" else args.frame_size
    if args.backbone == "cogvlm2":
        backbone, processor = build_cogvlm2(args, modality, size)
    else:
        from trl_vision_reward.reward.tiny import tiny_qwen2_vl

        backbone, processor = tiny_qwen2_vl(
            seed=0,
            image_size=size,
            max_image_size=size,
            hidden_size=args.hidden,
            num_hidden_layers=args.layers,
            num_attention_heads=args.heads,
            num_key_value_heads=args.kv_heads,
            intermediate_size=args.hidden * 8 // 3,
            vision_depth=args.vision_depth,
            vision_embed_dim=args.vision_dim,
            vision_num_heads=4,
            vocab_size=args.vocab,
        )
    model = VisionRewardModel.from_backbone(backbone, Checklist.load(modality, select=False)).to(args.device).eval()
    return VisionRewardScorer(model, processor)


def build_cogvlm2(args: argparse.Namespace, modality: str, size: int):
    """A random CogVLM2 (image) or CogVLM2-Video with the official layouts and VisionReward templates, sized by flags."""
    from trl_vision_reward.reward.cogvlm2 import CogVLM2ImageProcessor, CogVLM2Processor
    from trl_vision_reward.reward.cogvlm2.templates import vision_reward_processor
    from trl_vision_reward.reward.cogvlm2.tiny import tiny_cogvlm2_model, tiny_cogvlm2_tokenizer

    video = modality == "video"
    tokenizer = tiny_cogvlm2_tokenizer(args.vocab)
    vision = dict(
        hidden_size=args.vision_dim,
        intermediate_size=args.vision_dim * 4,
        num_hidden_layers=args.vision_depth,
        num_heads=4,
        image_size=size,
        patch_size=14,
    )
    backbone = tiny_cogvlm2_model(
        video=video,
        vision_config=vision,
        vocab_size=len(tokenizer),
        hidden_size=args.hidden,
        intermediate_size=args.hidden * 8 // 3,
        num_hidden_layers=args.layers,
        num_attention_heads=args.heads,
        num_multi_query_heads=args.kv_heads,
        max_position_embeddings=8192,
    )
    image_processor = CogVLM2ImageProcessor(image_size=size, patch_size=14, is_video=video)
    return backbone, vision_reward_processor(CogVLM2Processor(image_processor, tokenizer))


def media(args: argparse.Namespace, modality: str):
    from PIL import Image

    rng = np.random.default_rng(0)
    if modality == "image":
        return [Image.fromarray(rng.integers(0, 256, (args.image_size, args.image_size, 3), dtype=np.uint8))]
    return [
        Image.fromarray(rng.integers(0, 256, (args.frame_size, args.frame_size, 3), dtype=np.uint8))
        for _ in range(args.frames)
    ]


def _rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakRSS:
    """Samples the resident set size every millisecond while scoring runs (CPU peak-memory measure)."""

    def __enter__(self):
        self.base = self.peak = _rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_bytes())
            time.sleep(0.001)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_bytes())


def vision_share(scorer, images) -> float:
    """Vision-tower time / language-model time of one prefix pass (best of two)."""
    inner = scorer.backbone.model
    visual = inner.visual if hasattr(inner, "visual") else inner.vision
    marks: list[float] = []
    hooks = [
        visual.register_forward_pre_hook(lambda *a: marks.append(time.perf_counter())),
        visual.register_forward_hook(lambda *a: marks.append(time.perf_counter())),
    ]
    prefix = scorer._prefix(images)
    best = float("inf")
    try:
        with torch.no_grad():
            for _ in range(2):
                marks.clear()
                start = time.perf_counter()
                scorer.backbone(**prefix, use_cache=True, logits_to_keep=1)
                total = time.perf_counter() - start
                best = min(best, (marks[1] - marks[0]) / (total - (marks[1] - marks[0])))
    finally:
        for hook in hooks:
            hook.remove()
    return best


def run_one(args: argparse.Namespace, modality: str, method: str) -> dict:
    scorer = build_scorer(args, modality)
    images = media(args, modality)
    questions = scorer.checklist.format_all(PROMPT)
    prefix_len = scorer.processor.prefix_inputs(images)["input_ids"].shape[1]
    suffix_len = float(np.mean([len(s) for s in scorer.processor.question_token_ids(questions)]))
    scorer.answer_batched(images, questions[:1])  # warm-up (kernels, allocator)
    scorer.prefix_sharing = "repeat" if method == "batched-repeat" else "auto"
    answer = scorer.answer_official if method == "official" else scorer.answer_batched
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        start = time.perf_counter()
        out = answer(images, questions)
        torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        peak = torch.cuda.max_memory_allocated() - base
    else:
        with PeakRSS() as rss:
            start = time.perf_counter()
            out = answer(images, questions)
            seconds = time.perf_counter() - start
        peak = rss.peak - rss.base
    return {
        "vision_share": vision_share(scorer, images) if method == "batched" else None,
        "seconds": seconds,
        "peak_mib": max(peak, 0) / 2**20,
        "answers": out["greedy_yes"].tolist(),
        "questions": len(questions),
        "prefix_tokens": int(prefix_len),
        "suffix_tokens": suffix_len,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--backbone", choices=["qwen2-vl", "cogvlm2"], default="qwen2-vl", help="random backbone family (see above)"
    )
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--kv-heads", type=int, default=2)
    parser.add_argument(
        "--vocab", type=int, default=4096, help="tokenizer merges (4096: word-level on the checklist, 512: finer)"
    )
    parser.add_argument("--vision-depth", type=int, default=2)
    parser.add_argument("--vision-dim", type=int, default=256)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="cogvlm2", help="media sizes (see above)")
    parser.add_argument("--image-size", type=int, help="square image side (28 px per visual token)")
    parser.add_argument("--frame-size", type=int, help="square video frame side")
    parser.add_argument("--frames", type=int, help="sampled video frames (one per second of video)")
    parser.add_argument("--modalities", nargs="+", default=["image", "video"], choices=["image", "video"])
    parser.add_argument("--child", nargs=2, metavar=("MODALITY", "METHOD"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    for name, value in PRESETS[args.preset].items():
        if getattr(args, name) is None:
            setattr(args, name, value)

    if args.child:
        print(json.dumps(run_one(args, *args.child)))
        return

    rows = []
    for modality in args.modalities:
        results = {}
        for method in ("batched", "batched-repeat", "official"):
            if args.device.startswith("cuda"):
                results[method] = run_one(args, modality, method)
            else:  # fresh process per method so peak RSS belongs to that method alone
                cmd = [sys.executable, __file__, *sys.argv[1:], "--child", modality, method]
                done = subprocess.run(cmd, check=True, capture_output=True, text=True)
                results[method] = json.loads(done.stdout.strip().splitlines()[-1])
        b, r, o = results["batched"], results["batched-repeat"], results["official"]
        agree = sum(x == y == z for x, y, z in zip(b["answers"], r["answers"], o["answers"]))
        rows.append((modality, b, r, o, agree))

    print(
        f"backbone: random {args.backbone}, text {args.hidden}-d x {args.layers} layers ({args.heads} heads, {args.kv_heads} kv), "
        f"vision {args.vision_dim}-d x {args.vision_depth} blocks, BPE vocab <= {args.vocab}; device {args.device}; "
        "torch threads "
        f"{torch.get_num_threads()}"
    )
    print(
        f"preset {args.preset}: image {args.image_size} px, video {args.frames} frames of {args.frame_size} px; batched = "
        "prefix shared inside attention (default); repeat = prefix cache repeated per question; vision/LM = vision tower "
        "time / language-model time of one prefix pass"
    )
    header = (
        f"{'media':<6} {'questions':>9} {'prefix tok':>10} {'vision/LM':>9} {'suffix tok':>10} {'batched s':>9} {'repeat s':>8} "
        f"{'official s':>10} {'speed-up':>8} {'(repeat)':>8} {'batched MiB':>11} {'repeat MiB':>10} "
        f"{'official MiB':>12} {'answers agree':>13}"
    )
    print(header)
    print("-" * len(header))
    for modality, b, r, o, agree in rows:
        print(
            f"{modality:<6} {b['questions']:>9} {b['prefix_tokens']:>10} {b['vision_share']:>8.2f}x {b['suffix_tokens']:>10.1f} "
            f"{b['seconds']:>9.2f} {r['seconds']:>8.2f} {o['seconds']:>10.2f} {o['seconds'] / b['seconds']:>7.1f}x "
            f"{o['seconds'] / r['seconds']:>7.1f}x {b['peak_mib']:>11.0f} {r['peak_mib']:>10.0f} {o['peak_mib']:>12.0f} "
            f"{agree:>6}/{b['questions']}"
        )


if __name__ == "__main__":
    main()
