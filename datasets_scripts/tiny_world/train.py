"""Train the tiny world's models from scratch, seeded, on 2 CPU cores: the weights the package ships.

Stages (each writes its own folder under the output folder, so any one can be inspected or rerun alone):

1. ``vae``: a tiny 3D causal VAE (this package's ``AutoencoderKLCogVideoX``: 8x8 space, 4x time, 16 channels),
   first on single frames (the causal VAE encodes a first frame alone), then on whole clips; L1 + L2 with the
   object's pixels weighted up, a small KL term; ``scaling_factor`` set to 1 / std of the latents.
2. ``transformer``: a tiny ``CogVideoXTransformer3DModel`` (2b layout) trained on the VAE latents of confounded world
   clips, v-prediction on the 2b zero-SNR schedule, captions through a frozen tiny T5. Saved with the VAE, text encoder,
   tokenizer and scheduler as a Hub-layout pipeline folder (``pipeline/``).
3. ``judgments`` + ``train-sft``: clips (rendered, and passed through the VAE so the scorer has seen its artefacts)
   written as mp4, each labelled by the procedural rules (:mod:`.truth`) on the frames as decoded from the file, as
   VisionRewardDB-Video ``annotation`` records; ``vision-reward train-sft`` fine-tunes a tiny CogVLM2-Video (the
   backbone of the released VisionReward-Video) on them.
4. ``preferences`` + ``fit-weights``: the stage-1 scorer scores fresh clips; pairs of them are labelled by the world's
   hidden preference (:func:`.truth.utility`); ``vision-reward fit-weights`` fits the non-negative checklist weights,
   which are written into the scorer (``scorer/``).
5. ``report.json`` / ``README.md``: per-question judgment accuracy of the final scorer on held-out clips, the
   generator's samples judged by the rules, the weights, the sha256 of every weight file, the timings.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from datasets_scripts.files import read_records, write_jsonl
from diffusers_cogvideox.tiny import TINY_TEXT_DIM, TINY_TRANSFORMER_CONFIGS, TINY_VAE_CONFIG

from . import checklist as world_checklist
from . import truth, world

TEXT_DIM = TINY_TEXT_DIM
MAX_TEXT_LENGTH = 32  # the tiny T5 tokenizer spells the world's prompts in up to 28 pieces

# the embedded random tiny models' layouts (diffusers_cogvideox.tiny), wider where the world needs it
VAE_CONFIG: dict[str, Any] = dict(
    TINY_VAE_CONFIG,
    block_out_channels=(8, 16, 16, 16),
    latent_channels=16,
    norm_num_groups=4,
    sample_height=world.HEIGHT,
    sample_width=world.WIDTH,
)
TRANSFORMER_CONFIG: dict[str, Any] = dict(
    TINY_TRANSFORMER_CONFIGS["2b"],
    num_attention_heads=4,
    in_channels=16,
    out_channels=16,
    time_embed_dim=64,
    max_text_seq_length=MAX_TEXT_LENGTH,
    num_layers=4,
    sample_frames=world.NUM_FRAMES,
    sample_height=world.HEIGHT // 8,
    sample_width=world.WIDTH // 8,
    patch_size=1,
)
SCORER_SIZES: dict[str, Any] = dict(
    image_size=world.WIDTH,
    patch_size=4,  # 8 x 8 patches per frame, pooled 2 x 2: 16 visual tokens + boi + eoi per frame
    frames=5,  # frames 0, 2, 4, 6, 8 of a clip: every motion and swing of the world still shows
    vision_hidden_size=64,
    vision_layers=2,
    hidden_size=64,
    layers=3,
    vocab_size=600,  # the tokenizer also learns the checklist's words
)


@dataclass
class Budget:
    """How much of each stage to run; ``full`` makes the shipped weights, ``smoke`` checks the script in seconds."""

    vae_image_steps: int = 700
    vae_video_steps: int = 700
    vae_image_batch: int = 32
    vae_video_batch: int = 8
    vae_learning_rate: float = 2e-3
    transformer_clips: int = 4000
    transformer_steps: int = 2000
    transformer_batch: int = 48
    transformer_learning_rate: float = 1e-3
    judgment_clips: int = 1600
    judgment_eval_clips: int = 200
    sft_steps: int = 1500
    sft_batch: int = 32
    sft_learning_rate: float = 1e-3
    preference_clips: int = 300
    preference_pairs: int = 3000
    generator_check_clips: int = 64


BUDGETS = {
    "full": Budget(),
    "smoke": Budget(
        vae_image_steps=2,
        vae_video_steps=2,
        vae_image_batch=2,
        vae_video_batch=2,
        transformer_clips=16,
        transformer_steps=2,
        transformer_batch=4,
        judgment_clips=12,
        judgment_eval_clips=6,
        sft_steps=2,
        sft_batch=4,
        preference_clips=8,
        preference_pairs=12,
        generator_check_clips=2,
    ),
}


# ---------------------------------------------------------------------------------------------------------- helpers
def _seed_everything(seed: int) -> None:
    import random

    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _clips_to_tensor(clips: list[np.ndarray]):
    """(N, T, H, W, 3) in [0, 1] -> (N, 3, T, H, W) in [-1, 1], the VAE's layout."""
    import torch

    return torch.from_numpy(np.stack(clips)).permute(0, 4, 1, 2, 3) * 2 - 1


def _tensor_to_clips(x) -> np.ndarray:
    return ((x.clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 4, 1).float().numpy()


def _progress(iterable, total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, disable=not enabled, mininterval=2.0)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------------------- 1. VAE
def reconstruction_loss(rec, x, posterior, kl_weight: float = 1e-7):
    """L1 + L2 with the object's pixels weighted 9x (it covers 4-25% of a frame), plus a small KL term."""
    background = x.flatten(2).median(-1).values[..., None, None, None]
    weight = 1 + 8 * ((x - background).abs().sum(1, keepdim=True) > 0.1).float()
    err = rec - x
    return (weight * (err.abs() + err.pow(2))).mean() + kl_weight * posterior.kl().sum() / len(x)


def train_vae(budget: Budget, rng: np.random.Generator, progress: bool = True):
    import torch

    from diffusers_cogvideox.models.autoencoder_kl_cogvideox import AutoencoderKLCogVideoX

    vae = AutoencoderKLCogVideoX(**VAE_CONFIG)
    optimizer = torch.optim.AdamW(vae.parameters(), budget.vae_learning_rate, weight_decay=0.0)
    total = budget.vae_image_steps + budget.vae_video_steps
    losses = []
    vae.train()
    for step in _progress(range(total), total, "vae", progress):
        image_phase = step < budget.vae_image_steps
        n = budget.vae_image_batch if image_phase else budget.vae_video_batch
        x = _clips_to_tensor([world.render(world.sample_scene(rng)) for _ in range(n)])
        if image_phase:  # one frame of each clip, as a 1-frame video
            x = x[:, :, rng.integers(world.NUM_FRAMES)][:, :, None]
        posterior = vae.encode(x).latent_dist
        rec = vae.decode(posterior.sample()).sample
        loss = reconstruction_loss(rec, x, posterior)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
    vae.eval()
    return vae, losses


def latent_std(vae, clips: list[np.ndarray]) -> float:
    import torch

    with torch.no_grad():
        z = torch.cat(
            [vae.encode(_clips_to_tensor(clips[i : i + 32])).latent_dist.mode() for i in range(0, len(clips), 32)]
        )
    return float(z.std())


def reconstruct(vae, clips: list[np.ndarray], batch: int = 32) -> list[np.ndarray]:
    """Clips through the VAE (posterior mode), as (T, H, W, 3) in [0, 1]."""
    import torch

    out = []
    with torch.no_grad():
        for i in range(0, len(clips), batch):
            x = _clips_to_tensor(clips[i : i + batch])
            out += list(_tensor_to_clips(vae.decode(vae.encode(x).latent_dist.mode()).sample))
    return out


# ---------------------------------------------------------------------------------------------------------- 2. transformer
def text_components(seed: int):
    """The tiny T5 tokenizer and a frozen random tiny T5 encoder (CogVideoX keeps its T5 frozen too)."""
    from diffusers_cogvideox.tiny import tiny_t5_encoder, tiny_t5_tokenizer

    return tiny_t5_tokenizer(), tiny_t5_encoder(d_model=TEXT_DIM, seed=seed)


def encode_prompts(tokenizer, text_encoder, prompts: list[str]):
    import torch

    ids = tokenizer(prompts, padding="max_length", max_length=MAX_TEXT_LENGTH, truncation=True, return_tensors="pt")
    with torch.no_grad():
        return text_encoder(ids.input_ids)[0]


def scheduler():
    from diffusers import CogVideoXDDIMScheduler

    from diffusers_cogvideox.tiny import tiny_scheduler_config

    return CogVideoXDDIMScheduler(**tiny_scheduler_config("2b"))


def train_transformer(vae, tokenizer, text_encoder, budget: Budget, rng: np.random.Generator, progress: bool = True):
    """v-prediction on the VAE latents of confounded clips (latents scaled by the VAE's ``scaling_factor``)."""
    import torch

    from diffusers_cogvideox.models.transformer_cogvideox import CogVideoXTransformer3DModel
    from diffusers_cogvideox.training.diffusion import noisy_and_target, per_sample_mse, sample_timesteps_uniform

    scenes = [world.sample_scene(rng) for _ in range(budget.transformer_clips)]
    prompts = world.all_prompts()
    prompt_index = torch.tensor([prompts.index(s.prompt) for s in scenes])
    embeds = encode_prompts(tokenizer, text_encoder, prompts)
    latents = []
    with torch.no_grad():
        for i in range(0, len(scenes), 64):
            x = _clips_to_tensor([world.render(s) for s in scenes[i : i + 64]])
            latents.append(vae.encode(x).latent_dist.sample() * vae.config.scaling_factor)
    latents = torch.cat(latents).permute(0, 2, 1, 3, 4).contiguous()  # (N, F, C, H, W): the transformer's layout

    transformer = CogVideoXTransformer3DModel(**TRANSFORMER_CONFIG)
    sched = scheduler()
    optimizer = torch.optim.AdamW(transformer.parameters(), budget.transformer_learning_rate, weight_decay=0.01)
    warmup = max(1, budget.transformer_steps // 20)
    lr_at = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + np.cos(np.pi * min(1.0, s / budget.transformer_steps))),
    )
    generator = torch.Generator().manual_seed(int(rng.integers(2**31)))
    losses = []
    transformer.train()
    for _ in _progress(range(budget.transformer_steps), budget.transformer_steps, "transformer", progress):
        idx = torch.randint(0, len(latents), (budget.transformer_batch,), generator=generator)
        x0 = latents[idx]
        noise = torch.randn(x0.shape, generator=generator)
        t = sample_timesteps_uniform(len(idx), sched.config.num_train_timesteps, generator=generator)
        noisy, target = noisy_and_target("v_prediction", x0, noise, t, sched.alphas_cumprod)
        pred = transformer(
            hidden_states=noisy, encoder_hidden_states=embeds[prompt_index[idx]], timestep=t, return_dict=False
        )[0]
        loss = per_sample_mse(pred, target).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(transformer.parameters(), 1.0)
        optimizer.step()
        lr_at.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
    transformer.eval()
    return transformer, losses


def save_pipeline(folder: Path, vae, transformer, tokenizer, text_encoder) -> Path:
    """A Hub-layout pipeline folder (``model_index.json`` + one subfolder per component)."""
    from diffusers_cogvideox.pipelines.pipeline_cogvideox import CogVideoXPipeline

    pipe = CogVideoXPipeline(
        tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, transformer=transformer, scheduler=scheduler()
    )
    pipe.save_pretrained(folder)
    # name diffusers' classes, as the official repos do: plain diffusers loads the folder too, and this package's
    # pipelines load it with their own classes (same weights layout)
    from diffusers_cogvideox.outputs import atomic_write_json

    index = json.loads((folder / "model_index.json").read_text())
    for name in ("transformer", "vae"):
        index[name] = ["diffusers", index[name][1]]
    atomic_write_json(folder / "model_index.json", index)
    return folder


def sample_clips(pipe, prompts: list[str], seed: int, progress: bool = False) -> list[np.ndarray]:
    """One clip per prompt at the tiny world's resolution and step count (seed ``seed + i`` for prompt ``i``)."""
    import torch

    from diffusers_cogvideox.tiny import TINY_WORLD_RESOLUTION, TINY_WORLD_STEPS

    pipe.set_progress_bar_config(disable=True)
    out = []
    for i, prompt in enumerate(_progress(prompts, len(prompts), "sample", progress)):
        generator = torch.Generator().manual_seed(seed + i)
        video = pipe(
            prompt=prompt,
            generator=generator,
            num_inference_steps=TINY_WORLD_STEPS,
            guidance_scale=1.0,
            output_type="np",
            **TINY_WORLD_RESOLUTION,
        ).frames[0]
        out.append(np.asarray(video, dtype=np.float32))
    return out


# ---------------------------------------------------------------------------------------------------------- 3. judgments
def build_scorer(seed: int):
    """A random tiny VisionReward-Video: CogVLM2-Video backbone, the world's checklist, 5 evenly spaced frames shown
    (more visual tokens per frame learn faster than more frames of fewer tokens at this size)."""
    import torch

    from trl_vision_reward.reward.cogvlm2.modeling_cogvlm2 import CogVLM2VideoForConditionalGeneration
    from trl_vision_reward.reward.cogvlm2.processing_cogvlm2 import CogVLM2ImageProcessor, CogVLM2Processor
    from trl_vision_reward.reward.cogvlm2.templates import vision_reward_processor
    from trl_vision_reward.reward.cogvlm2.tiny import tiny_cogvlm2_config, tiny_cogvlm2_tokenizer
    from trl_vision_reward.reward.modeling_vision_reward import VisionRewardModel

    s = SCORER_SIZES
    tokenizer = tiny_cogvlm2_tokenizer(s["vocab_size"])
    image_processor = CogVLM2ImageProcessor(image_size=s["image_size"], patch_size=s["patch_size"], is_video=True)
    processor = vision_reward_processor(
        CogVLM2Processor(image_processor, tokenizer, max_num_frames=s["frames"]),
        frame_sampling="uniform",
    )
    config = tiny_cogvlm2_config(
        video=True,
        vision_config=dict(
            hidden_size=s["vision_hidden_size"],
            intermediate_size=2 * s["vision_hidden_size"],
            num_hidden_layers=s["vision_layers"],
            num_heads=4,
            image_size=s["image_size"],
            patch_size=s["patch_size"],
        ),
        vocab_size=len(tokenizer),
        hidden_size=s["hidden_size"],
        intermediate_size=2 * s["hidden_size"],
        num_hidden_layers=s["layers"],
        max_position_embeddings=512,
    )
    torch.manual_seed(seed)
    backbone = CogVLM2VideoForConditionalGeneration(config).eval()
    model = VisionRewardModel.from_backbone(backbone, world_checklist.world_checklist())
    return model, processor


def write_clips(folder: Path, clips: list[np.ndarray], prompts: list[str], prefix: str) -> list[dict[str, Any]]:
    """Each clip as ``media/<id>.mp4`` plus its decoded frames as PNGs (what the scorer reads from the mp4), labelled
    by the rules on those decoded frames; returns VisionRewardDB-Video-style records (paths relative to ``folder``)."""
    from PIL import Image

    from diffusers_cogvideox.video_io import export_to_video, read_video

    records = []
    for i, (clip, prompt) in enumerate(zip(clips, prompts)):
        clip_id = f"{prefix}{i:05d}"
        video = Path("media") / f"{clip_id}.mp4"
        export_to_video(clip, folder / video, fps=world.FPS)
        decoded, _ = read_video(folder / video)
        decoded = np.stack(decoded)
        frame_paths = []
        for t, frame in enumerate(decoded):
            frame_path = Path("frames") / clip_id / f"{t}.png"
            (folder / frame_path).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(frame).save(folder / frame_path)
            frame_paths.append(frame_path.as_posix())
        levels = truth.levels(decoded)
        records.append(
            {
                "id": clip_id,
                "prompt": prompt,
                "video": video.as_posix(),
                "frames": frame_paths,
                "fps": 1.0,  # the clip's own frames, in order (the processor's frame_sampling picks what is shown)
                "annotation": world_checklist.annotation(levels),
                "levels": levels,
            }
        )
    return records


def judgment_clips(n: int, vae, rng: np.random.Generator) -> tuple[list[np.ndarray], list[str]]:
    """Half rendered, half through the VAE (the generator's look), every level drawn independently."""
    scenes = [world.sample_scene(rng, confounded=False) for _ in range(n)]
    clips = [world.render(s) for s in scenes]
    half = n // 2
    clips[half:] = reconstruct(vae, clips[half:])
    return clips, [s.prompt for s in scenes]


def run_cli(main, argv: list[str]) -> None:
    code = main(argv)
    if code:
        raise RuntimeError(f"{' '.join(argv[:1])} failed with exit status {code}")


def train_scorer_sft(out: Path, vae, budget: Budget, rng: np.random.Generator, seed: int, progress: bool) -> Path:
    """Stage 1 through ``vision-reward train-sft`` on the judgment records this writes (``judgments/``)."""
    from trl_vision_reward.cli import main as vision_reward

    clips, prompts = judgment_clips(budget.judgment_clips + budget.judgment_eval_clips, vae, rng)
    folder = out / "judgments"
    records = write_clips(folder, clips, prompts, "j")
    train, held_out = records[: budget.judgment_clips], records[budget.judgment_clips :]
    write_jsonl(folder / "train.jsonl", train)
    write_jsonl(folder / "eval.jsonl", held_out)
    model, processor = build_scorer(seed)
    model.save_pretrained(out / "scorer_init")
    processor.save_pretrained(out / "scorer_init")
    run_cli(
        vision_reward,
        [
            "train-sft",
            "--data", str(folder / "train.jsonl"),
            "--eval-data", str(folder / "eval.jsonl"),
            "--media-root", str(folder),
            "--media-field", "frames",
            "--modality", "video",
            "--model", str(out / "scorer_init"),
            "--output-dir", str(out / "scorer_sft"),
            "--learning-rate", str(budget.sft_learning_rate),
            "--batch-size", str(budget.sft_batch),
            "--max-steps", str(budget.sft_steps),
            "--balance", "none",
            "--seed", str(seed),
            "--logging-steps", "50",
            "--overwrite",  # a resumed run replaces what an interrupted one of this stage left
        ],
    )  # fmt: skip
    return out / "scorer_sft"


# ---------------------------------------------------------------------------------------------------------- 4. weights
def score_records(scorer, folder: Path, records: list[dict[str, Any]], progress: bool = False) -> list[dict[str, Any]]:
    """The scorer's answers and P(yes) on each record's mp4, in checklist order."""
    rows = []
    for record in _progress(records, len(records), "score", progress):
        result = scorer.score(str(folder / record["video"]), record["prompt"], modality="video")
        rows.append(
            {
                "id": record["id"],
                "answers": [bool(a) for a in result.answers],
                "probabilities": [float(p) for p in result.p_yes],
            }
        )
    return rows


def preference_pairs(records: list[dict[str, Any]], n: int, rng: np.random.Generator) -> list[dict[str, str]]:
    """Random pairs labelled by the world's hidden preference (:func:`.truth.utility`); ties are left out."""
    pairs, seen = [], set()
    attempts = 0
    while len(pairs) < n and attempts < 20 * n:
        attempts += 1
        i, j = (int(v) for v in rng.choice(len(records), 2, replace=False))
        if (min(i, j), max(i, j)) in seen:
            continue
        seen.add((min(i, j), max(i, j)))
        ui = truth.utility(truth.dimension_levels(records[i]["levels"]))
        uj = truth.utility(truth.dimension_levels(records[j]["levels"]))
        if ui != uj:
            chosen, rejected = (i, j) if ui > uj else (j, i)
            pairs.append({"chosen": records[chosen]["id"], "rejected": records[rejected]["id"]})
    return pairs


def fit_scorer_weights(out: Path, sft_folder: Path, vae, budget: Budget, rng: np.random.Generator, progress: bool):
    """Stage 2 through ``vision-reward fit-weights``; the fitted checklist is written into the final scorer."""
    from trl_vision_reward.cli import main as vision_reward
    from trl_vision_reward.reward.scoring import VisionRewardScorer

    folder = out / "preferences"
    clips, prompts = judgment_clips(budget.preference_clips, vae, rng)
    records = write_clips(folder, clips, prompts, "p")
    scorer = VisionRewardScorer.from_pretrained(str(sft_folder))
    write_jsonl(folder / "samples.jsonl", score_records(scorer, folder, records, progress))
    write_jsonl(folder / "pairs.jsonl", preference_pairs(records, budget.preference_pairs, rng))
    from diffusers_cogvideox.outputs import atomic_write_json

    atomic_write_json(folder / "checklist.json", scorer.checklist.to_dict())
    run_cli(
        vision_reward,
        [
            "fit-weights",
            "--samples", str(folder / "samples.jsonl"),
            "--pairs", str(folder / "pairs.jsonl"),
            "--checklist", str(folder / "checklist.json"),
            "--output-dir", str(out / "weights"),
            "--drop-below", "-1",  # keep every question, so each world dimension stays in the score
            "--overwrite",
        ],
    )  # fmt: skip
    from trl_vision_reward.reward.checklist import Checklist
    from trl_vision_reward.reward.modeling_vision_reward import VisionRewardModel

    checklist = Checklist.from_dict(json.loads((out / "weights" / "checklist.json").read_text()))
    VisionRewardModel.from_backbone(scorer.backbone, checklist).save_pretrained(out / "scorer")
    scorer.processor.save_pretrained(out / "scorer")
    return out / "scorer"


# ---------------------------------------------------------------------------------------------------------- 5. report
def judgment_accuracy(scorer, folder: Path, records: list[dict[str, Any]], progress: bool = False) -> dict[str, float]:
    """Per-question accuracy of the scorer's answers against the rules' answers (the records' levels)."""
    texts = [q.text for q in scorer.checklist.questions]
    hits = {t: [] for t in texts}
    for row, record in zip(score_records(scorer, folder, records, progress), records):
        true = world_checklist.answers(record["levels"])
        for text, answer in zip(texts, row["answers"]):
            hits[text].append(bool(answer) == true[text])
    return {t: float(np.mean(v)) for t, v in hits.items()}


def generator_check(pipe, scorer, out: Path, n: int, seed: int, progress: bool) -> dict[str, Any]:
    """The generator's samples judged by the rules: level shares per attribute, the confounder's correlation, and the
    scorer's judgment accuracy on them."""
    prompts = [world.all_prompts()[i % len(world.all_prompts())] for i in range(n)]
    clips = sample_clips(pipe, prompts, seed, progress)
    folder = out / "generator_check"
    records = write_clips(folder, clips, prompts, "g")
    table = np.array([[r["levels"][a] for a in world.ATTRIBUTES] for r in records])
    speed, flicker = table[:, world.ATTRIBUTES.index("speed")], table[:, world.ATTRIBUTES.index("flicker")]
    corr = float(np.corrcoef(speed, flicker)[0, 1]) if speed.std() > 0 and flicker.std() > 0 else float("nan")
    return {
        "clips": n,
        "level_shares": {a: np.bincount(table[:, k], minlength=3).tolist() for k, a in enumerate(world.ATTRIBUTES)},
        "speed_vs_stability_level_correlation": corr,
        "scorer_accuracy_on_samples": judgment_accuracy(scorer, folder, records),
    }


def weight_files(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): sha256(p) for p in sorted(folder.rglob("*.safetensors"))}


# ---------------------------------------------------------------------------------------------------------- driver
STAGES = ("vae", "transformer", "scorer", "report")
"""``vae`` -> ``vae/``; ``transformer`` (needs ``vae/``) -> ``pipeline/``; ``scorer`` (needs ``vae/``): train-sft +
fit-weights -> ``scorer/``; ``report`` (needs both). ``transformer`` and ``scorer`` may run at the same time."""
NEEDS = {"vae": (), "transformer": ("vae",), "scorer": ("vae",), "report": ("transformer", "scorer")}
OUTPUT_OF = {
    "vae": "vae/config.json",
    "transformer": "pipeline/model_index.json",
    "scorer": "scorer/config.json",
    "report": "stages/report.json",
}


def stage_rng(seed: int, stage: str) -> np.random.Generator:
    """Each stage draws from its own stream, so stages run apart (or resumed) equal one uninterrupted run."""
    return np.random.default_rng([seed, STAGES.index(stage)])


def _stage_seed(seed: int, stage: str) -> None:
    import torch

    _seed_everything(seed * 10 + STAGES.index(stage))
    torch.set_num_threads(
        1
    )  # one thread: the same sums in the same order on any machine, and no thrashing on a busy one


def _load_vae(out: Path):
    from diffusers_cogvideox.models.autoencoder_kl_cogvideox import AutoencoderKLCogVideoX

    return AutoencoderKLCogVideoX.from_pretrained(out / "vae").eval()


def stage_vae(out: Path, seed: int, plan: Budget, progress: bool) -> dict[str, Any]:
    _stage_seed(seed, "vae")
    rng = stage_rng(seed, "vae")
    start = time.perf_counter()
    vae, losses = train_vae(plan, rng, progress)
    check = [world.render(world.sample_scene(rng)) for _ in range(min(256, 8 * plan.vae_video_batch))]
    vae.register_to_config(scaling_factor=round(1.0 / latent_std(vae, check), 6))
    vae.save_pretrained(out / "vae")
    return {
        "timings_s": {"vae": time.perf_counter() - start},
        "vae": {"final_loss": float(np.mean(losses[-20:])), "scaling_factor": vae.config.scaling_factor},
    }


def stage_transformer(out: Path, seed: int, plan: Budget, progress: bool) -> dict[str, Any]:
    _stage_seed(seed, "transformer")
    rng = stage_rng(seed, "transformer")
    start = time.perf_counter()
    vae = _load_vae(out)
    tokenizer, text_encoder = text_components(seed)
    transformer, losses = train_transformer(vae, tokenizer, text_encoder, plan, rng, progress)
    save_pipeline(out / "pipeline", vae, transformer, tokenizer, text_encoder)
    return {
        "timings_s": {"transformer": time.perf_counter() - start},
        "transformer": {"final_loss": float(np.mean(losses[-50:]))},
    }


def stage_scorer(out: Path, seed: int, plan: Budget, progress: bool) -> dict[str, Any]:
    _stage_seed(seed, "scorer")
    rng = stage_rng(seed, "scorer")
    vae = _load_vae(out)
    start = time.perf_counter()
    sft_folder = train_scorer_sft(out, vae, plan, rng, seed, progress)
    sft_seconds = time.perf_counter() - start
    start = time.perf_counter()
    fit_scorer_weights(out, sft_folder, vae, plan, rng, progress)
    return {"timings_s": {"scorer_sft": sft_seconds, "scorer_weights": time.perf_counter() - start}}


def stage_report(out: Path, seed: int, plan: Budget, progress: bool) -> dict[str, Any]:
    from diffusers_cogvideox.pipelines.pipeline_cogvideox import CogVideoXPipeline
    from trl_vision_reward.reward.scoring import VisionRewardScorer

    _stage_seed(seed, "report")
    start = time.perf_counter()
    scorer = VisionRewardScorer.from_pretrained(str(out / "scorer"))
    held_out = read_records(out / "judgments" / "eval.jsonl")
    accuracy = judgment_accuracy(scorer, out / "judgments", held_out, progress)
    pipe = CogVideoXPipeline.from_pretrained(out / "pipeline")
    generated = generator_check(pipe, scorer, out, plan.generator_check_clips, seed + 10_000, progress)
    return {
        "timings_s": {"evaluation": time.perf_counter() - start},
        "judgment_accuracy_held_out": accuracy,
        "judgment_accuracy_mean": float(np.mean(list(accuracy.values()))),
        "weights": {q.text: q.weight for q in scorer.checklist.questions},
        "generator": generated,
    }


RUN = {"vae": stage_vae, "transformer": stage_transformer, "scorer": stage_scorer, "report": stage_report}


def train_tiny_world(
    out: str | Path,
    seed: int = 0,
    budget: str | Budget = "full",
    progress: bool = True,
    resume: bool = False,
    stages: tuple[str, ...] = STAGES,
) -> dict | None:
    """Run ``stages`` into ``out`` (each writes ``stages/<name>.json``); with ``resume`` a finished stage is kept.
    Returns the report (also ``out/report.json``) once every stage has run, else None."""
    import torch

    from diffusers_cogvideox.outputs import atomic_write_json

    out = Path(out)
    plan = BUDGETS[budget] if isinstance(budget, str) else budget
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise ValueError(f"unknown stages {unknown}; the stages are {list(STAGES)}")

    def finished(stage: str) -> bool:
        return (out / "stages" / f"{stage}.json").is_file() and (out / OUTPUT_OF[stage]).is_file()

    for stage in STAGES:
        if stage not in stages or (resume and finished(stage)):
            continue
        missing = [need for need in NEEDS[stage] if not finished(need) and need not in stages]
        if missing:
            raise ValueError(f"stage {stage!r} needs {missing} first (run them, or pass --resume over their output)")
        part = RUN[stage](out, seed, plan, progress)
        atomic_write_json(out / "stages" / f"{stage}.json", part)
    if not all(finished(stage) for stage in STAGES):
        return None
    report: dict[str, Any] = {
        "seed": seed,
        "budget": asdict(plan),
        "torch": torch.__version__,
        "threads": 1,
        "timings_s": {},
    }
    for stage in STAGES:
        part = dict(json.loads((out / "stages" / f"{stage}.json").read_text()))
        report["timings_s"].update({k: round(v, 1) for k, v in part.pop("timings_s").items()})
        report.update(part)
    report["sha256"] = {"pipeline": weight_files(out / "pipeline"), "scorer": weight_files(out / "scorer")}
    atomic_write_json(out / "report.json", report)
    return report
