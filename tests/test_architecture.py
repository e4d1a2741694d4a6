"""The house rules that a reader of the code relies on, checked on the source itself."""
import ast
import pathlib
import re

SRC = pathlib.Path(__file__).resolve().parent.parent / "src"
BUILDER = re.compile(r"^(build_.*|.*_from_config|from_config)$")


def _functions(path):
    return [n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]


def test_only_builders_read_the_config():
    """The config stops at the builders: a function that takes `cfg` is a build_* or *_from_config one; the parts
    (backbones, necks, heads, losses, transforms, matcher, evaluator, trainer) take explicit arguments."""
    readers = [f"{p.relative_to(SRC)}:{f.lineno} {f.name}" for p in sorted(SRC.rglob("*.py")) if p != SRC / "config.py"
               for f in _functions(p) if "cfg" in [a.arg for a in f.args.args + f.args.kwonlyargs]
               and not BUILDER.match(f.name)]
    assert readers == []


def test_nothing_under_src_reads_the_command_line_but_the_config():
    users = [str(p.relative_to(SRC)) for p in sorted(SRC.rglob("*.py")) if p != SRC / "config.py"
             and "sys.argv" in p.read_text()]
    assert users == []


def test_models_and_losses_know_nothing_of_the_cpu_kernels():
    """src/kernels/swap.py swaps the kernels in; the blocks, heads and losses are MindSpore's own cells."""
    paths = list((SRC / "models").rglob("*.py")) + [SRC / "losses.py"]
    mentions = [str(p.relative_to(SRC)) for p in paths if re.search(r"\bkernels\b|cpu_kernel", p.read_text())]
    assert mentions == []


def test_allowed_values_are_read_from_the_tables_that_dispatch_on_them():
    from src.config import CHOICES, allowed_values, load_yaml_chain
    values, _, _ = load_yaml_chain(str(SRC.parent / "default_config.yaml"))
    for key in CHOICES:
        assert values[key] in allowed_values(key), key
    from src.losses import CLASSIFICATION_LOSSES
    assert allowed_values("loss") == list(CLASSIFICATION_LOSSES)
