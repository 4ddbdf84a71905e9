"""MPO vs plain Diffusion-DPO in the tiny world: which pairs teach the generator a trade-off between dimensions.

    python benchmarks/mpo_vs_dpo.py --out outputs/mpo_vs_dpo           # the full run: 3 seeds, sized for 15 min on 2 cores
    python benchmarks/mpo_vs_dpo.py --smoke --out /tmp/mpo_vs_dpo      # minimal size (CI): runs, writes the table

For each seed: sample ``--samples-per-prompt`` clips per prompt with the shipped tiny-world CogVideoX, write them as
mp4, score the files with the shipped tiny-world VisionReward, and measure the procedural truth
(:mod:`datasets_scripts.tiny_world.truth`) on the frames decoded from the same mp4. Then, per pair rule, mine pairs
(:func:`trl_vision_reward.mpo.pairs.mine_pairs`), train a LoRA with :class:`~trl_vision_reward.mpo.trainer.MPOTrainer`
on them, regenerate the same prompts with the same seeds through the saved adapter (a paired comparison: without
training the regenerated clips equal the base clips), and measure each dimension's change, after - before, with the
truth (so a scorer fooled by the training shows) and with the scorer.

Rules (the paper's ablation, VisionReward sec. 3.3): ``dpo`` admits a pair on the total-score gap only (>= 0.8);
``mpo-dimension`` / ``mpo-sub_dimension`` / ``mpo-question`` also need the chosen clip to dominate at that granularity
(gaps 0.6 / 0.5 / 0.4; ``--gap-scale`` rescales all four). In the tiny world every dimension has exactly one
sub-dimension, so the dimension and sub-dimension rules check the same dominance and differ only in the gap.

Design: each seed draws its own base samples (generation seed = the seed) and trains with that seed; all rules of one
seed share those base samples, the training seed and the budget (``--train-steps`` steps of ``--batch-size`` pairs;
a rule with fewer pairs cycles over them, and repeats them to fill a batch; each clip is VAE-encoded once per
seed, one posterior draw that every rule trains on). A rule that admits no pair for a seed is
reported and its cell is not trained (nothing is made up for it). Intervals: mean +- t(0.975, n-1) * sd / sqrt(n)
over the n seeds that trained. The world's total is its hidden preference :func:`truth.utility` (Dynamic counts
double); the scorer's total is the VisionReward score.

Torch runs on ``--threads`` threads (1 by default): the tiny models' ops are too small to gain from a second thread,
and on shared cores a spinning OpenMP pool slows them down many times over.

Writes ``--out``/``results.json`` (every figure, per seed), ``table.md`` (the tables and the command), ``plot.svg``
(truth change per dimension with 95% intervals, one bar per rule) and, per seed, the base and regenerated clips
(generate-score job folders), the adapters and the pairs. Exit status 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import shlex
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

COMMAND = "benchmarks/mpo_vs_dpo.py"
RULES: dict[str, tuple[str, str]] = {  # name -> (PairRule.kind, granularity)
    "dpo": ("dpo", "dimension"),
    "mpo-dimension": ("mpo", "dimension"),
    "mpo-sub_dimension": ("mpo", "sub_dimension"),
    "mpo-question": ("mpo", "question"),
}
TOTAL = "total"
DEFAULTS = dict(seeds=[0, 1, 2], num_prompts=8, samples_per_prompt=6, train_steps=40, batch_size=4)
SMOKE = dict(seeds=[0, 1], num_prompts=1, samples_per_prompt=3, train_steps=2, batch_size=2)


# ---------------------------------------------------------------------------------------------------------------------
# Arguments


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    from diffusers_cogvideox.errors import UsageError

    p = argparse.ArgumentParser(
        prog="mpo_vs_dpo.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--out", type=Path, default=Path("outputs/mpo_vs_dpo"), help="output folder")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier run of this benchmark in --out")
    p.add_argument("--smoke", action="store_true", help=f"minimal size (CI): {SMOKE}; explicit flags still win")
    p.add_argument(
        "--seeds", type=int, nargs="+", help=f"seeds, each its own base samples and training ({DEFAULTS['seeds']})"
    )
    p.add_argument("--prompts", nargs="+", help="tiny-world prompts, e.g. 'a red circle on a grey background'")
    p.add_argument(
        "--num-prompts",
        type=int,
        help=f"how many world prompts when --prompts is not given ({DEFAULTS['num_prompts']})",
    )
    p.add_argument("--samples-per-prompt", type=int, help=f"base clips per prompt ({DEFAULTS['samples_per_prompt']})")
    p.add_argument("--rules", nargs="+", choices=list(RULES), default=list(RULES), help="pair rules to compare")
    p.add_argument("--pair-scores", choices=["official", "soft"], default="official", help="scores pairs are mined on")
    p.add_argument("--gap-scale", type=float, default=1.0, help="multiplies the paper's total-gap thresholds")
    p.add_argument("--train-steps", type=int, help=f"optimisation steps per rule and seed ({DEFAULTS['train_steps']})")
    p.add_argument("--batch-size", type=int, help=f"pairs per step ({DEFAULTS['batch_size']})")
    p.add_argument("--lora-r", type=int, default=8, help="LoRA rank (alpha equal to it)")
    p.add_argument("--learning-rate", type=float, default=1e-3, help="AdamW learning rate of the LoRA")
    p.add_argument("--beta", type=float, default=500.0, help="Diffusion-DPO beta (the paper's CogVideoX value)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (see the module docstring)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    args = p.parse_args(list(argv))
    for key, value in {**DEFAULTS, **(SMOKE if args.smoke else {})}.items():
        if getattr(args, key) is None:
            setattr(args, key, value)

    from datasets_scripts.tiny_world import world

    if args.prompts is not None:
        for prompt in args.prompts:
            try:
                world.parse_prompt(prompt)
            except ValueError as exc:
                raise UsageError(f"--prompts: {exc}") from None
        if len(set(args.prompts)) != len(args.prompts):
            raise UsageError("--prompts: each prompt once (a repeat would add samples to one prompt's pairs)")
    elif not 1 <= args.num_prompts <= len(world.all_prompts()):
        raise UsageError(
            f"--num-prompts must be 1..{len(world.all_prompts())} (the world's prompts); got {args.num_prompts}"
        )
    checks = {
        "--seeds": (len(set(args.seeds)) == len(args.seeds) and min(args.seeds) >= 0, "distinct seeds >= 0"),
        "--samples-per-prompt": (args.samples_per_prompt >= 2, ">= 2 (pairs are mined among one prompt's clips)"),
        "--train-steps": (args.train_steps >= 1, ">= 1"),
        "--batch-size": (args.batch_size >= 1, ">= 1"),
        "--lora-r": (args.lora_r >= 1, ">= 1"),
        "--learning-rate": (args.learning_rate > 0 and math.isfinite(args.learning_rate), "a finite number > 0"),
        "--beta": (args.beta > 0 and math.isfinite(args.beta), "a finite number > 0"),
        "--gap-scale": (args.gap_scale >= 0 and math.isfinite(args.gap_scale), "a finite number >= 0"),
        "--threads": (args.threads >= 1, ">= 1"),
    }
    for flag, (ok, accepted) in checks.items():
        if not ok:
            raise UsageError(f"{flag} must be {accepted}; got {getattr(args, flag[2:].replace('-', '_'))}")
    if len(set(args.rules)) != len(args.rules):
        raise UsageError(f"--rules: each rule once; got {args.rules}")
    args.prompt_list = list(args.prompts) if args.prompts else world_prompts(args.num_prompts)
    return args


def world_prompts(k: int) -> list[str]:
    """``k`` of the world's 32 prompts, a fixed spread over shapes, colours and backgrounds (not the first ``k``)."""
    from datasets_scripts.tiny_world import world

    prompts = world.all_prompts()
    order = np.random.default_rng(0).permutation(len(prompts))
    return [prompts[i] for i in order[:k]]


def pair_rule(name: str, gap_scale: float, tolerance: float = 0.0):
    from trl_vision_reward.mpo.pairs import PAPER_THRESHOLDS, PairRule

    kind, granularity = RULES[name]
    gap = PAPER_THRESHOLDS["dpo" if kind == "dpo" else granularity] * gap_scale
    return PairRule(kind, granularity, gap, tolerance=tolerance)


# ---------------------------------------------------------------------------------------------------------------------
# Statistics


def t_quantile(p: float, df: int) -> float:
    """Student's t quantile (``scipy.stats.t.ppf`` without scipy): bisection on the CDF, integrated by Simpson's rule."""
    log_c = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)

    def cdf(x: float) -> float:  # P(T <= x) for x >= 0
        grid = np.linspace(0.0, x, 2001)
        pdf = np.exp(log_c - (df + 1) / 2 * np.log1p(grid**2 / df))
        h = x / 2000
        return 0.5 + h / 3 * (pdf[0] + pdf[-1] + 4 * pdf[1:-1:2].sum() + 2 * pdf[2:-1:2].sum())

    lo, hi = 0.0, 1000.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if cdf(mid) < p else (lo, mid)
    return (lo + hi) / 2


def interval(values: Sequence[float]) -> dict[str, Any]:
    """Mean and 95% interval over seeds: mean +- t(0.975, n-1) * sd / sqrt(n) (no interval for one seed)."""
    x = np.asarray(values, dtype=np.float64)
    n = int(x.size)
    if n == 0:
        return {"n": 0, "mean": None, "half_width": None, "low": None, "high": None}
    mean = float(x.mean())
    half = float(t_quantile(0.975, n - 1) * x.std(ddof=1) / math.sqrt(n)) if n > 1 else None
    return {
        "n": n,
        "mean": mean,
        "half_width": half,
        "low": None if half is None else mean - half,
        "high": None if half is None else mean + half,
    }


def dimension_names() -> list[str]:
    from datasets_scripts.tiny_world.world import ATTRIBUTES, DIMENSION_OF

    return [DIMENSION_OF[a] for a in ATTRIBUTES]


def changes(before: Sequence[Mapping[str, Any]], after: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    """Mean after - before over paired clips (same id: same prompt and seed), per dimension and for the total,
    by the truth (levels; the total is the world's utility) and by the scorer (dimension scores; the VisionReward
    total)."""
    by_id = {r["id"]: r for r in before}
    if sorted(by_id) != sorted(r["id"] for r in after):
        raise RuntimeError("the regenerated clips do not pair with the base clips (different ids)")
    out: dict[str, dict[str, float]] = {}
    for dim in [*dimension_names(), TOTAL]:
        truth, scorer = [], []
        for a in after:
            b = by_id[a["id"]]
            if dim == TOTAL:
                truth.append(a["truth_total"] - b["truth_total"])
                scorer.append(a["total"] - b["total"])
            else:
                truth.append(a["truth"][dim] - b["truth"][dim])
                scorer.append(a["dimension_scores"][dim] - b["dimension_scores"][dim])
        out[dim] = {"truth": float(np.mean(truth)), "scorer": float(np.mean(scorer))}
    return out


def pair_statistics(pairs: Sequence[Mapping[str, Any]], stats: Any, by_id: Mapping[str, Mapping[str, Any]]) -> dict:
    """What the rule admitted: candidates, admitted, and how many admitted pairs were non-dominating - the chosen
    clip worse on at least one dimension - by the scorer's dimension scores and by the truth levels, and how many
    the truth ranks the other way round (chosen's utility below rejected's)."""
    from trl_vision_reward.mpo.pairs import dominates

    def worse_somewhere(pair: Mapping[str, Any], key: str) -> bool:
        return not dominates(by_id[pair["chosen_id"]][key], by_id[pair["rejected_id"]][key])

    return {
        "candidates": stats.candidates,
        "admitted": stats.admitted,
        "rejected": {k: v for k, v in stats.counts.items() if k != "admitted"},
        "non_dominating_scorer": sum(worse_somewhere(p, "dimension_scores") for p in pairs),
        "non_dominating_truth": sum(worse_somewhere(p, "truth") for p in pairs),
        "truth_inverted": sum(
            by_id[p["chosen_id"]]["truth_total"] < by_id[p["rejected_id"]]["truth_total"] for p in pairs
        ),
        "mean_total_gap": float(np.mean([p["total_gap"] for p in pairs])) if pairs else None,
    }


# ---------------------------------------------------------------------------------------------------------------------
# Stages


class Experiment:
    """One run: the shared models, the output folder, and every cell's figures (see the module docstring)."""

    def __init__(self, args: argparse.Namespace, folder: Any):
        from diffusers_cogvideox.sampling import load_pipeline
        from trl_vision_reward.reward.sample_scorer import VisionRewardSampleScorer, load_vision_reward

        self.args = args
        self.folder = folder
        self.progress = not args.no_progress
        self.base_pipe = load_pipeline(None)  # never trained: each cell trains and regenerates with a copy
        self.scorer = VisionRewardSampleScorer(load_vision_reward(None, "video"), "video")
        self.seconds: dict[str, float] = {}

    def _timed(self, stage: str, start: float) -> None:
        self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - start

    def sampler(self, pipe: Any):
        from diffusers_cogvideox.sampling import PipelineSampler
        from diffusers_cogvideox.tiny import TINY_WORLD_RESOLUTION, TINY_WORLD_STEPS

        return PipelineSampler(pipe, **TINY_WORLD_RESOLUTION, num_inference_steps=TINY_WORLD_STEPS, guidance_scale=1.0)

    def generate_scored(self, pipe: Any, relative: str, seed: int, label: str) -> list[dict[str, Any]]:
        """A generate-score job folder at ``relative`` (clips as mp4, scored from the files), each record with the
        truth measured on the frames decoded from its mp4."""
        from datasets_scripts.generate_and_score import (
            COMMAND as JOB,
        )
        from datasets_scripts.generate_and_score import (
            collect_scored_samples,
            load_scored_records,
            run_generate_and_score,
        )
        from datasets_scripts.tiny_world import truth
        from diffusers_cogvideox.outputs import OutputFolder, read_manifest
        from diffusers_cogvideox.video_io import read_video

        start = time.perf_counter()
        self.folder.subfolder(relative, JOB)
        job = self.folder.root / relative
        sampler = self.sampler(pipe)
        summary = run_generate_and_score(
            self.args.prompt_list,
            sampler,
            self.scorer,
            job,
            samples_per_prompt=self.args.samples_per_prompt,
            seed=seed,
            progress=self.progress,
        )
        if summary.failed:
            raise RuntimeError(f"{summary.failed} prompts failed in {relative}: {summary.rejects[0]['reason']}")
        collect_scored_samples(
            job,
            generator=f"tiny-world CogVideoX ({label})",
            scorer="tiny-world VisionReward",
            generation_config=sampler.config(),
        )
        records = load_scored_records(job)
        # the job's manifest leaves its media out (they read as foreign files when it is collected): record them,
        # so that an --overwrite of this benchmark's folder replaces them too
        OutputFolder.claim(job, JOB, resume=True, settings=read_manifest(job)["settings"]).adopt(
            *(r["media"] for r in records)
        )
        for record in records:
            frames, _ = read_video(job / record["media"])
            record["truth"] = truth.dimension_levels(np.stack(frames))
            record["truth_total"] = truth.utility(record["truth"])
        self._timed("generate, score, truth", start)
        return records

    def mine(self, records: list[dict[str, Any]], name: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        from datasets_scripts.mpo_pairs import with_scores
        from trl_vision_reward.mpo.pairs import mine_pairs

        rule = pair_rule(name, self.args.gap_scale)
        scored = with_scores(records, self.args.pair_scores)
        pairs, stats = mine_pairs(scored, rule)
        by_id = {r["id"]: r for r in scored}
        return pairs, {"rule": {**stats.rule, "scores": self.args.pair_scores}, **pair_statistics(pairs, stats, by_id)}

    def train(self, pairs: list[dict[str, Any]], media_root: Path, cell: str, seed: int) -> dict[str, Any]:
        """A LoRA trained on ``pairs`` with the shared budget; the adapter is saved to ``cell/adapter``."""
        from trl_vision_reward.mpo.config import MPOConfig
        from trl_vision_reward.mpo.data import precompute_latent_pairs, text_prompt_encoder
        from trl_vision_reward.mpo.trainer import MPOTrainer

        start = time.perf_counter()
        a = self.args
        pipe = copy.deepcopy(self.base_pipe)  # the trainer injects the LoRA in place
        self.folder.write_text(f"{cell}/pairs.jsonl", "".join(json.dumps(p) + "\n" for p in pairs))
        rows = [pairs[i % len(pairs)] for i in range(max(len(pairs), a.batch_size))]  # fill one batch at least
        from diffusers_cogvideox.tiny import TINY_WORLD_RESOLUTION

        encoded = precompute_latent_pairs(
            rows,
            self.folder.root / cell.rsplit("/", 1)[0] / "latents_cache",  # one per seed: each clip encoded once
            media_root=media_root,
            vae=pipe.vae,
            encode_prompt=text_prompt_encoder(
                pipe.text_encoder, pipe.tokenizer, pipe.transformer.config.max_text_seq_length
            ),
            **TINY_WORLD_RESOLUTION,
            seed=seed,
        )
        checkpointing = next(
            k for k in ("activation_checkpointing", "gradient_checkpointing") if k in MPOConfig.__dataclass_fields__
        )
        config = MPOConfig(
            output_dir=str(self.folder.root / cell / "adapter"),
            max_steps=a.train_steps,
            per_device_train_batch_size=a.batch_size,
            learning_rate=a.learning_rate,
            beta=a.beta,
            lora_r=a.lora_r,
            lora_alpha=a.lora_r,
            logging_steps=max(1, a.train_steps // 10),
            save_strategy="no",
            report_to=[],
            seed=seed,
            data_seed=seed,
            disable_tqdm=not self.progress,
            use_cpu=True,
            dataloader_num_workers=0,
            **{checkpointing: False},
        )
        trainer = MPOTrainer(
            model=pipe.transformer,
            args=config,
            train_dataset=encoded,
            noise_scheduler=pipe.scheduler,
            model_name="tiny-world CogVideoX",
            dataset_name=f"{cell}/pairs.jsonl",
        )
        result = trainer.train()
        trainer.save_model()
        self.folder.record_new()
        self._timed("train", start)
        losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
        return {
            "steps": trainer.state.global_step,
            "pairs_encoded": len(encoded),
            "train_loss": float(result.training_loss),
            "first_loss": losses[0] if losses else None,
            "last_loss": losses[-1] if losses else None,
        }

    def run_seed(self, seed: int) -> dict[str, Any]:
        from tqdm.auto import tqdm

        base_rel = f"seed-{seed}/base"
        base = self.generate_scored(self.base_pipe, base_rel, seed, "base")
        out: dict[str, Any] = {"seed": seed, "base": summarize_records(base), "rules": {}}
        for name in tqdm(self.args.rules, desc=f"seed {seed}: rules", disable=not self.progress):
            cell = f"seed-{seed}/{name}"
            pairs, stats = self.mine(base, name)
            entry: dict[str, Any] = {"pairs": stats}
            if not pairs:
                entry["status"] = "no pair admitted: not trained"
                print(f"   seed {seed}, {name}: no pair admitted ({stats['candidates']} candidates); cell skipped")
            else:
                entry.update(self.train_and_regenerate(base, base_rel, cell, seed, pairs))
            out["rules"][name] = entry
        return out

    def train_and_regenerate(
        self, base: list[dict[str, Any]], base_rel: str, cell: str, seed: int, pairs: list[dict[str, Any]]
    ) -> dict[str, Any]:
        """Train on ``pairs`` (clips of the job at ``base_rel``), regenerate the base clips' prompts and seeds through
        the saved adapter, and measure the change."""
        training = self.train(pairs, self.folder.root / base_rel, cell, seed)
        pipe = copy.deepcopy(self.base_pipe)
        pipe.load_lora_weights(str(self.folder.root / cell / "adapter"))
        after = self.generate_scored(pipe, f"{cell}/regenerated", seed, f"LoRA trained on the pairs of {cell}")
        return {
            "status": "trained",
            "training": training,
            "after": summarize_records(after),
            "change": changes(base, after),
        }


def summarize_records(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Mean truth level and scorer score per dimension, and both totals, over a set of clips."""
    out = {"clips": len(records)}
    for dim in dimension_names():
        out[dim] = {
            "truth": float(np.mean([r["truth"][dim] for r in records])),
            "scorer": float(np.mean([r["dimension_scores"][dim] for r in records])),
        }
    out[TOTAL] = {
        "truth": float(np.mean([r["truth_total"] for r in records])),
        "scorer": float(np.mean([r["total"] for r in records])),
    }
    return out


def aggregate(per_seed: Sequence[Mapping[str, Any]], rules: Sequence[str]) -> dict[str, Any]:
    """Per rule: each dimension's change (truth and scorer) as mean and 95% interval over the seeds that trained,
    and the pair statistics summed over seeds."""
    out = {}
    for name in rules:
        cells = [s["rules"][name] for s in per_seed]
        trained = [c for c in cells if c["status"] == "trained"]
        change = {
            dim: {m: interval([c["change"][dim][m] for c in trained]) for m in ("truth", "scorer")}
            for dim in [*dimension_names(), TOTAL]
        }
        keys = ("candidates", "admitted", "non_dominating_scorer", "non_dominating_truth", "truth_inverted")
        pairs = {k: int(sum(c["pairs"][k] for c in cells)) for k in keys}
        out[name] = {
            "seeds_trained": [s["seed"] for s, c in zip(per_seed, cells) if c["status"] == "trained"],
            "seeds_without_pairs": [s["seed"] for s, c in zip(per_seed, cells) if c["status"] != "trained"],
            "rule": cells[0]["pairs"]["rule"],
            "change": change,
            "pairs": pairs,
        }
    return out


# ---------------------------------------------------------------------------------------------------------------------
# Table and plot


def _cell(stat: Mapping[str, Any]) -> str:
    if stat["mean"] is None:
        return "n/a"
    if stat["half_width"] is None:
        return f"{stat['mean']:+.3f}"
    return f"{stat['mean']:+.3f} ± {stat['half_width']:.3f}"


def table_markdown(results: Mapping[str, Any]) -> str:
    s = results["settings"]
    summary = results["summary"]
    lines = [
        "# MPO vs plain DPO in the tiny world",
        "",
        f"Command: `{results['command']}` ({results['seconds']:.0f} s on {s['threads']} torch thread(s)).",
        "",
        f"{len(s['prompts'])} prompts x {s['samples_per_prompt']} clips per seed; seeds {s['seeds']} (each seed: its "
        "own base clips and training seed, shared by every rule); every rule trains "
        f"{s['train_steps']} steps x {s['batch_size']} pairs (LoRA r={s['lora_r']}, lr {s['learning_rate']:g}, "
        f"beta {s['beta']:g}); pairs mined on {s['pair_scores']} scores. Change = mean over the regenerated clips of "
        "after - before (same prompts and seeds), then mean ± t(0.975, n-1)·sd/√n over the n seeds that trained. "
        "Truth: the procedural level (0..2) of each dimension, total = the world's utility (Dynamic weight 2); "
        "scorer: the learned VisionReward's official (hard-answer) dimension score and total. Dimension and sub-dimension coincide in this "
        "world (one sub-dimension each): those two rules differ only in the gap.",
        "",
        "| rule | dimension | truth change | scorer change | seeds trained |",
        "|---|---|---|---|---|",
    ]
    for name, entry in summary.items():
        for dim, stat in entry["change"].items():
            lines.append(
                f"| {name} | {dim} | {_cell(stat['truth'])} | {_cell(stat['scorer'])} | {len(entry['seeds_trained'])} |"
            )
    lines += [
        "",
        "Pairs, summed over seeds (non-dominating: the chosen clip is worse on at least one dimension; inverted: the "
        "truth's total ranks the rejected clip higher).",
        "",
        "| rule | min total gap | candidates | admitted | non-dominating (scorer) | non-dominating (truth) | "
        "inverted (truth) | seeds without pairs |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, entry in summary.items():
        p = entry["pairs"]
        lines.append(
            f"| {name} | {entry['rule']['min_total_gap']:g} | {p['candidates']} | {p['admitted']} | "
            f"{p['non_dominating_scorer']} | {p['non_dominating_truth']} | {p['truth_inverted']} | "
            f"{entry['seeds_without_pairs'] or '-'} |"
        )
    return "\n".join(lines) + "\n"


def plot_svg(summary: Mapping[str, Any], width: int = 720, height: int = 300) -> str:
    """Truth change per dimension (and total), one bar per rule, with its 95% interval as a whisker."""
    from datasets_scripts.quickstart.charts import esc

    groups = [*dimension_names(), TOTAL]
    colours = ["#e45756", "#4c78a8", "#72b7b2", "#54a24b"]
    stats = {name: [entry["change"][g]["truth"] for g in groups] for name, entry in summary.items()}
    ends = [0.0] + [
        v
        for series in stats.values()
        for s in series
        if s["mean"] is not None
        for v in (s["mean"], s["low"] if s["low"] is not None else s["mean"], s["high"] or s["mean"])
    ]
    lo, hi = min(ends), max(ends)
    span = (hi - lo) or 1.0
    left, top, bottom = 56, 30, 60
    plot_h = height - top - bottom
    group_w = (width - left - 10) / len(groups)
    bar_w = group_w * 0.8 / max(1, len(stats))

    def y(v: float) -> float:
        return top + (hi - v) / span * plot_h

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">',
        f'<text x="{width / 2}" y="18" text-anchor="middle" font-size="13" font-weight="bold">'
        "Truth change after training (after - before), mean and 95% interval over seeds</text>",
        f'<line x1="{left}" x2="{width - 10}" y1="{y(0):.1f}" y2="{y(0):.1f}" stroke="#333"/>',
    ]
    for tick in (lo, hi):
        parts.append(f'<text x="{left - 4}" y="{y(tick) + 4:.1f}" text-anchor="end" font-size="10">{tick:+.2f}</text>')
    for gi, group in enumerate(groups):
        x0 = left + gi * group_w + group_w * 0.1
        for si, (name, series) in enumerate(stats.items()):
            s, x = series[gi], x0 + si * bar_w
            if s["mean"] is None:
                parts.append(
                    f'<text x="{x + bar_w / 2:.1f}" y="{y(0) - 3:.1f}" font-size="8" text-anchor="middle">n/a</text>'
                )
                continue
            y1, y2 = sorted((y(s["mean"]), y(0)))
            parts.append(
                f'<rect x="{x:.1f}" y="{y1:.1f}" width="{bar_w - 1:.1f}" height="{max(y2 - y1, 0.5):.1f}" '
                f'fill="{colours[si % len(colours)]}"><title>{esc(name)} {esc(group)}: {_cell(s)}</title></rect>'
            )
            if s["half_width"] is not None:
                cx = x + (bar_w - 1) / 2
                parts.append(
                    f'<path d="M{cx:.1f},{y(s["low"]):.1f}V{y(s["high"]):.1f}M{cx - 3:.1f},{y(s["low"]):.1f}h6'
                    f'M{cx - 3:.1f},{y(s["high"]):.1f}h6" stroke="#222" fill="none"/>'
                )
        parts.append(
            f'<text x="{x0 + group_w * 0.4:.1f}" y="{height - bottom + 16}" font-size="11" text-anchor="middle">'
            f"{esc(group)}</text>"
        )
    for si, name in enumerate(stats):
        parts.append(
            f'<rect x="{left + si * 150}" y="{height - 16}" width="10" height="10" fill="{colours[si % len(colours)]}"/>'
            f'<text x="{left + si * 150 + 14}" y="{height - 7}" font-size="11">{esc(name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts) + "\n"


# ---------------------------------------------------------------------------------------------------------------------
# Driver


def main(argv: Sequence[str]) -> int:
    import torch

    from diffusers_cogvideox.outputs import OutputFolder

    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    folder = OutputFolder.claim(args.out, COMMAND, overwrite=args.overwrite)
    start = time.perf_counter()
    with folder:  # an earlier output set aside by --overwrite is deleted once this one is complete, else put back
        experiment = Experiment(args, folder)
        experiment._timed("load models", start)
        per_seed = [experiment.run_seed(seed) for seed in args.seeds]
        settings = {
            k: getattr(args, k)
            for k in ("seeds", "samples_per_prompt", "rules", "pair_scores", "gap_scale", "train_steps")
            + ("batch_size", "lora_r", "learning_rate", "beta", "threads", "smoke")
        }
        results = {
            "command": "python benchmarks/mpo_vs_dpo.py " + " ".join(shlex.quote(a) for a in argv),
            "seconds": time.perf_counter() - start,
            "stage_seconds": experiment.seconds,
            "settings": {**settings, "prompts": args.prompt_list},
            "summary": aggregate(per_seed, args.rules),
            "per_seed": per_seed,
        }
        table = table_markdown(results)
        folder.write_json("results.json", results)
        folder.write_text("table.md", table)
        folder.write_text("plot.svg", plot_svg(results["summary"]))
    print(table)
    print(f"wrote {args.out}/results.json, table.md, plot.svg in {results['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    from diffusers_cogvideox._cli import run_cli

    sys.exit(run_cli("mpo_vs_dpo.py", main))
