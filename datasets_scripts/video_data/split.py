"""Split long raw videos into training clips: by detected scenes, to the model's frame count and frame rate.

Each raw video is decoded twice, streaming: once to find hard cuts (:mod:`.scenes`), once to write the clips. Every
scene is cut into consecutive, non-overlapping windows of exactly ``num_frames`` frames at ``fps`` (CogVideoX 1.0:
49 frames at 8 fps; 1.5: 81 at 16), sampled from the source by nearest timestamp: target frame ``k`` of a window that
starts at source frame ``a`` is source frame ``a + round(k * source_fps / fps)``. ``trim_frames`` source frames are
skipped at both ends of each scene (the SAT ``SFTDataset`` skips 3: frames next to a cut are often part of the
transition). The rest of a scene that cannot fill a window is left out and counted; a scene too short for any window
is a rejects row with its length.

Timestamps are frame-accurate: a clip records the source frame range it was sampled from (``source_start_frame`` to
``source_end_frame``, end exclusive) and the matching times (index / source fps). Clips are written as H.264 at the
source size, cropped by one pixel when a side is odd (yuv420p needs even sides; the record holds the written size).
Sources slower than ``fps`` are refused rather than padded with repeated frames.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..files import stable_hash
from .jobs import Item, StageSummary, adopt_committed, claim_job, open_job, pending_rejects, results, run_stage
from .media import ClipError, iter_frames, probe
from .scenes import CONTENT_THRESHOLD, MIN_SCENE_FRAMES, content_scores, detect_cuts, scenes_from_cuts

CLIPS_DIR = "clips"


@dataclass(frozen=True)
class SplitConfig:
    """How clips are cut: the model's frame count and rate, the cut rule, the frames skipped at scene edges."""

    num_frames: int = 49
    fps: float = 8.0
    cut_threshold: float = CONTENT_THRESHOLD
    min_scene_frames: int = MIN_SCENE_FRAMES
    trim_frames: int = 0
    max_clips_per_scene: int | None = None

    def __post_init__(self) -> None:
        if self.num_frames < 1 or (self.num_frames - 1) % 4:
            raise ValueError(
                f"num_frames must be 4*k+1 (the VAE compresses time by 4): 49 = 8*6+1 for CogVideoX 1.0, "
                f"81 = 16*5+1 for 1.5; got {self.num_frames}"
            )
        if not self.fps > 0:
            raise ValueError(f"fps must be positive (8 for CogVideoX 1.0, 16 for 1.5); got {self.fps}")
        if self.trim_frames < 0 or self.min_scene_frames < 1:
            raise ValueError("trim_frames must be >= 0 and min_scene_frames >= 1")

    @property
    def clip_seconds(self) -> float:
        return self.num_frames / self.fps


@dataclass(frozen=True)
class ClipPlan:
    scene: int
    window: int
    source_indices: tuple[int, ...]


def plan_windows(
    scenes: list[tuple[int, int]], source_fps: float, config: SplitConfig
) -> tuple[list[ClipPlan], list[dict[str, Any]]]:
    """The clips of a video (pure): windows per scene, and the scenes too short for one window."""
    ratio = source_fps / config.fps
    span = round((config.num_frames - 1) * ratio) + 1  # source frames one window covers
    step = round(config.num_frames * ratio)
    plans, short = [], []
    for s, (start, end) in enumerate(scenes):
        a, b = start + config.trim_frames, end - config.trim_frames
        windows = 0
        while a + span <= b and (config.max_clips_per_scene is None or windows < config.max_clips_per_scene):
            indices = tuple(a + round(k * ratio) for k in range(config.num_frames))
            plans.append(ClipPlan(s, windows, indices))
            windows += 1
            a += step
        if windows == 0:
            short.append({"scene": s, "start_frame": start, "end_frame": end, "frames": end - start})
    return plans, short


def video_id(source: str) -> str:
    return f"v{stable_hash(source):016x}"[:13]


def split_video(path: str | Path, source: str, out_dir: str | Path, config: SplitConfig) -> list[dict[str, Any]]:
    """Cut one raw video; returns its clip rows (``kind="clip"``) and short-scene rows (``kind="short_scene"``)."""
    from diffusers_cogvideox.video_io import export_to_video

    info = probe(path)
    if info.fps + 1e-6 < config.fps:
        raise ClipError(
            f"{Path(path).name!r} runs at {info.fps:g} fps, below the clips' {config.fps:g} fps; frames would repeat "
            "(pass a lower --fps or use another source)"
        )
    scores = content_scores(iter_frames(path))
    num_frames = len(scores) + 1
    cuts = detect_cuts(scores, config.cut_threshold, config.min_scene_frames)
    scenes = scenes_from_cuts(cuts, num_frames)
    plans, short = plan_windows(scenes, info.fps, config)
    vid = video_id(source)
    out_dir = Path(out_dir)
    rows: list[dict[str, Any]] = []
    for s in short:
        reason = (
            f"scene of {s['frames']} frames ({s['frames'] / info.fps:.3f} s) is shorter than one clip "
            f"({config.num_frames} frames at {config.fps:g} fps = {config.clip_seconds:.3f} s"
            + (f", after trimming {config.trim_frames} frames at each end" if config.trim_frames else "")
            + ")"
        )
        rows.append({"kind": "short_scene", "source": source, **s, "reason": reason})
    wanted: dict[int, list[tuple[int, int]]] = {}
    for p, plan in enumerate(plans):
        for k, index in enumerate(plan.source_indices):
            wanted.setdefault(index, []).append((p, k))
    buffers: dict[int, list[Any]] = {}
    width, height = info.width - info.width % 2, info.height - info.height % 2
    last_needed = max(wanted) if wanted else -1
    for index, frame in enumerate(iter_frames(path) if plans else ()):
        for p, k in wanted.get(index, ()):
            buffers.setdefault(p, [None] * config.num_frames)[k] = frame[:height, :width]
            if k == config.num_frames - 1:  # the window is complete: write it and free its frames
                plan = plans[p]
                rel = Path(CLIPS_DIR) / vid / f"s{plan.scene:03d}-w{plan.window:03d}.mp4"
                target = out_dir / rel
                tmp = target.with_name(f".{target.stem}.tmp.mp4")
                export_to_video(buffers.pop(p), tmp, fps=config.fps)
                tmp.replace(target)
                first, last = plan.source_indices[0], plan.source_indices[-1]
                rows.append(
                    {
                        "kind": "clip",
                        "clip_id": f"{vid}-s{plan.scene:03d}-w{plan.window:03d}",
                        "media": rel.as_posix(),
                        "duration": config.num_frames / config.fps,
                        "fps": config.fps,
                        "num_frames": config.num_frames,
                        "width": width,
                        "height": height,
                        "source": source,
                        "source_start_frame": first,
                        "source_end_frame": last + 1,
                        "start_time": first / info.fps,
                        "end_time": (last + 1) / info.fps,
                    }
                )
        if index >= last_needed:
            break
    if buffers:
        raise ClipError(f"{Path(path).name!r} ended before frame {last_needed}: it decodes fewer frames than probed")
    return rows


def split_items(videos: list[tuple[Path, str]]) -> list[Item]:
    """Items of a split job: ``(path, source name)`` pairs; the id is a hash of the source name."""
    seen: set[str] = set()
    items = []
    for index, (path, source) in enumerate(videos):
        vid = video_id(source)
        if vid in seen:
            raise ValueError(f"the input lists {source!r} twice")
        seen.add(vid)
        items.append(Item(vid, index, {"path": str(path), "source": source}))
    return items


def run_split(
    videos: list[tuple[Path, str]],
    out_dir: str | Path,
    config: SplitConfig = SplitConfig(),
    *,
    state: Any = None,
    progress: bool = True,
    overwrite: bool = False,
    force: bool = False,
) -> StageSummary:
    """Run (or resume) the split job for this process; then call :func:`collect_split` on the main process."""
    from accelerate import PartialState

    state = state or PartialState()
    items = split_items(videos)
    claim_job(out_dir, "split", asdict(config), state, inputs=[p for p, _ in videos], overwrite=overwrite, force=force)
    return run_stage(
        items,
        lambda item: split_video(item.payload["path"], item.payload["source"], out_dir, config),
        out_dir,
        desc="split",
        state=state,
        progress=progress,
    )


def collect_split(out_dir: str | Path, config: SplitConfig = SplitConfig()) -> Path:
    """Write ``data/train-00000-of-00001.parquet`` (clip rows), ``rejects.jsonl`` and ``README.md``."""
    from diffusers_cogvideox.records import Clip, clips_to_dataset

    from ..files import write_jsonl
    from ..visionrewarddb import write_parquet
    from .cards import render_stage_card

    out_dir = Path(out_dir)
    with open_job(out_dir, "split") as folder:  # an --overwrite's earlier output is deleted on success
        rows = results(out_dir)
        clips = [Clip(**{k: v for k, v in r.items() if k != "kind"}) for r in rows if r["kind"] == "clip"]
        adopt_committed(folder, [c.media for c in clips])
        rejects = [{"stage": "read", **r} for r in pending_rejects(out_dir)]
        rejects += [{"stage": "split", **r} for r in rows if r["kind"] == "short_scene"]
        if not clips:
            raise ValueError(f"no clips in {out_dir.name!r}: every video failed or was too short (see rejects)")
        dataset = clips_to_dataset(clips)
        write_parquet(dataset, folder.path("data/train-00000-of-00001.parquet"))
        write_jsonl(folder.path("rejects.jsonl"), rejects)
        sources = {c.source for c in clips}
        card = render_stage_card(
            pretty_name="CogVideoX clips (split)",
            summary=(
                f"{len(clips)} clips of {config.num_frames} frames at {config.fps:g} fps cut from {len(sources)} raw "
                "videos by detected scenes (`vr-datasets split`). Each row gives the source frame range it was sampled "
                "from; captions are empty until `vr-datasets caption`."
            ),
            num_rows=len(clips),
            features=dataset.features,
            settings=asdict(config),
            statistics={"clips": len(clips), "source videos": len(sources), "rejects": len(rejects)},
            rejects=rejects,
        )
        folder.write_text("README.md", str(card))
        return out_dir
