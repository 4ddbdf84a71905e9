"""Register the native CogVLM2 backbones with the transformers Auto classes when ``trl_vision_reward`` is imported.

Registration needs the configuration classes, and importing any transformers configuration imports torch, which the
package's lazy imports exist to avoid. So registration waits for transformers: each Auto module
(``configuration_auto``, ``modeling_auto``, ``processing_auto``, ``image_processing_auto``) gets its entries right
after it is first imported - the moment someone reaches for ``AutoConfig``, ``AutoModelForCausalLM``, ... - or at once
when it is already loaded. Model classes are registered as stand-ins that import ``modeling_cogvlm2`` on first use,
so ``from transformers import AutoModelForCausalLM`` does not import this package's modeling code either.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import warnings
from collections.abc import Callable
from importlib import import_module
from typing import Any

_PACKAGE = "trl_vision_reward.reward.cogvlm2"
_AUTO = "transformers.models.auto."
# model_type -> (config class, model class) of this package
COGVLM2_MODEL_TYPES = {
    "cogvlm2": ("CogVLM2Config", "CogVLM2ForConditionalGeneration"),
    "cogvlm2_video": ("CogVLM2VideoConfig", "CogVLM2VideoForConditionalGeneration"),
}


# Each step imports from the Auto module that was just executed, not from `transformers` itself, whose lazy attribute
# lookup may be the very import in progress.


def _configs():
    configuration = import_module(f"{_PACKAGE}.configuration_cogvlm2")
    return [getattr(configuration, config_name) for config_name, _ in COGVLM2_MODEL_TYPES.values()]


class LazyModelClass:
    """Stands for a model class in the Auto mappings and imports it on first use (attribute access or call)."""

    def __init__(self, module: str, name: str, config_class: type):
        self.__name__ = name
        self.config_class = config_class  # what ``_BaseAutoModelClass.register`` checks, without importing
        self._module = module

    def resolve(self) -> type:
        return getattr(import_module(self._module), self.__name__)

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self.resolve(), attribute)

    def __call__(self, *args, **kwargs):
        return self.resolve()(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<lazy {self._module}.{self.__name__}>"


def _register_configs() -> None:
    from transformers.models.auto.configuration_auto import AutoConfig

    for config_class in _configs():
        AutoConfig.register(config_class.model_type, config_class, exist_ok=True)


def _register_models() -> None:
    from transformers.models.auto.modeling_auto import AutoModelForCausalLM, AutoModelForImageTextToText

    for config_class, (_, model_name) in zip(_configs(), COGVLM2_MODEL_TYPES.values()):
        stand_in = LazyModelClass(f"{_PACKAGE}.modeling_cogvlm2", model_name, config_class)
        for auto_class in (AutoModelForImageTextToText, AutoModelForCausalLM):
            auto_class.register(config_class, stand_in, exist_ok=True)


def _register_processors() -> None:
    from transformers.models.auto.processing_auto import AutoProcessor

    processing = import_module(f"{_PACKAGE}.processing_cogvlm2")
    for config_class in _configs():
        AutoProcessor.register(config_class, processing.CogVLM2Processor, exist_ok=True)


def _register_image_processors() -> None:
    from transformers.models.auto.image_processing_auto import AutoImageProcessor

    processing = import_module(f"{_PACKAGE}.processing_cogvlm2")
    for config_class in _configs():
        AutoImageProcessor.register(
            config_class, image_processor_classes={"pil": processing.CogVLM2ImageProcessor}, exist_ok=True
        )


_PENDING: dict[str, Callable[[], None]] = {}


def _run(callback: Callable[[], None]) -> None:
    try:
        callback()
    except Exception as err:  # a failed registration must never break importing transformers itself
        warnings.warn(f"could not register the CogVLM2 classes with transformers ({err!r})", stacklevel=2)


class _RegisterAfterExec(importlib.abc.Loader):
    """Runs the module's own loader, then the registration waiting for it."""

    def __init__(self, loader: importlib.abc.Loader, name: str):
        self.loader, self.name = loader, name

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        self.loader.exec_module(module)
        callback = _PENDING.pop(self.name, None)
        if callback is not None:
            _run(callback)

    def __getattr__(self, attribute: str) -> Any:  # get_source, get_resource_reader, ... of the real loader
        return getattr(self.loader, attribute)


class _AutoModuleFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname not in _PENDING:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return None
        spec.loader = _RegisterAfterExec(spec.loader, fullname)
        return spec


def register_auto_classes() -> None:
    """Register ``cogvlm2`` / ``cogvlm2_video`` with AutoConfig, AutoModelForImageTextToText, AutoModelForCausalLM,
    AutoProcessor and AutoImageProcessor, now for the Auto modules already imported and on import for the others."""
    steps = {
        f"{_AUTO}configuration_auto": _register_configs,
        f"{_AUTO}modeling_auto": _register_models,
        f"{_AUTO}processing_auto": _register_processors,
        f"{_AUTO}image_processing_auto": _register_image_processors,
    }
    for name, callback in steps.items():
        module = sys.modules.get(name)
        if module is None:
            _PENDING.setdefault(name, callback)
        elif name not in _PENDING and not getattr(getattr(module, "__spec__", None), "_initializing", False):
            _run(callback)  # loaded before us; one still executing (or hooked) registers when it is done
    if _PENDING and not any(isinstance(finder, _AutoModuleFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _AutoModuleFinder())


__all__ = ["COGVLM2_MODEL_TYPES", "LazyModelClass", "register_auto_classes"]
