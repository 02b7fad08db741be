"""mixdepth.inference is a layer: it uses models, data transforms, io and errors, and nothing
that is built on it (the CLI with its export command, video, outputs, serve, eval, train)."""

import ast
from pathlib import Path

import mixdepth.inference

PACKAGE = Path(mixdepth.inference.__file__).parent
ALLOWED = ("mixdepth.inference", "mixdepth.models", "mixdepth.data.transforms", "mixdepth.io",
           "mixdepth.errors")


def mixdepth_imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "mixdepth":
                names |= {f"mixdepth.{alias.name}" for alias in node.names}
            else:
                names.add(node.module)
        elif isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
    return {name for name in names if name == "mixdepth" or name.startswith("mixdepth.")}


def test_inference_imports_only_what_lies_below_it():
    files = sorted(PACKAGE.glob("*.py"))
    assert {f.stem for f in files} >= {"predictor", "graph", "onnx", "runtimes", "onnx_cache"}
    for path in files:
        outside = {name for name in mixdepth_imports(path)
                   if name != "mixdepth" and not name.startswith(ALLOWED)}
        assert not outside, f"{path.name} imports {sorted(outside)}"


def test_the_export_command_builds_on_inference():
    cli_export = Path(mixdepth.inference.__file__).parents[1] / "cli" / "export.py"
    assert any(name.startswith("mixdepth.inference") for name in mixdepth_imports(cli_export))
