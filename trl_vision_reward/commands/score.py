"""``vision-reward score FILE... --prompt ...``: checklist scores of images or videos, as a table and a JSON/CSV file.

Files that cannot be scored are listed with the reason; the others are still scored (exit status 1 if any failed).
"""

from __future__ import annotations

import argparse

from diffusers_cogvideox.checks import positive_int


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", help="image or video files to score")
    parser.add_argument("--prompt", default=None, help="the generation prompt (fills [[prompt]] in the questions)")
    parser.add_argument(
        "--model",
        default=None,
        help="scorer folder or Hub repo id (save_pretrained layout); default 'tiny': the tiny world's video scorer "
        "shipped with the package (videos only: with images, or with --checklist/--full, the random tiny scorer "
        "runs); 'random': an embedded tiny RANDOM scorer",
    )
    parser.add_argument(
        "--checklist",
        choices=["image", "video"],
        default=None,
        help="official checklist to ask; default: the one stored with --model (for the random tiny scorer: 'video' "
        "when every file is a video, else 'image')",
    )
    parser.add_argument("--full", action="store_true", help="ask the full official list, not the select subset")
    parser.add_argument(
        "--method",
        choices=["batched", "naive", "official"],
        default="batched",
        help="batched: one media encoding for all questions (default); naive: one forward per question; "
        "official: one greedy generate per question (the released scripts)",
    )
    parser.add_argument(
        "--max-frames", type=positive_int, default=None, help="video frames kept (one per second; default 24)"
    )
    parser.add_argument("--question-batch-size", type=positive_int, default=None, help="questions per batched pass")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cuda")
    parser.add_argument("--json", dest="json_path", default="vision_reward_scores.json", help="JSON output file")
    parser.add_argument("--csv", dest="csv_path", default=None, help="also write one CSV row per file")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --json / --csv file")


def _table(batch) -> str:
    lines = []
    for r in batch.results:
        lines.append(
            f"{r.source}  score={r.score:+.4f}  soft={r.soft_score:+.4f}  ({r.checklist}, {r.num_frames} frame(s))"
        )
        width = max(map(len, r.dimension_scores))
        for name, value in r.dimension_scores.items():
            lines.append(f"    {name:<{width}}  {value:7.4f}   soft {r.soft_dimension_scores[name]:7.4f}")
    for f in batch.failures:
        lines.append(f"{f.source}  FAILED: {f.error}")
    return "\n".join(lines)


def embedded(args: argparse.Namespace) -> str | None:
    """Which embedded scorer runs: ``"world"`` (the trained tiny world's), ``"random"`` or None (``--model``'s).
    The world's scorer asks its own video checklist, so images, ``--checklist`` or ``--full`` with no ``--model``
    run the random one; naming ``tiny`` for them is refused."""
    from diffusers_cogvideox.errors import UsageError
    from diffusers_cogvideox.sampling import is_random, is_tiny
    from trl_vision_reward.reward.processing_vision_reward import guess_modality

    if not is_tiny(args.model):
        return None
    if is_random(args.model):
        return "random"
    images = [f for f in args.files if guess_modality(f) != "video"]
    if not images and not args.checklist and not args.full:
        return "world"
    if args.model is None:
        return "random"
    reason = f"{images[0]} is not a video" if images else "it asks its own checklist (no --checklist/--full)"
    raise UsageError(f"--model {args.model}: the tiny world's scorer cannot score here ({reason}); pass --model random")


def run(args: argparse.Namespace) -> int:
    from diffusers_cogvideox.checks import check_unique_files
    from diffusers_cogvideox.outputs import check_output_file
    from trl_vision_reward.reward.checklist import Checklist
    from trl_vision_reward.reward.scoring import VisionRewardScorer

    check_unique_files(args.files, "files to score")
    for path, flag, suffix in ((args.json_path, "--json", ".json"), (args.csv_path, "--csv", ".csv")):
        if path is not None:  # before any model loads: never an input, never an existing file unless --overwrite
            check_output_file(path, inputs=args.files, overwrite=args.overwrite, suffixes=(suffix,), flag=flag)
    checklist = Checklist.load(args.checklist, select=not args.full) if args.checklist else None
    which = embedded(args)
    if which == "world":
        from trl_vision_reward.reward.tiny import tiny_world_scorer_folder

        print("using the tiny world's scorer shipped with the package (trained on procedural clips; videos only)")
        scorer = VisionRewardScorer.from_pretrained(
            str(tiny_world_scorer_folder()), device=args.device, question_batch_size=args.question_batch_size
        )
    elif which == "random":
        from trl_vision_reward.reward.processing_vision_reward import guess_modality
        from trl_vision_reward.reward.tiny import tiny_vision_reward

        why = "" if args.model else " (the tiny world's scorer takes videos and its own checklist only)"
        print(f"using the embedded tiny RANDOM scorer (Qwen2-VL, random weights){why}: scores are noise")
        kinds = {guess_modality(f) for f in args.files}  # the tiny scorer asks the checklist of the files given
        default = "video" if kinds == {"video"} else "image"
        model, processor = tiny_vision_reward(args.checklist or default, select=not args.full)
        scorer = VisionRewardScorer(model.to(args.device), processor, question_batch_size=args.question_batch_size)
    else:
        scorer = VisionRewardScorer.from_pretrained(
            args.model, device=args.device, checklist=checklist, question_batch_size=args.question_batch_size
        )
    if args.max_frames is not None:
        scorer.processor.max_frames = args.max_frames
    # each file's modality comes from its suffix; a file that does not match the checklist is reported, not scored
    batch = scorer.score_files(args.files, args.prompt, method=args.method, progress=not args.quiet)
    print(_table(batch))
    out = batch.write_json(args.json_path)
    print(f"wrote {out}")
    if args.csv_path:
        print(f"wrote {batch.write_csv(args.csv_path)}")
    if batch.failures:
        print(f"{len(batch.failures)} of {len(batch.failures) + len(batch.results)} file(s) failed")
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    p = argparse.ArgumentParser()
    add_arguments(p)
    raise SystemExit(run(p.parse_args()))
