"""SAT -> transformers conversion of VisionReward-Image: a synthetic SAT checkpoint round-trips through every input form.

SAT names below are those of SwissArmyTransformer's ``LLaMAModel`` (``transformer.*``, ``mixins.lm.lm_head``,
``mixins.mlp.gate_proj.{i}`` of ``LLaMAMlpMixin``), the vision-expert mixins of THUDM/CogVLM ``mixin_llama3.py``
(``mixins.mlp.vision_{gate_proj,dense_h_to_4h_list,dense_4h_to_h_list}.{i}``,
``mixins.rotary.vision_{query_key_value,dense}_list.{i}``) and the ``eva`` ImageMixin around SAT's ``EVA2CLIPModel``
(``mixins.eva.vit_model.*``, ``mixins.eva.{conv,linear_proj,boi,eoi}``), as VisionReward's ``VisualLlamaEVA`` builds
them; the checkpoint is ``{"module": state_dict}`` in ``<iteration>/mp_rank_00_model_states.pt`` next to ``latest``
and ``model_config.json`` (``sat/training/model_io.py``), shipped as a tar split into ``split_part_a*`` files.
"""

import copy
import json
import tarfile

import numpy as np
import pytest
import torch

from trl_vision_reward import cli as vision_reward_cli
from trl_vision_reward.reward.cogvlm2 import load_cogvlm2
from trl_vision_reward.reward.cogvlm2.convert_sat import convert_sat_checkpoint
from trl_vision_reward.reward.cogvlm2.tiny import tiny_cogvlm2_model, tiny_cogvlm2_processor

from .conftest import random_image

# official (= our) name -> SAT name, per language layer, per vision layer, and once
SAT_LANGUAGE_LAYER = {
    "input_layernorm.weight": "transformer.layers.{i}.input_layernorm.weight",
    "post_attention_layernorm.weight": "transformer.layers.{i}.post_attention_layernorm.weight",
    "self_attn.language_expert_query_key_value.weight": "transformer.layers.{i}.attention.query_key_value.weight",
    "self_attn.language_expert_dense.weight": "transformer.layers.{i}.attention.dense.weight",
    "mlp.language_mlp.up_proj.weight": "transformer.layers.{i}.mlp.dense_h_to_4h.weight",
    "mlp.language_mlp.down_proj.weight": "transformer.layers.{i}.mlp.dense_4h_to_h.weight",
    "mlp.language_mlp.gate_proj.weight": "mixins.mlp.gate_proj.{i}.weight",
    "mlp.vision_mlp.gate_proj.weight": "mixins.mlp.vision_gate_proj.{i}.weight",
    "mlp.vision_mlp.up_proj.weight": "mixins.mlp.vision_dense_h_to_4h_list.{i}.weight",
    "mlp.vision_mlp.down_proj.weight": "mixins.mlp.vision_dense_4h_to_h_list.{i}.weight",
    "self_attn.vision_expert_query_key_value.weight": "mixins.rotary.vision_query_key_value_list.{i}.weight",
    "self_attn.vision_expert_query_key_value.bias": "mixins.rotary.vision_query_key_value_list.{i}.bias",
    "self_attn.vision_expert_dense.weight": "mixins.rotary.vision_dense_list.{i}.weight",
}
SAT_VISION_LAYER = {
    f"{module}.{kind}": f"mixins.eva.vit_model.transformer.layers.{{i}}.{sat_module}.{kind}"
    for module, sat_module in [
        ("input_layernorm", "input_layernorm"),
        ("attention.query_key_value", "attention.query_key_value"),
        ("attention.dense", "attention.dense"),
        ("mlp.fc1", "mlp.dense_h_to_4h"),
        ("mlp.fc2", "mlp.dense_4h_to_h"),
        ("post_attention_layernorm", "post_attention_layernorm"),
    ]
    for kind in ("weight", "bias")
}
SAT_ONCE = {
    "model.embed_tokens.weight": "transformer.word_embeddings.weight",
    "model.norm.weight": "transformer.final_layernorm.weight",
    "lm_head.weight": "mixins.lm.lm_head.weight",
    "model.vision.patch_embedding.cls_embedding": "mixins.eva.vit_model.transformer.word_embeddings.weight",
    "model.vision.patch_embedding.position_embedding.weight": "mixins.eva.vit_model.transformer.position_embeddings.weight",
    "model.vision.patch_embedding.proj.weight": "mixins.eva.vit_model.mixins.patch_embedding.proj.weight",
    "model.vision.patch_embedding.proj.bias": "mixins.eva.vit_model.mixins.patch_embedding.proj.bias",
    "model.vision.conv.weight": "mixins.eva.conv.weight",
    "model.vision.conv.bias": "mixins.eva.conv.bias",
    "model.vision.boi": "mixins.eva.boi",
    "model.vision.eoi": "mixins.eva.eoi",
    **{
        f"model.vision.linear_proj.{n}": f"mixins.eva.linear_proj.{n}"
        for n in (
            "linear_proj.weight",
            "norm1.weight",
            "norm1.bias",
            "dense_h_to_4h.weight",
            "gate_proj.weight",
            "dense_4h_to_h.weight",
        )
    },
}


def to_sat(state_dict):
    sat = {}
    for name, tensor in state_dict.items():
        parts = name.split(".")
        if name.startswith("model.layers."):
            sat[SAT_LANGUAGE_LAYER[".".join(parts[3:])].format(i=parts[2])] = tensor
        elif name.startswith("model.vision.transformer.layers."):
            sat[SAT_VISION_LAYER[".".join(parts[5:])].format(i=parts[4])] = tensor
        else:
            sat[SAT_ONCE[name]] = tensor
    sat["mixins.rotary.rotary_emb.inv_freq"] = torch.ones(8)  # FastRotaryEmbedding's persistent buffer
    return sat


MODEL_CONFIG = {  # the model_config.json SAT writes (head counts cannot be read off the shapes)
    "model_class": "VisualLlamaEVA",
    "num_layers": 2,
    "hidden_size": 64,
    "num_attention_heads": 4,
    "num_multi_query_heads": 2,
    "eva_args": {"num_layers": 2, "hidden_size": 64, "num_attention_heads": 4, "use_final_layernorm": False},
}


def write_sat_folder(root, state_dict, iteration="1", extra=None):
    (root / iteration).mkdir(parents=True)
    torch.save({"module": state_dict, **(extra or {})}, root / iteration / "mp_rank_00_model_states.pt")
    (root / "latest").write_text(iteration)
    (root / "model_config.json").write_text(json.dumps(MODEL_CONFIG))
    return root


def split_tar(folder, parts_dir, num_parts=4):
    """`tar -cf x.tar folder && split -n 4 x.tar split_part_` as the release does."""
    tar_path = parts_dir.parent / "visionreward_image.tar"
    with tarfile.open(tar_path, "w") as archive:
        archive.add(folder, arcname="VisionReward-Image")
    data = tar_path.read_bytes()
    parts_dir.mkdir()
    step = -(-len(data) // num_parts)
    for k in range(num_parts):
        (parts_dir / f"split_part_a{chr(ord('a') + k)}").write_bytes(data[k * step : (k + 1) * step])
    return tar_path


@pytest.fixture(scope="module")
def source_model():
    return tiny_cogvlm2_model()


def logits(model):
    processor = tiny_cogvlm2_processor()
    inputs = processor(text="Question: Is the image clear? Short answer:", images=random_image())
    with torch.no_grad():
        return model(**inputs).logits


def test_bf16_release_round_trips_from_split_tar_parts(tmp_path, source_model):
    reference = {k: v.to(torch.bfloat16) for k, v in source_model.state_dict().items()}
    # a deepspeed-style checkpoint also carries non-tensor entries (rng states...): read, never executed
    folder = write_sat_folder(
        tmp_path / "sat", to_sat(reference), extra={"np_rng_state": np.random.get_state(), "iteration": 1}
    )
    split_tar(folder, tmp_path / "parts")
    out = convert_sat_checkpoint(tmp_path / "parts", tmp_path / "out", max_shard_size="20KB")
    model = load_cogvlm2(out)  # strict: no missing or unexpected keys
    assert model.dtype == torch.bfloat16
    assert all(torch.equal(model.state_dict()[k], v) for k, v in reference.items())
    rounded = copy.deepcopy(source_model).to(torch.bfloat16).float()
    torch.testing.assert_close(logits(model.float()), logits(rounded))


def test_fp32_release_converts_from_a_folder_a_tar_and_the_pt_file(tmp_path, source_model):
    folder = write_sat_folder(tmp_path / "sat", to_sat(source_model.state_dict()))
    tar_path = split_tar(folder, tmp_path / "parts")
    sources = {"folder": folder, "tar": tar_path, "pt": folder / "1" / "mp_rank_00_model_states.pt"}
    for name, source in sources.items():
        model = load_cogvlm2(convert_sat_checkpoint(source, tmp_path / name))
        assert model.dtype == torch.float32, name
        torch.testing.assert_close(logits(model), logits(source_model))
    halved = load_cogvlm2(convert_sat_checkpoint(folder, tmp_path / "bf16", dtype="bf16"))
    assert halved.dtype == torch.bfloat16


def test_shards_stay_within_the_size_bound(tmp_path, source_model):
    folder = write_sat_folder(tmp_path / "sat", to_sat(source_model.state_dict()))
    out = convert_sat_checkpoint(folder, tmp_path / "out", max_shard_size="100KB")
    index = json.loads((out / "model.safetensors.index.json").read_text())
    shards = sorted(set(index["weight_map"].values()))
    assert len(shards) > 3 and shards[-1] == f"model-{len(shards):05d}-of-{len(shards):05d}.safetensors"
    largest_tensor = max(t.numel() * 4 for t in source_model.state_dict().values())
    assert all((out / shard).stat().st_size <= max(100_000, largest_tensor) + 10_000 for shard in shards)
    assert set(index["weight_map"]) == set(source_model.state_dict())


def test_cli_converts(tmp_path, source_model, capsys):
    folder = write_sat_folder(tmp_path / "sat", to_sat(source_model.state_dict()))
    code = vision_reward_cli.main(
        ["convert-sat", "--input", str(folder), "--out", str(tmp_path / "out"), "--dtype", "bf16"]
    )
    assert code == 0 and "wrote" in capsys.readouterr().out
    assert json.loads((tmp_path / "out" / "config.json").read_text())["model_type"] == "cogvlm2"


# ---------------------------------------------------------------------------------------------- bad input
def test_unknown_sat_keys_are_listed(tmp_path, source_model):
    sat = to_sat(source_model.state_dict())
    sat["mixins.eva.vit_model.transformer.final_layernorm.weight"] = torch.ones(64)
    sat["mixins.lora.layers.0.A"] = torch.ones(2)
    write_sat_folder(tmp_path / "sat", sat)
    with pytest.raises(ValueError, match=r"unknown SAT keys \(2\).*final_layernorm.*mixins\.lora"):
        convert_sat_checkpoint(tmp_path / "sat", tmp_path / "out")
    assert not (tmp_path / "out").exists()  # checked before anything is written


def test_missing_sat_keys_are_listed(tmp_path, source_model):
    sat = to_sat(source_model.state_dict())
    del sat["mixins.mlp.vision_gate_proj.1.weight"], sat["mixins.eva.eoi"]
    write_sat_folder(tmp_path / "sat", sat)
    with pytest.raises(
        ValueError,
        match=r"missing keys \(2\): \['model\.layers\.1\.mlp\.vision_mlp\.gate_proj\.weight', 'model\.vision\.eoi'\]",
    ):
        convert_sat_checkpoint(tmp_path / "sat", tmp_path / "out")


def test_model_parallel_checkpoints_are_refused(tmp_path, source_model):
    folder = write_sat_folder(tmp_path / "sat", to_sat(source_model.state_dict()))
    (folder / "1" / "mp_rank_01_model_states.pt").write_bytes(b"")
    with pytest.raises(NotImplementedError, match="model-parallel"):
        convert_sat_checkpoint(folder, tmp_path / "out")


def test_an_existing_output_is_not_overwritten_silently(tmp_path, source_model):
    folder = write_sat_folder(tmp_path / "sat", to_sat(source_model.state_dict()))
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("x")
    with pytest.raises(FileExistsError, match="overwrite"):
        convert_sat_checkpoint(folder, tmp_path / "out")
    convert_sat_checkpoint(folder, tmp_path / "out", overwrite=True)
    assert not (tmp_path / "out" / "keep.txt").exists()
