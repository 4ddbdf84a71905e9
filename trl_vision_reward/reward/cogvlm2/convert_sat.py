"""Convert the SwissArmyTransformer (SAT) checkpoint of VisionReward-Image to this package's CogVLM2 format.

``THUDM/VisionReward-Image`` (fp32, 15 parts) and ``THUDM/VisionReward-Image-bf16`` (8 parts) ship a tar archive split
into parts (``split_part_aa``, ``split_part_ab``, ...; the model card reassembles them with ``cat split_part_* > x.tar``)
holding a SAT checkpoint folder: ``latest``, ``model_config.json`` and ``<iteration>/mp_rank_00_model_states.pt``, a
``torch.save({"module": state_dict, ...})`` zip archive (SAT ``sat/training/model_io.py``).

``convert_sat_checkpoint`` reads that archive where it lies - the parts directly (no ``cat``, no extraction), a joined
``.tar``, an extracted folder or the ``.pt`` file - and writes safetensors shards, ``model.safetensors.index.json`` and
``config.json``. Tensors are streamed: the pickle is read with a restricted unpickler that records where each tensor's
bytes are (no tensor data and no arbitrary code is loaded), then tensors are read one at a time and flushed shard by
shard, so memory stays within one shard plus one tensor. Before anything is written every key is mapped and checked
against the model the config describes; unknown or missing keys and wrong shapes raise, listing them.

SAT names come from ``VisualLlamaEVA`` (VisionReward ``utils/models``; same layout as ``CogVLM2Model`` in THUDM/CogVLM
``utils/models/cogvlm2_model.py``): SAT's ``LLaMAModel`` (``transformer.*`` layers plus the ``lm`` and ``mlp`` mixins of
``sat/model/official/llama_model.py``), the vision experts of ``mixin_llama3.py`` (``mixins.mlp.vision_*`` and
``mixins.rotary.vision_*_list``) and the ``eva`` mixin (``ImageMixin``: ``vit_model`` = SAT ``EVA2CLIPModel``, ``conv``,
``linear_proj`` GLU, ``boi``/``eoi``). Tensor layouts are identical (SAT fused QKV is ``[q | k | v]`` with
``stride=[heads, kv_heads, kv_heads]``, as the transformers checkpoints), so conversion is renaming only.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import re
import shutil
import tarfile
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import torch

from .configuration_cogvlm2 import OFFICIAL_IMAGE_ARCHITECTURE, CogVLM2Config

SAT_MODEL_FILE = "mp_rank_00_model_states.pt"

# ---------------------------------------------------------------------------------------------------------------------
# SAT name -> our (= official transformers) name. `{i}` is a layer index.
# ---------------------------------------------------------------------------------------------------------------------
_L = "model.layers.{i}."
_V = "model.vision.transformer.layers.{i}."
SAT_TO_HF: dict[str, str] = {
    # SAT BaseTransformer (sat/model/transformer.py) under LLaMAModel; lm_head from LLaMAModel's LMMixin
    "transformer.word_embeddings.weight": "model.embed_tokens.weight",
    "transformer.final_layernorm.weight": "model.norm.weight",
    "mixins.lm.lm_head.weight": "lm_head.weight",
    "transformer.layers.{i}.input_layernorm.weight": _L + "input_layernorm.weight",
    "transformer.layers.{i}.post_attention_layernorm.weight": _L + "post_attention_layernorm.weight",
    "transformer.layers.{i}.attention.query_key_value.weight": _L + "self_attn.language_expert_query_key_value.weight",
    "transformer.layers.{i}.attention.dense.weight": _L + "self_attn.language_expert_dense.weight",
    "transformer.layers.{i}.mlp.dense_h_to_4h.weight": _L + "mlp.language_mlp.up_proj.weight",
    "transformer.layers.{i}.mlp.dense_4h_to_h.weight": _L + "mlp.language_mlp.down_proj.weight",
    # LlamaVisionExpertFCMixin (mixin_llama3.py): the language gate and the three vision MLP projections
    "mixins.mlp.gate_proj.{i}.weight": _L + "mlp.language_mlp.gate_proj.weight",
    "mixins.mlp.vision_gate_proj.{i}.weight": _L + "mlp.vision_mlp.gate_proj.weight",
    "mixins.mlp.vision_dense_h_to_4h_list.{i}.weight": _L + "mlp.vision_mlp.up_proj.weight",
    "mixins.mlp.vision_dense_4h_to_h_list.{i}.weight": _L + "mlp.vision_mlp.down_proj.weight",
    # LlamaVisionExpertAttnMixin (mixin_llama3.py): vision QKV (with bias) and output projection
    "mixins.rotary.vision_query_key_value_list.{i}.weight": _L + "self_attn.vision_expert_query_key_value.weight",
    "mixins.rotary.vision_query_key_value_list.{i}.bias": _L + "self_attn.vision_expert_query_key_value.bias",
    "mixins.rotary.vision_dense_list.{i}.weight": _L + "self_attn.vision_expert_dense.weight",
    # ImageMixin: EVA2CLIPModel (SAT ViT: class token = word_embeddings of vocab 1, learned positions, patch conv)
    "mixins.eva.vit_model.transformer.word_embeddings.weight": "model.vision.patch_embedding.cls_embedding",
    "mixins.eva.vit_model.transformer.position_embeddings.weight": "model.vision.patch_embedding.position_embedding.weight",
    "mixins.eva.vit_model.mixins.patch_embedding.proj.weight": "model.vision.patch_embedding.proj.weight",
    "mixins.eva.vit_model.mixins.patch_embedding.proj.bias": "model.vision.patch_embedding.proj.bias",
    "mixins.eva.vit_model.transformer.layers.{i}.input_layernorm.weight": _V + "input_layernorm.weight",
    "mixins.eva.vit_model.transformer.layers.{i}.input_layernorm.bias": _V + "input_layernorm.bias",
    "mixins.eva.vit_model.transformer.layers.{i}.attention.query_key_value.weight": _V
    + "attention.query_key_value.weight",
    "mixins.eva.vit_model.transformer.layers.{i}.attention.query_key_value.bias": _V + "attention.query_key_value.bias",
    "mixins.eva.vit_model.transformer.layers.{i}.attention.dense.weight": _V + "attention.dense.weight",
    "mixins.eva.vit_model.transformer.layers.{i}.attention.dense.bias": _V + "attention.dense.bias",
    "mixins.eva.vit_model.transformer.layers.{i}.mlp.dense_h_to_4h.weight": _V + "mlp.fc1.weight",
    "mixins.eva.vit_model.transformer.layers.{i}.mlp.dense_h_to_4h.bias": _V + "mlp.fc1.bias",
    "mixins.eva.vit_model.transformer.layers.{i}.mlp.dense_4h_to_h.weight": _V + "mlp.fc2.weight",
    "mixins.eva.vit_model.transformer.layers.{i}.mlp.dense_4h_to_h.bias": _V + "mlp.fc2.bias",
    "mixins.eva.vit_model.transformer.layers.{i}.post_attention_layernorm.weight": _V
    + "post_attention_layernorm.weight",
    "mixins.eva.vit_model.transformer.layers.{i}.post_attention_layernorm.bias": _V + "post_attention_layernorm.bias",
    # ImageMixin: 2x2 pooling conv, GLU adapter, begin/end-of-image embeddings
    "mixins.eva.conv.weight": "model.vision.conv.weight",
    "mixins.eva.conv.bias": "model.vision.conv.bias",
    "mixins.eva.linear_proj.linear_proj.weight": "model.vision.linear_proj.linear_proj.weight",
    "mixins.eva.linear_proj.norm1.weight": "model.vision.linear_proj.norm1.weight",
    "mixins.eva.linear_proj.norm1.bias": "model.vision.linear_proj.norm1.bias",
    "mixins.eva.linear_proj.dense_h_to_4h.weight": "model.vision.linear_proj.dense_h_to_4h.weight",
    "mixins.eva.linear_proj.gate_proj.weight": "model.vision.linear_proj.gate_proj.weight",
    "mixins.eva.linear_proj.dense_4h_to_h.weight": "model.vision.linear_proj.dense_4h_to_h.weight",
    "mixins.eva.boi": "model.vision.boi",
    "mixins.eva.eoi": "model.vision.eoi",
}
# Buffers SAT saves that the model recomputes: the RoPE inverse frequencies of FastRotaryEmbedding (persistent buffer).
SAT_IGNORED = [
    r"^mixins\.rotary\.rotary_emb\.inv_freq$",
    r"^transformer\.layers\.\d+\.attention\.rotary_emb\.inv_freq$",
]


def _compile_mapping() -> list[tuple[re.Pattern, str]]:
    compiled = []
    for sat, ours in SAT_TO_HF.items():
        pattern = "^" + re.escape(sat).replace(re.escape("{i}"), r"(?P<i>\d+)") + "$"
        compiled.append((re.compile(pattern), ours))
    return compiled


_MAPPING = _compile_mapping()
_IGNORED = [re.compile(pattern) for pattern in SAT_IGNORED]


def sat_key_to_hf(name: str) -> str | None:
    """Our name for a SAT key; ``None`` for ignored buffers. Raises ``KeyError`` for keys the mapping does not know."""
    for pattern, target in _MAPPING:
        match = pattern.match(name)
        if match:
            return target.format(**match.groupdict())
    if any(pattern.match(name) for pattern in _IGNORED):
        return None
    raise KeyError(name)


# ---------------------------------------------------------------------------------------------------------------------
# Reading a torch.save zip archive lazily, from any seekable file (including a member of a split tar)
# ---------------------------------------------------------------------------------------------------------------------
_STORAGE_DTYPES = {
    "FloatStorage": torch.float32,
    "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16,
    "DoubleStorage": torch.float64,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
}


@dataclass(frozen=True)
class _StorageRef:
    dtype: torch.dtype
    key: str
    numel: int


@dataclass(frozen=True)
class LazyTensor:
    """Where a tensor's bytes are inside the archive; ``load()`` reads just those."""

    archive: _TorchArchive
    storage: _StorageRef
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]

    @property
    def dtype(self) -> torch.dtype:
        return self.storage.dtype

    @property
    def shape(self) -> torch.Size:
        return torch.Size(self.size)

    @property
    def nbytes(self) -> int:
        numel = 1
        for dim in self.size:
            numel *= dim
        return numel * self.dtype.itemsize

    def load(self) -> torch.Tensor:
        raw = bytearray(self.archive.read_storage(self.storage.key))
        flat = torch.frombuffer(raw, dtype=self.dtype) if raw else torch.empty(0, dtype=self.dtype)
        contiguous_stride, step = [], 1
        for dim in reversed(self.size):
            contiguous_stride.insert(0, step)
            step *= dim
        if self.offset == 0 and tuple(contiguous_stride) == self.stride and flat.numel() == self.shape.numel():
            return flat.view(self.size)
        return flat.as_strided(self.size, self.stride, self.offset).clone()


class _Opaque:
    """Stand-in for any object of the checkpoint that is not a tensor (optimizer states, numpy rng states...)."""

    def __new__(cls, *args, **kwargs):
        return object.__new__(cls)

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        pass

    def __setitem__(self, key, value):
        pass


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickles a torch.save ``data.pkl`` into dicts of ``LazyTensor``; never imports or calls anything else."""

    def __init__(self, file, archive: _TorchArchive):
        super().__init__(file)
        self._archive = archive

    def find_class(self, module, name):
        if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
            return self._rebuild_tensor
        if module == "torch._utils" and name in ("_rebuild_parameter", "_rebuild_parameter_with_state"):
            return lambda data, *args: data
        if module == "collections" and name == "OrderedDict":
            return OrderedDict
        if module == "torch" and name in _STORAGE_DTYPES:
            return _STORAGE_DTYPES[name]
        if module == "torch" and name == "Size":
            return tuple
        return _Opaque

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unsupported persistent id in checkpoint: {pid!r}")
        _, dtype, key, _location, numel = pid
        if not isinstance(dtype, torch.dtype):
            raise pickle.UnpicklingError(f"unsupported storage type in checkpoint: {dtype!r}")
        return _StorageRef(dtype, str(key), int(numel))

    def _rebuild_tensor(self, storage, storage_offset, size, stride, *args):
        return LazyTensor(self._archive, storage, int(storage_offset), tuple(size), tuple(stride))


class _TorchArchive:
    """A ``torch.save`` zip archive opened on a seekable binary file."""

    def __init__(self, fileobj):
        try:
            self._zip = zipfile.ZipFile(fileobj)
        except zipfile.BadZipFile as error:
            raise ValueError(
                "the SAT model file is not a torch.save zip archive (saved with torch < 1.6?); load it with torch and "
                "save it again, or pass an extracted folder"
            ) from error
        pickles = [name for name in self._zip.namelist() if name.endswith("/data.pkl") or name == "data.pkl"]
        if len(pickles) != 1:
            raise ValueError(f"expected one data.pkl in the torch archive; found {pickles}")
        self._prefix = pickles[0][: -len("data.pkl")]
        byteorder = self._prefix + "byteorder"
        if byteorder in self._zip.namelist() and self._zip.read(byteorder).decode().strip() != "little":
            raise ValueError("big-endian torch archives are not supported")

    def load_pickle(self):
        with self._zip.open(self._prefix + "data.pkl") as handle:
            return _RestrictedUnpickler(io.BytesIO(handle.read()), self).load()

    def read_storage(self, key: str) -> bytes:
        return self._zip.read(f"{self._prefix}data/{key}")


# ---------------------------------------------------------------------------------------------------------------------
# Finding the checkpoint: split tar parts, a tar, an extracted folder, or the .pt itself
# ---------------------------------------------------------------------------------------------------------------------
class _SeekableReader(io.RawIOBase):
    """Read-only seekable stream of ``_length`` bytes; subclasses say where bytes come from (``readinto``)."""

    _length = 0
    _position = 0

    def readable(self):
        return True

    def seekable(self):
        return True

    def tell(self):
        return self._position

    def seek(self, offset, whence=io.SEEK_SET):
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._length}[whence]
        self._position = max(0, base + offset)
        return self._position


class _ConcatenatedFiles(_SeekableReader):
    """Several files one after the other (``cat part_* > whole`` without the copy)."""

    def __init__(self, paths: list[Path]):
        self._paths = paths
        self._sizes = [path.stat().st_size for path in paths]
        self._starts = [sum(self._sizes[:i]) for i in range(len(paths))]
        self._length = sum(self._sizes)
        self._handles: dict[int, io.BufferedReader] = {}

    def readinto(self, buffer):
        view = memoryview(buffer).cast("B")
        written = 0
        while written < len(view) and self._position < self._length:
            index = max(i for i, start in enumerate(self._starts) if start <= self._position)
            handle = self._handles.get(index)
            if handle is None:
                handle = self._handles[index] = open(self._paths[index], "rb")  # noqa: SIM115 (closed in close())
            handle.seek(self._position - self._starts[index])
            want = min(len(view) - written, self._starts[index] + self._sizes[index] - self._position)
            got = handle.readinto(view[written : written + want])
            if not got:
                break
            written += got
            self._position += got
        return written

    def close(self):
        for handle in self._handles.values():
            handle.close()
        self._handles.clear()
        super().close()


class _Window(_SeekableReader):
    """``length`` bytes of ``base`` starting at ``start`` (a member inside an uncompressed tar); closes ``base``."""

    def __init__(self, base, start: int, length: int):
        self._base, self._start, self._length = base, start, length

    def readinto(self, buffer):
        view = memoryview(buffer).cast("B")
        want = max(0, min(len(view), self._length - self._position))
        self._base.seek(self._start + self._position)
        got = self._base.readinto(view[:want]) if want else 0
        self._position += got
        return got

    def close(self):
        self._base.close()
        super().close()


@dataclass
class SatCheckpoint:
    """An opened SAT checkpoint: the model file as a seekable stream and its ``model_config.json`` (if found)."""

    model_file: io.RawIOBase
    model_config: dict | None
    description: str

    def close(self):
        self.model_file.close()


def _split_parts(directory: Path) -> list[Path]:
    """``split_part_aa``, ``x.tar.part_ab``, ... (``split``'s alphabetic suffixes), in order."""
    return sorted(path for path in directory.iterdir() if path.is_file() and re.search(r"part_?[a-z]{2,}$", path.name))


def _choose_model_file(names: list[str], latest: str | None, description: str) -> str:
    """The ``mp_rank_00_model_states.pt`` among ``names``; with several iterations, the one ``latest`` names."""
    models = [name for name in names if re.fullmatch(r"mp_rank_\d+_model_states\.pt", Path(name).name)]
    if any(Path(name).name != SAT_MODEL_FILE for name in models):
        raise NotImplementedError(
            f"{description} holds a model-parallel SAT checkpoint ({sorted(models)}); only mp_rank_00 (model "
            "parallel size 1, as released) is supported"
        )
    if len(models) > 1 and latest is not None:
        models = [name for name in models if Path(name).parent.name == latest] or models
    if not models:
        raise FileNotFoundError(f"no {SAT_MODEL_FILE} in {description}")
    if len(models) > 1:
        raise ValueError(f"{description} holds several checkpoints {sorted(models)} and no `latest` naming one")
    return models[0]


def _open_tar(stream, description: str) -> SatCheckpoint:
    archive = tarfile.open(fileobj=stream, mode="r:")
    members = {member.name: member for member in archive.getmembers() if member.isfile()}

    def read(basename):
        name = next((n for n in members if Path(n).name == basename), None)
        return archive.extractfile(members[name]).read().decode() if name is not None else None

    latest, model_config = read("latest"), read("model_config.json")
    name = _choose_model_file(list(members), latest.strip() if latest else None, description)
    member = members[name]
    return SatCheckpoint(
        _Window(stream, member.offset_data, member.size),
        json.loads(model_config) if model_config else None,
        f"{description}:{name}",
    )


def open_sat_checkpoint(path: str | os.PathLike) -> SatCheckpoint:
    """Open a SAT checkpoint given as split tar parts (a folder of ``*part_aa``...), a ``.tar``, an extracted folder
    (with ``latest`` and ``<iteration>/mp_rank_00_model_states.pt``) or the ``.pt`` file itself."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"SAT checkpoint not found: {path}")
    if path.is_file():
        if tarfile.is_tarfile(path):
            return _open_tar(open(path, "rb"), str(path))  # noqa: SIM115 (closed by SatCheckpoint.close)
        config_file = path.parent.parent / "model_config.json"
        model_config = json.loads(config_file.read_text()) if config_file.is_file() else None
        return SatCheckpoint(open(path, "rb"), model_config, str(path))  # noqa: SIM115
    parts = _split_parts(path)
    if parts:
        stream = _ConcatenatedFiles(parts)
        return _open_tar(stream, f"{path} ({len(parts)} parts: {parts[0].name} .. {parts[-1].name})")
    latest = next(iter(sorted(path.rglob("latest"))), None)
    name = _choose_model_file(
        [str(p) for p in path.rglob("mp_rank_*_model_states.pt")],
        latest.read_text().strip() if latest is not None else None,
        str(path),
    )
    config_file = Path(name).parent.parent / "model_config.json"
    model_config = json.loads(config_file.read_text()) if config_file.is_file() else None
    return SatCheckpoint(open(name, "rb"), model_config, name)  # noqa: SIM115 (closed by SatCheckpoint.close)


def iter_sat_tensors(checkpoint: SatCheckpoint) -> dict[str, LazyTensor]:
    """The ``module`` state dict of a SAT checkpoint, as lazily readable tensors (no tensor bytes read yet)."""
    state = _TorchArchive(checkpoint.model_file).load_pickle()
    module = state.get("module", state) if isinstance(state, dict) else None
    if not isinstance(module, dict):
        raise ValueError(f"{checkpoint.description} has no 'module' state dict")
    tensors = {name: value for name, value in module.items() if isinstance(value, LazyTensor)}
    others = sorted(name for name, value in module.items() if not isinstance(value, LazyTensor))
    if others:
        raise ValueError(f"{checkpoint.description}: entries of the state dict that are not tensors: {others}")
    return tensors


# ---------------------------------------------------------------------------------------------------------------------
# Config and checking
# ---------------------------------------------------------------------------------------------------------------------
def config_from_sat(tensors: dict[str, LazyTensor], model_config: dict | None = None) -> CogVLM2Config:
    """The CogVLM2 config of a SAT checkpoint: shapes from the tensors, head counts from ``model_config.json``.

    Head counts cannot be read off the shapes; without ``model_config.json`` they default to CogVLM2's (32 query and
    8 key/value heads in the language model, 16 in the vision tower).
    """
    model_config = model_config or {}
    eva_args = model_config.get("eva_args", {}) or {}

    def shape(name):
        if name not in tensors:
            raise KeyError(f"the SAT checkpoint lacks {name}, needed to read its shape")
        return tuple(tensors[name].size)

    def count_layers(prefix):
        pattern = re.compile("^" + re.escape(prefix) + r"(\d+)\.")
        return 1 + max((int(m.group(1)) for n in tensors if (m := pattern.match(n))), default=-1)

    vocab_size, hidden_size = shape("transformer.word_embeddings.weight")
    num_heads = int(model_config.get("num_attention_heads", 32))
    head_dim = hidden_size // num_heads
    qkv_rows = shape("transformer.layers.0.attention.query_key_value.weight")[0]
    num_kv_heads = int(model_config.get("num_multi_query_heads", (qkv_rows - hidden_size) // (2 * head_dim)))
    vision_hidden = shape("mixins.eva.vit_model.transformer.word_embeddings.weight")[-1]
    patch_size = shape("mixins.eva.vit_model.mixins.patch_embedding.proj.weight")[-1]
    num_positions = shape("mixins.eva.vit_model.transformer.position_embeddings.weight")[0]
    grid = int(round((num_positions - 1) ** 0.5))
    vision_config = dict(
        hidden_size=vision_hidden,
        intermediate_size=shape("mixins.eva.vit_model.transformer.layers.0.mlp.dense_h_to_4h.weight")[0],
        num_hidden_layers=count_layers("mixins.eva.vit_model.transformer.layers."),
        num_heads=int(eva_args.get("num_attention_heads", 16)),
        image_size=grid * patch_size,
        patch_size=patch_size,
        in_channels=shape("mixins.eva.vit_model.mixins.patch_embedding.proj.weight")[1],
        num_positions=num_positions,
        layer_norm_eps=float(eva_args.get("layernorm_epsilon", 1e-6)),
    )
    # Llama-3 vocabulary: the ids of <|begin_of_text|>, <|end_of_text|> and the vision slot (CogVLM2 config.json).
    # SAT's own defaults (bos 0, eos 1, pad -1) are Llama-2's, so model_config.json is trusted only for other vocabs.
    llama3 = vocab_size == 128256
    special = {
        key: (default if llama3 else model_config.get(key))
        for key, default in (("bos_token_id", 128000), ("eos_token_id", 128001), ("pad_token_id", 128002))
    }
    special = {key: value if value is not None and 0 <= value < vocab_size else None for key, value in special.items()}
    return CogVLM2Config(
        vision_config=vision_config,
        **special,
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=shape("transformer.layers.0.mlp.dense_h_to_4h.weight")[0],
        num_hidden_layers=count_layers("transformer.layers."),
        num_attention_heads=num_heads,
        num_multi_query_heads=num_kv_heads,
        rms_norm_eps=float(model_config.get("layernorm_epsilon", 1e-5)),
        template_version="vqa",
    )


def expected_state_dict_shapes(config: CogVLM2Config) -> dict[str, torch.Size]:
    """Names and shapes of every tensor of the model ``config`` describes (built on the meta device)."""
    from .modeling_cogvlm2 import CogVLM2ForConditionalGeneration

    with torch.device("meta"):
        model = CogVLM2ForConditionalGeneration(config)
    return {name: tensor.shape for name, tensor in model.state_dict().items()}


def plan_conversion(tensors: dict[str, LazyTensor], config: CogVLM2Config) -> dict[str, str]:
    """SAT name -> our name for every tensor to write; raises listing unknown, missing and misshapen keys."""
    plan, unknown = {}, []
    for name in tensors:
        try:
            target = sat_key_to_hf(name)
        except KeyError:
            unknown.append(name)
            continue
        if target is not None:
            plan[name] = target
    expected = expected_state_dict_shapes(config)
    produced = set(plan.values())
    missing = sorted(set(expected) - produced)
    extra = sorted(target for target in produced if target not in expected)
    wrong = sorted(
        f"{sat} -> {ours}: {tuple(tensors[sat].size)} (expected {tuple(expected[ours])})"
        for sat, ours in plan.items()
        if ours in expected and tuple(tensors[sat].size) != tuple(expected[ours])
    )
    problems = []
    if unknown:
        problems.append(f"unknown SAT keys ({len(unknown)}): {sorted(unknown)}")
    if extra:
        problems.append(f"keys beyond the model described by the config ({len(extra)}): {extra}")
    if missing:
        problems.append(f"missing keys ({len(missing)}): {missing}")
    if wrong:
        problems.append(f"shape mismatches ({len(wrong)}): {wrong}")
    if problems:
        raise ValueError("cannot convert this SAT checkpoint:\n- " + "\n- ".join(problems))
    return plan


# ---------------------------------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------------------------------
_DTYPES = {
    "keep": None,
    "fp32": torch.float32,
    "float32": torch.float32,
    "bf16": torch.bfloat16,
    "bfloat16": torch.bfloat16,
    "fp16": torch.float16,
    "float16": torch.float16,
}


def parse_size(size: int | str) -> int:
    """``"5GB"`` / ``"500MB"`` / ``1234`` -> bytes (decimal units, as transformers' ``max_shard_size``)."""
    if isinstance(size, int):
        return size
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?i?B)?\s*", size, flags=re.IGNORECASE)
    if not match:
        raise ValueError(f"cannot read a size from {size!r}; use e.g. '5GB' or '500MB'")
    units = {
        "": 1,
        "B": 1,
        "KB": 10**3,
        "MB": 10**6,
        "GB": 10**9,
        "TB": 10**12,
        "KIB": 2**10,
        "MIB": 2**20,
        "GIB": 2**30,
        "TIB": 2**40,
    }
    return int(float(match.group(1)) * units[(match.group(2) or "").upper()])


def _write_shards(
    tensors: dict[str, LazyTensor], plan: dict[str, str], out: Path, dtype: torch.dtype | None, max_shard_bytes: int
) -> dict[str, str]:
    from safetensors.torch import save_file

    temporary, shard, shard_bytes, total = [], {}, 0, 0

    def flush():
        nonlocal shard, shard_bytes
        if shard:
            path = out / f"model-{len(temporary) + 1:05d}.safetensors.partial"
            save_file(shard, str(path), metadata={"format": "pt"})
            temporary.append((path, list(shard)))
            shard, shard_bytes = {}, 0

    for sat_name, ours in plan.items():
        lazy = tensors[sat_name]
        size = lazy.nbytes if dtype is None else lazy.shape.numel() * dtype.itemsize
        if shard and shard_bytes + size > max_shard_bytes:
            flush()
        tensor = lazy.load()
        if dtype is not None and tensor.is_floating_point():
            tensor = tensor.to(dtype)
        shard[ours] = tensor.contiguous()
        shard_bytes += size
        total += size
    flush()

    weight_map = {}
    for index, (path, names) in enumerate(temporary, start=1):
        final = out / f"model-{index:05d}-of-{len(temporary):05d}.safetensors"
        path.replace(final)
        weight_map.update({name: final.name for name in names})
    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    (out / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")
    return weight_map


def convert_sat_checkpoint(
    input_path: str | os.PathLike,
    output_dir: str | os.PathLike,
    *,
    dtype: str | torch.dtype | None = "keep",
    max_shard_size: int | str = "5GB",
    tokenizer: str | os.PathLike | None = None,
    overwrite: bool = False,
) -> Path:
    """Convert VisionReward-Image (or any CogVLM2 SAT checkpoint) to a folder ``from_pretrained`` loads.

    Args:
        input_path: split tar parts (folder of ``split_part_aa``...), a ``.tar``, an extracted SAT folder or the
            ``mp_rank_00_model_states.pt`` file.
        output_dir: where config.json, the safetensors shards and their index go.
        dtype: "keep" (the release's own: fp32 or bf16), "bf16", "fp16" or "fp32".
        max_shard_size: bytes per shard (``"5GB"``); also the bound on the memory conversion needs.
        tokenizer: optional path or id of the Llama-3 tokenizer (VisionReward-Image uses
            ``meta-llama/Meta-Llama-3-8B-Instruct``) to save a ready ``CogVLM2Processor`` beside the weights.
        overwrite: replace an existing non-empty ``output_dir``.
    """
    output_dir = Path(output_dir)
    if output_dir.exists() and any(output_dir.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{output_dir} is not empty; pass overwrite=True (--overwrite) to replace it")
        shutil.rmtree(output_dir)
    if isinstance(dtype, str):
        if dtype not in _DTYPES:
            raise ValueError(f"dtype must be one of {sorted(_DTYPES)}; got {dtype!r}")
        dtype = _DTYPES[dtype]

    checkpoint = open_sat_checkpoint(input_path)
    try:
        tensors = iter_sat_tensors(checkpoint)
        config = config_from_sat(tensors, checkpoint.model_config)
        plan = plan_conversion(tensors, config)
        output_dir.mkdir(parents=True, exist_ok=True)
        _write_shards(tensors, plan, output_dir, dtype, parse_size(max_shard_size))
    finally:
        checkpoint.close()

    source_dtype = next(iter(tensors.values())).dtype
    config.dtype = dtype or source_dtype
    config.architectures = ["CogVLM2ForConditionalGeneration"]
    config.save_pretrained(output_dir)
    (output_dir / "conversion.json").write_text(
        json.dumps(
            {
                "source": checkpoint.description,
                "source_architecture": "SAT VisualLlamaEVA",
                "equivalent_transformers_architecture": OFFICIAL_IMAGE_ARCHITECTURE,
                "tensors": len(plan),
            },
            indent=2,
        )
        + "\n"
    )
    if tokenizer is not None:
        from transformers import AutoTokenizer

        from .processing_cogvlm2 import CogVLM2ImageProcessor, CogVLM2Processor

        image_processor = CogVLM2ImageProcessor(
            image_size=config.vision_config.image_size, patch_size=config.vision_config.patch_size
        )
        CogVLM2Processor(image_processor, AutoTokenizer.from_pretrained(tokenizer)).save_pretrained(output_dir)
    return output_dir


__all__ = [
    "SAT_TO_HF",
    "config_from_sat",
    "convert_sat_checkpoint",
    "open_sat_checkpoint",
    "sat_key_to_hf",
]
