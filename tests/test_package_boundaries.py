"""The packages' import boundaries (docs/architecture.md): cards receive plain data, the models never import the
datasets scripts, and importing the libraries does not pull in the job scripts."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: package -> the packages (or subpackages) it must never import, lazily or not
FORBIDDEN = {
    "hub_cards": ("datasets_scripts", "trl_vision_reward.mpo"),
    "diffusers_cogvideox": ("datasets_scripts", "trl_vision_reward"),
    "trl_vision_reward": ("datasets_scripts",),
}
#: crossings that exist today and are to be removed (each names where the code should live instead)
KNOWN = {
    # `cogvideox generate --rewrite-prompt`: the prompt rewriter belongs beside the pipelines, not in the data tools
    ("diffusers_cogvideox/commands/generate.py", "datasets_scripts.video_data.rewrite"),
}


def imported_modules(path: Path) -> set[str]:
    """Absolute names of every module ``path`` imports (relative imports resolved against its package)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, *([base] if base else [])])
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_module_imports_across_a_forbidden_boundary(package):
    crossings = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in sorted((ROOT / package).rglob("*.py"))
        for name in sorted(imported_modules(path))
        if any(name == bad or name.startswith(f"{bad}.") for bad in FORBIDDEN[package])
        and not any(str(path.relative_to(ROOT)) == where and name.startswith(mod) for where, mod in KNOWN)
    ]
    assert not crossings, "\n".join(crossings)


def test_importing_the_libraries_and_cards_does_not_import_the_dataset_scripts():
    code = (
        "import json, sys\n"
        "import trl_vision_reward, hub_cards\n"
        "import trl_vision_reward.records, hub_cards.dataset_cards, hub_cards.model_cards, hub_cards.space_cards\n"
        "import hub_cards.spaces.cogvideox_app, hub_cards.spaces.vision_reward_app\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'datasets_scripts')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
