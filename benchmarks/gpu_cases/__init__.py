"""The cases of ``benchmarks/gpu_suite.py``, in the order they run; each module has TITLE, BUDGET_S, MIN_S and run(ctx)."""

from __future__ import annotations

from importlib import import_module

CASE_MODULES = {
    "transformer": ".transformer",
    "vae": ".vae",
    "scoring": ".scoring",
    "mpo": ".mpo",
    "sft": ".sft",
}


def load_case(name: str):
    return import_module(CASE_MODULES[name], __name__)
