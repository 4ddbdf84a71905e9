"""Runs the quickstart's stages in order, each writing its own folder under ``out``."""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import STAGE_TITLES, STAGES, QuickstartConfig


@dataclass
class StageResult:
    name: str
    status: str = "pending"  # pending | done | failed | skipped
    seconds: float = 0.0
    output: str | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


class Quickstart:
    """Runs the stages in order; each stage records its outputs for the report (a failure stops the chain)."""

    def __init__(self, config: QuickstartConfig, progress: bool | None = None):
        self.threshold_given = config.pair_threshold is not None  # the user's value is used as it is
        self.config = config.resolved()
        self.out = Path(self.config.out)
        self.progress = self.config.progress if progress is None else progress
        self.results = {name: StageResult(name) for name in STAGES}
        self._pipe = None
        self._scorer = None
        self.truth: dict[str, dict[str, dict[str, int]]] = {}  # stage folder -> sample id -> dimension levels
        self.threshold_choice = None  # a .thresholds.ThresholdChoice once the pairs stage ran

    # ---------------------------------------------------------------- shared models
    def pipeline(self):
        from ..backends import load_pipeline

        if self._pipe is None:
            self._pipe = load_pipeline(self.config.model, device=self.config.device, seed=self.config.seed)
        return self._pipe

    def scorer(self):
        from ..backends import VisionRewardSampleScorer, load_vision_reward

        if self._scorer is None:
            self._scorer = VisionRewardSampleScorer(
                load_vision_reward(self.config.scorer, "video", device=self.config.device), "video"
            )
        return self._scorer

    def sampler(self, pipe):
        from ..backends import PipelineSampler

        c = self.config
        return PipelineSampler(
            pipe,
            num_frames=c.num_frames,
            height=c.height,
            width=c.width,
            num_inference_steps=c.num_inference_steps,
            guidance_scale=c.guidance_scale,
            fps=c.fps,
        )

    # ---------------------------------------------------------------- stages
    def stage_generate_score(self) -> dict[str, Any]:
        return self._generate_and_score(self.pipeline(), self.out / "1_generate_score", "base model")

    def _generate_and_score(self, pipe, folder: Path, label: str) -> dict[str, Any]:
        from ..generate_and_score import (
            collect_scored_samples,
            load_scored_records,
            run_generate_and_score,
            score_summary,
        )

        sampler = self.sampler(pipe)
        summary = run_generate_and_score(
            self.config.prompts,
            sampler,
            self.scorer(),
            folder,
            samples_per_prompt=self.config.samples_per_prompt,
            seed=self.config.seed,
            progress=self.progress,
        )
        collect_scored_samples(
            folder,
            modality="video",
            generator=f"{model_name(self.config)} ({label})",
            scorer=scorer_name(self.config),
            generation_config=sampler.config(),
            random_data=self.config.random_model or self.config.random_scorer,
        )
        records = load_scored_records(folder)
        if summary.failed:
            raise RuntimeError(f"{summary.failed} prompts failed; see {folder / 'rejects.jsonl'}")
        out = {"samples": len(records), "prompts": len(self.config.prompts), **score_summary(records)}
        out["distinct totals"] = len({r["total"] for r in records})
        if self.config.world:  # the procedural truth of each clip, read back from the written file
            from .clips import truth_of

            truth = {r["id"]: truth_of(folder / r["media"]) for r in records}
            self.truth[folder.name] = truth
            for dim in next(iter(truth.values()), {}):
                out[f"truth mean {dim}"] = sum(t[dim] for t in truth.values()) / len(truth)
        return out

    def stage_pairs(self) -> dict[str, Any]:
        from ..mpo_pairs import write_pairs
        from .thresholds import choose_pair_threshold

        c = self.config
        choice, pairs, stats = choose_pair_threshold(
            self.out / "1_generate_score",
            kind=c.pair_kind,
            granularity=c.pair_granularity,
            scores=c.pair_scores,
            threshold=c.pair_threshold,
            checklist=self.scorer().checklist if c.pair_threshold is None else None,
            random_scorer=c.random_scorer,
            user_given=self.threshold_given,
        )
        self.threshold_choice = choice
        c.pair_threshold = choice.threshold  # the trainer, its card and the report record the gap actually used
        stats.rule.update(threshold_rule=choice.rule, threshold_reason=choice.reason)  # into stats.json and the card
        write_pairs(
            pairs,
            stats,
            self.out / "2_pairs",
            source="1_generate_score",
            random_data=c.random_model or c.random_scorer,
        )
        self._pairs = pairs
        if len(pairs) == 0:
            hint = (
                "every candidate was a tie on the official (hard-answer) scores: try --pair-scores soft"
                if stats.counts["tie"] == stats.candidates
                else "use more samples per prompt or a lower --pair-threshold"
            )
            raise RuntimeError(f"no pair was admitted ({stats}); {hint}")
        return {
            **{k: v for k, v in stats.as_dict().items() if k != "rule"},
            "rule": dict(stats.rule),
            "threshold": choice.as_dict(),
        }

    def stage_train_mpo(self) -> dict[str, Any]:
        from trl_vision_reward.mpo.cli import load_pairs
        from trl_vision_reward.mpo.config import MPOConfig
        from trl_vision_reward.mpo.data import precompute_latent_pairs, text_prompt_encoder
        from trl_vision_reward.mpo.trainer import MPOTrainer

        c = self.config
        pipe = self.pipeline()
        folder = self.out / "3_mpo"
        max_length = getattr(pipe.transformer.config, "max_text_seq_length", None)
        pairs, pairs_root = load_pairs(str(self.out / "2_pairs"))  # what the pairs stage wrote, as mpo-train reads it
        pair_folder = precompute_latent_pairs(
            pairs,
            folder / "latents_cache",
            media_root=pairs_root,
            vae=pipe.vae,
            encode_prompt=text_prompt_encoder(pipe.text_encoder, pipe.tokenizer, max_length),
            height=c.height,
            width=c.width,
            num_frames=c.num_frames,
            seed=c.seed,
        )
        args = MPOConfig(
            output_dir=str(folder / "adapter"),
            max_steps=c.train_steps,
            per_device_train_batch_size=c.batch_size,
            learning_rate=c.learning_rate,
            beta=c.beta,
            lora_r=c.lora_r,
            lora_alpha=c.lora_r,
            pair_rule=c.pair_kind,
            pair_granularity=c.pair_granularity,
            pair_threshold=c.pair_threshold,
            logging_steps=1,
            save_strategy="no",
            report_to=[],
            seed=c.seed,
            disable_tqdm=not self.progress,
            **{
                "gradient_checkpointing"
                if "gradient_checkpointing" in MPOConfig.__dataclass_fields__
                else "activation_checkpointing": False
            },
            use_cpu=c.device == "cpu",
            dataloader_num_workers=0,
        )
        trainer = MPOTrainer(
            model=pipe.transformer,
            args=args,
            train_dataset=pair_folder,
            noise_scheduler=pipe.scheduler,
            model_name=model_name(c),
            dataset_name="2_pairs",
        )
        result = trainer.train()
        trainer.save_model()
        self._log_history = list(trainer.state.log_history)
        # the pipeline's transformer now carries the trained adapter; regeneration reloads a fresh base instead
        self._pipe = None
        files = sorted(p.name for p in (folder / "adapter").iterdir() if p.is_file())
        last = next((e for e in reversed(self._log_history) if "loss" in e), {})
        return {
            "steps": trainer.state.global_step,
            "train_loss": float(result.training_loss),
            "last_logged": {k: v for k, v in last.items() if isinstance(v, (int, float))},
            "adapter_files": files,
            "pairs_encoded": len(pair_folder),
        }

    def stage_regenerate(self) -> dict[str, Any]:
        pipe = self.pipeline()  # a fresh base pipeline, then the saved adapter
        pipe.load_lora_weights(str(self.out / "3_mpo" / "adapter"))
        return self._generate_and_score(pipe, self.out / "4_regenerate", "with the MPO adapter")

    def stage_report(self) -> dict[str, Any]:
        from .report import write_report

        path = write_report(self)
        return {"html": path.name}

    # ---------------------------------------------------------------- driver
    def run(self) -> bool:
        from ..backends import is_tiny

        models = [
            m for m in (self.config.model, self.config.scorer) if not is_tiny(m)
        ]  # the built-in ones are no paths
        self.folder = _prepare_out(self.out, inputs=models)
        with self.folder:  # the previous run's output is deleted once this run's report is written, else put back
            return self._run_stages()

    def _run_stages(self) -> bool:
        ok = True
        for name in STAGES:
            result = self.results[name]
            if not ok and name != "report":
                result.status = "skipped"
                continue
            print(f"== {STAGE_TITLES[name]}", flush=True)
            start = time.perf_counter()
            try:
                fn: Callable[[], dict[str, Any]] = getattr(self, f"stage_{name}")
                result.summary = fn()
                result.status = "done"
            except Exception as exc:
                result.status, result.error = "failed", f"{type(exc).__name__}: {exc}"
                print(traceback.format_exc(), flush=True)
                ok = False
                if name == "report":
                    raise
            finally:
                self.folder.record_new()  # what the stage wrote is the quickstart's: the next run may replace it
            result.seconds = time.perf_counter() - start
            print(f"   {result.status} in {result.seconds:.1f}s", flush=True)
        from .report import write_report

        write_report(self)  # final timings
        self.folder.record_new()
        return ok


def model_name(config: QuickstartConfig) -> str:
    """How cards and reports name the generator."""
    if config.random_model:
        return "tiny CogVideoX (random weights)"
    if config.world:
        return "tiny-world CogVideoX (trained, shipped with the package)"
    return str(config.model)


def scorer_name(config: QuickstartConfig) -> str:
    if config.random_scorer:
        return "tiny VisionReward (random weights)"
    if config.world_scorer:
        return "tiny-world VisionReward-Video (trained, shipped with the package)"
    return str(config.scorer)


def _prepare_out(out: Path, inputs=()):
    """Claim ``out``, replacing only what an earlier quickstart run wrote there (the folder is recreated on every
    run); a folder with files the quickstart did not write, or holding one of the ``inputs``, is refused."""
    from diffusers_cogvideox.outputs import OutputFolder

    return OutputFolder.claim(
        out, "vr-quickstart", inputs=inputs, overwrite=True, reserved=[*STAGE_FOLDERS, "report.*"]
    )


STAGE_FOLDERS = ("1_generate_score", "2_pairs", "3_mpo", "4_regenerate")
