"""Configuration: YAML files with inheritance, command-line overrides, help text and type checks.

`default_config.yaml` holds every key with its default (first YAML document) and a help line per key (second
document). A model's YAML names `__BASE__` (a path relative to itself) and only the keys that differ. Every key can
be overridden on the command line, `--lr 0.05` or `--img_shape 320 320`; the type of a key is the type of its
default value. Nothing here is read at import time.
"""
import argparse
import difflib
import os
import sys

import yaml

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_CONFIG = os.path.join(REPO_ROOT, "default_config.yaml")
CONFIG_DIR = os.path.join(REPO_ROOT, "configs")
BASE_KEY = "__BASE__"


# The values a key may take live in the table that dispatches on them; checked here once, before anything runs, so
# that a typo is one line, not a traceback from deep inside the run. Key -> (module, table): the table's keys (or
# items) are the allowed values. Imported only for the keys a script reads (postprocess.py loads no MindSpore).
CHOICES = {
    "loss": ("src.losses", "CLASSIFICATION_LOSSES"),
    "anchor_type": ("src.box.anchors", "ANCHOR_GENERATORS"),
    "dataset": ("src.data.sources", "DATASETS"),
    "loss_scale_type": ("src.training.train_step", "LOSS_SCALES"),
    "optimizer": ("src.training.train_step", "OPTIMIZERS"),
    "amp_level": ("src.training.builder", "AMP_LEVELS"),
    "mode": ("src.device", "MODES"),
    "device_target": ("src.device", "DEVICE_TARGETS"),
    "file_format": ("src.deploy.exporter", "EXTENSIONS"),
}
POSITIVE = ("epoch_size", "batch_size", "eval_batch_size", "lr", "log_interval", "save_checkpoint_epochs",
            "keep_checkpoint_max", "max_nan_steps", "eval_interval", "max_boxes", "pre_nms_top_k", "width_mult",
            "loss_scale", "demo_num_train", "demo_num_val", "num_parallel_workers", "base_batch_size", "timed_steps",
            "pipeline_batches", "eval_images", "infer_runs")
UNIT_INTERVAL = ("match_threshold", "ignore_threshold", "nms_threshold", "min_score", "focal_alpha", "prior_prob",
                 "draw_score", "expand_prob", "crop_prob", "crop_min_scale", "photometric_prob", "flip_prob",
                 "ema_decay", "confusion_score")


from .errors import ConfigError  # noqa: F401  (re-exported: the config's own error)


def allowed_values(key):
    """The values `key` may take: the keys of the table that dispatches on it."""
    import importlib
    module, table = CHOICES[key]
    return list(getattr(importlib.import_module(module), table))


def validate(cfg, keys=None):
    """Raise ConfigError for a value outside its key's choices or range; `keys` limits the choice checks to the keys
    a script reads."""
    # Launchers set DEVICE_ID; checked first, before a choice table loads MindSpore, which warns about it on its own.
    device_env = os.environ.get("DEVICE_ID")
    if device_env is not None and not device_env.strip().isdigit():
        raise ConfigError(f"the environment variable DEVICE_ID must be a device index (0, 1, ...), got {device_env!r}")
    for key in CHOICES:
        if key not in cfg or (keys is not None and key not in keys):
            continue
        allowed = allowed_values(key)
        match = [a for a in allowed if a.lower() == str(cfg[key]).lower()]
        if not match:
            raise ConfigError(f"key '{key}' must be one of {', '.join(allowed)}, got {cfg[key]!r}")
        cfg[key] = match[0]
    for key in POSITIVE:
        if key in cfg and not cfg[key] > 0:
            raise ConfigError(f"key '{key}' must be positive, got {cfg[key]!r}")
    for key in UNIT_INTERVAL:
        if key in cfg and not 0.0 <= cfg[key] <= 1.0:
            raise ConfigError(f"key '{key}' must be between 0 and 1, got {cfg[key]!r}")
    if "img_shape" in cfg and (len(cfg.img_shape) != 2 or min(cfg.img_shape) < 32):
        raise ConfigError(f"key 'img_shape' must be [height, width], each at least 32, got {cfg.img_shape}")
    if cfg.get("device_id", 0) < 0:
        raise ConfigError(f"key 'device_id' must be a device index (0, 1, ...), got {cfg.device_id}")
    if cfg.get("num_classes", 0) < 0:
        raise ConfigError(f"key 'num_classes' must be 0 (derived from the classes) or positive, got {cfg.num_classes}")
    classes = [str(c) for c in cfg.get("classes") or []]
    repeated = sorted({c for c in classes if classes.count(c) > 1})
    if repeated:
        raise ConfigError(f"key 'classes' names {', '.join(repeated)} more than once")
    if classes and cfg.get("num_classes") and cfg.num_classes != len(classes):
        raise ConfigError(f"num_classes is {cfg.num_classes} but classes names {len(classes)} "
                          f"({', '.join(classes[:5])}{', ...' if len(classes) > 5 else ''}); leave num_classes at 0 "
                          "to derive it")
    for key in ("contrast_range", "saturation_range"):
        if key in cfg and (len(cfg[key]) != 2 or not 0 <= cfg[key][0] <= cfg[key][1]):
            raise ConfigError(f"key '{key}' must be [low, high] with 0 <= low <= high, got {cfg[key]}")
    if any(not 0.0 <= v <= 1.0 for v in cfg.get("crop_min_ious", [])):
        raise ConfigError(f"key 'crop_min_ious' must hold IoUs between 0 and 1, got {cfg.crop_min_ious}")
    for key in ("expand_max_ratio",):
        if key in cfg and cfg[key] < 1.0:
            raise ConfigError(f"key '{key}' must be at least 1, got {cfg[key]}")
    for key in ("ema_tau", "crop_min_scale"):
        if key in cfg and not cfg[key] > 0:
            raise ConfigError(f"key '{key}' must be positive, got {cfg[key]}")
    cores = os.cpu_count() or 1
    if cfg.get("num_parallel_workers", 1) > cores:  # MindSpore's own check would end in a traceback
        raise ConfigError(f"key 'num_parallel_workers' is {cfg.num_parallel_workers}, but this machine has {cores} "
                          "cores, MindSpore's upper limit")
    if cfg.get("ignore_threshold", 0) > cfg.get("match_threshold", 1):
        raise ConfigError(f"ignore_threshold ({cfg.ignore_threshold}) must not exceed match_threshold "
                          f"({cfg.match_threshold})")


class Config(dict):
    """A dict whose keys can also be read as attributes (`cfg.lr`). `command_line`: the keys given as flags."""

    command_line = frozenset()

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"config has no key '{name}'") from None

    def __setattr__(self, name, value):
        self[name] = value

    def to_yaml(self):
        """The resolved config as a loadable YAML file: it inherits the key set and help of default_config.yaml."""
        values = {BASE_KEY: DEFAULT_CONFIG}
        values.update((k, v) for k, v in self.items() if k != "config_path")
        return yaml.safe_dump(values, sort_keys=False, default_flow_style=None)


def _read_yaml_documents(path):
    try:
        with open(path, encoding="utf-8") as f:
            docs = list(yaml.safe_load_all(f))
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else path
        raise ConfigError(f"{where}: invalid YAML ({getattr(e, 'problem', e)})") from None
    docs = [d for d in docs if d is not None]
    for d in docs:
        if not isinstance(d, dict):
            raise ConfigError(f"{path}: a config file must be a mapping of keys to values")
    return docs


def _type_name(value):
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, list):
        return "list"
    if value is None:
        return "null"
    return type(value).__name__


def _coerce(key, value, default, where):
    """Return `value` converted to the type of `default`, or raise ConfigError naming the key."""
    if default is None or value is None:
        return value
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        raise ConfigError(f"{where}: key '{key}' expects true or false, got {value!r}")
    if isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{where}: key '{key}' expects an integer, got {value!r}")
    if isinstance(default, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads `1e-3` (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{where}: key '{key}' expects a number, got {value!r}")
    if isinstance(default, str):
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{where}: key '{key}' expects a string, got {value!r}")
    if isinstance(default, list):
        if not isinstance(value, list):
            raise ConfigError(f"{where}: key '{key}' expects a list, got {value!r}")
        if default and isinstance(default[0], list):
            return [_coerce_number_list(key, v, where) for v in value]
        if default:
            # Check elements against the default's first element.
            proto = default[0]
            return [_coerce(key, v, proto, where) for v in value]
        return value
    return value


def _coerce_number_list(key, value, where):
    """An inner list of a list of lists (aspect_ratios): numbers, kept as given."""
    if not isinstance(value, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        raise ConfigError(f"{where}: key '{key}' expects a list of number lists, got {value!r} inside it")
    return value


def _flatten_groups(values, path, groups=None):
    """{group: {key: value}} -> ({key: value}, {key: group}). In a file that is not the root, a top-level key may
    also be a plain key (the usual, flat form of a model config) or a group of the root's."""
    flat, owner = {}, {}
    for name, value in values.items():
        if isinstance(value, dict) and (groups is None or name in set(groups.values())):
            for key, inner in value.items():
                if key in flat:
                    raise ConfigError(f"{path}: key '{key}' appears in group '{owner[key]}' and in '{name}'")
                flat[key], owner[key] = inner, name
        else:
            if groups is None:  # a flat root file: its keys form one group
                owner[name] = "general"
            flat[name] = value
    return flat, owner


def load_yaml_chain(path):
    """Load a config file and the `__BASE__` files it inherits from. Returns (values, helps, groups).

    The root of the chain defines the keys, grouped by what reads them (`{group: {key: default}}`); `groups` maps
    each key to its group. Every other file may only change values, as flat keys (or under a group's name).
    """
    path = os.path.abspath(path)
    seen = []
    chain = []
    while path:
        if path in seen:
            raise ConfigError(f"{path}: {BASE_KEY} chain loops back on itself")
        seen.append(path)
        docs = _read_yaml_documents(path)
        values = dict(docs[0]) if docs else {}
        helps = dict(docs[1]) if len(docs) > 1 else {}
        base = values.pop(BASE_KEY, None)
        chain.append((path, values, helps))
        path = os.path.normpath(os.path.join(os.path.dirname(path), base)) if base else None

    root_path, root_values, helps = chain[-1]
    merged, groups = _flatten_groups(root_values, root_path)
    if os.path.abspath(root_path) != os.path.abspath(DEFAULT_CONFIG):
        # A chain rooted elsewhere (a run folder of another clone or an older version): keys it lacks take this
        # version's defaults, so that it still loads.
        defaults, default_helps, default_groups = load_yaml_chain(DEFAULT_CONFIG)
        for key, value in defaults.items():
            if key not in merged:
                merged[key], groups[key] = value, default_groups[key]
        helps = dict(default_helps, **helps)
    if "config_path" in merged:
        raise ConfigError(f"{root_path}: 'config_path' is reserved for the command line")
    helps = dict(helps)
    for path, values, extra_help in reversed(chain[:-1]):
        flat, _ = _flatten_groups(values, path, groups)
        for key, value in flat.items():
            if key not in merged:
                hint = difflib.get_close_matches(key, merged, n=1)
                raise ConfigError(f"{path}: unknown key '{key}'" + (f" (did you mean '{hint[0]}'?)" if hint else ""))
            merged[key] = _coerce(key, value, merged[key], os.path.basename(path))
        helps.update(extra_help)
    return merged, helps, groups


def _number_or_string(token):
    for kind in (int, float):
        try:
            return kind(token)
        except ValueError:
            pass
    return token


def _parse_cli_value(key, tokens, default):
    """Turn the tokens after `--key` into a value of the default's type."""
    where = "command line"
    if isinstance(default, list):
        if len(tokens) == 1 and tokens[0].strip().startswith("["):
            try:
                value = yaml.safe_load(tokens[0])
            except yaml.YAMLError:
                raise ConfigError(f"{where}: --{key}: cannot parse {tokens[0]!r} as a list") from None
        else:
            # One token with commas is the list written out (`--classes cat,dog`, `--img_shape 320,320`).
            if len(tokens) == 1 and "," in tokens[0]:
                tokens = [t.strip() for t in tokens[0].split(",")]
                if not all(tokens):
                    raise ConfigError(f"{where}: --{key}: empty item in {','.join(tokens)!r}; write the items "
                                      f"separated by spaces (--{key} a b c) or by commas without gaps (a,b,c)")
            # Numbers become numbers; anything else stays the string typed (a class named `yes` stays `yes`).
            value = [_number_or_string(t) for t in tokens]
        return _coerce(key, value, default, where)
    if len(tokens) != 1:
        raise ConfigError(f"{where}: --{key} takes one value, got {len(tokens)}")
    token = tokens[0]
    if isinstance(default, str) or default is None:
        return token
    try:
        value = yaml.safe_load(token)
    except yaml.YAMLError:
        value = token
    return _coerce(key, value, default, where)


# Flags that users of the MindSpore model zoo have in their scripts, and the key each one means here.
ZOO_ALIASES = {"checkpoint_file_path": "checkpoint_path", "output_path": "output_dir"}


class _Parser(argparse.ArgumentParser):
    """argparse, but an error is one line (`prog: error: ...`, exit code 2), without the usage block: `-h` has it."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def _build_parser(values, helps, groups, readable, description):
    parser = _Parser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Lists take several values (--img_shape 320 320), one comma-separated token (--classes cat,dog) or one "
               "YAML string (--aspect_ratios '[[2], [2, 3]]').")
    parser.add_argument("--config_path", default=DEFAULT_CONFIG, help="YAML config file (default: default_config.yaml)")
    sections = {}
    for key, default in values.items():
        if key not in readable:
            continue
        group = groups.get(key, "general")
        if group not in sections:
            sections[group] = parser.add_argument_group(f"{group} keys")
        shown = yaml.safe_dump(default, default_flow_style=True).strip().removesuffix("...").strip()
        text = f"{helps.get(key, '')} [{_type_name(default)}, default: {shown}]"
        nargs = "+" if isinstance(default, list) else None
        sections[group].add_argument(f"--{key}", dest=key, nargs=nargs, default=argparse.SUPPRESS,
                                     metavar=key.upper(), help=text.replace("%", "%%"))
    return parser


def _flag_value(argv, flag):
    for i, arg in enumerate(argv):
        if arg == flag and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


def _apply_aliases(argv, readable):
    """The model zoo's flag names, for the keys this entry point reads (`--checkpoint_file_path X`)."""
    out = []
    for arg in argv:
        name, sep, rest = arg[2:].partition("=") if arg.startswith("--") else ("", "", "")
        if name in ZOO_ALIASES and ZOO_ALIASES[name] in readable:
            arg = f"--{ZOO_ALIASES[name]}{sep}{rest}"
        out.append(arg)
    return out


def _unknown_flag_message(name, prog, values, groups, readable, renamed):
    if name in renamed:
        return f"{prog} reads --{renamed[name]} now, not --{name}"
    if name in values:
        return (f"{prog} does not read --{name} (a key of the '{groups.get(name, 'general')}' group); "
                f"'{prog} -h' lists the keys it reads")
    if name in ZOO_ALIASES:
        return f"{prog} does not read --{name} (the model zoo's name for --{ZOO_ALIASES[name]})"
    hint = difflib.get_close_matches(name, sorted(readable), n=1)
    return f"unknown key '--{name}'" + (f" (did you mean '--{hint[0]}'?)" if hint else "")


def run_config_path(checkpoint):
    """The `config.yaml` that train.py saved beside a checkpoint, or None."""
    path = os.path.join(os.path.dirname(os.path.abspath(checkpoint)), "config.yaml")
    return path if os.path.isfile(path) else None


def parse_config(argv=None, description=None, required=(), run_config_from=None, groups=None, keys=(),
                 renamed=None):
    """Load the config named by `--config_path` (default_config.yaml) and apply command-line overrides.

    `groups` (and single `keys` of other groups) are what the calling entry point reads: `-h` lists those keys, and
    any other key on the command line is an error naming the entry point (None: every key). `renamed` maps a key's
    old name to its new one, for a one-line hint. A file may hold every key: a run's config.yaml loads everywhere.
    With `run_config_from` (a key such as `checkpoint_path`), a run's saved `config.yaml` beside that file is the
    default instead, so that a checkpoint is evaluated or resumed with the settings it was trained with.
    Errors (unknown key, bad value, missing required key) print one line and exit with code 2, as argparse does.
    The keys given on the command line are in `cfg.command_line`.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    renamed = dict(renamed or {})
    config_path = _flag_value(argv, "--config_path")
    try:
        values, helps, key_groups = load_yaml_chain(config_path or DEFAULT_CONFIG)
    except ConfigError as e:
        _exit_with_error(str(e))
    readable = set(values) if groups is None else {k for k in values if key_groups.get(k) in groups} | set(keys)
    argv = _apply_aliases(argv, readable)
    if config_path is None and run_config_from:
        source = _flag_value(argv, f"--{run_config_from}")
        config_path = run_config_path(source) if source else None
        if config_path:
            print(f"using the run's config {config_path} (--config_path overrides)", file=sys.stderr)
            try:
                values, helps, key_groups = load_yaml_chain(config_path)
                written, _ = _flatten_groups(_read_yaml_documents(config_path)[0], config_path, key_groups)
            except ConfigError as e:
                _exit_with_error(str(e))
            newer = sorted(set(values) - set(written))
            if newer:  # a run written by an earlier version of this code
                print(f"keys added since that run was written take their defaults: {', '.join(newer)}",
                      file=sys.stderr)
    config_path = config_path or DEFAULT_CONFIG
    parser = _build_parser(values, helps, key_groups, readable, description)
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        flag = next((u for u in unknown if u.startswith("--")), unknown[0])
        name = flag[2:].split("=", 1)[0] if flag.startswith("--") else flag
        parser.error(_unknown_flag_message(name, parser.prog, values, key_groups, readable, renamed))
    cfg = Config(values)
    try:
        for key, tokens in vars(args).items():
            if key == "config_path":
                continue
            cfg[key] = _parse_cli_value(key, tokens if isinstance(tokens, list) else [tokens], values[key])
        for key in required:
            if cfg.get(key) in (None, ""):
                raise ConfigError(f"--{key} is required")
        validate(cfg, readable)
    except ConfigError as e:
        parser.error(str(e))
    cfg["config_path"] = os.path.abspath(config_path)
    object.__setattr__(cfg, "command_line", frozenset(k for k in vars(args) if k != "config_path"))
    return cfg


def load_config(path=DEFAULT_CONFIG, **overrides):
    """Programmatic form: load a YAML chain and apply keyword overrides (type-checked). Raises ConfigError."""
    values, _, _ = load_yaml_chain(path)
    cfg = Config(values)
    for key, value in overrides.items():
        if key not in values:
            raise ConfigError(f"unknown key '{key}'")
        cfg[key] = _coerce(key, value, values[key], "override")
    validate(cfg)
    cfg["config_path"] = os.path.abspath(path)
    return cfg


def model_configs():
    """{name: path} of the model configs in configs/, by file name (`ssd_vgg16_300`) and by model name
    (`ssd_vgg16`, the first file that names it)."""
    found = {}
    paths = [os.path.join(CONFIG_DIR, f) for f in sorted(os.listdir(CONFIG_DIR)) if f.endswith(".yaml")]
    for path in paths:
        found[os.path.splitext(os.path.basename(path))[0]] = path
    for path in paths:
        found.setdefault(load_yaml_chain(path)[0]["model_name"], path)
    return found


def _exit_with_error(message):
    prog = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "config"
    print(f"{prog}: error: {message}", file=sys.stderr)
    sys.exit(2)
