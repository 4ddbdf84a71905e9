"""The CogVideoX video data pipeline: split raw videos into clips, score and filter them, caption them, rewrite prompts.

Each stage is a resumable, ``accelerate``-sharded job that reads files and writes a folder (Parquet + card):
``split`` (:mod:`.split`) -> ``filter`` (:mod:`.filter`) -> ``caption`` (:mod:`.caption`) -> the SFT clip dataset
(:class:`diffusers_cogvideox.records.Clip` rows); ``rewrite-prompts`` (:mod:`.rewrite`) turns short prompts into the
long, dense captions the model was trained on.
"""
