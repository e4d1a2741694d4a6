import os
import re
import subprocess
import sys

import pytest
import yaml

from src.config import DEFAULT_CONFIG, ConfigError, load_config, load_yaml_chain, parse_config


def _write(path, data):
    path.write_text(yaml.safe_dump(data) if isinstance(data, dict) else data)
    return str(path)


def test_model_config_inherits_and_overrides(tmp_path):
    _write(tmp_path / "base.yaml", "lr: 0.1\nimg_shape: [300, 300]\nname: a\n---\nlr: learning rate\n")
    child = _write(tmp_path / "child.yaml", "__BASE__: base.yaml\nlr: 0.5\n")
    values, helps, _ = load_yaml_chain(child)
    assert {k: values[k] for k in ("lr", "img_shape", "name")} == {"lr": 0.5, "img_shape": [300, 300], "name": "a"}
    assert helps["lr"] == "learning rate"
    # a chain rooted outside this clone (an older run folder) takes this version's defaults for the keys it lacks
    defaults, _, _ = load_yaml_chain(DEFAULT_CONFIG)
    assert {k: v for k, v in values.items() if k not in ("lr", "img_shape", "name")} == \
        {k: v for k, v in defaults.items() if k not in ("lr", "img_shape")}


def test_model_config_with_unknown_key_names_file_and_key(tmp_path):
    _write(tmp_path / "base.yaml", "lr: 0.1\n")
    child = _write(tmp_path / "child.yaml", "__BASE__: base.yaml\nlrr: 0.5\n")
    with pytest.raises(ConfigError, match=r"child.yaml: unknown key 'lrr' \(did you mean 'lr'\?\)"):
        load_yaml_chain(child)


def test_model_config_with_wrong_type_is_rejected(tmp_path):
    _write(tmp_path / "base.yaml", "epochs: 10\n")
    child = _write(tmp_path / "child.yaml", "__BASE__: base.yaml\nepochs: ten\n")
    with pytest.raises(ConfigError, match="'epochs' expects an integer"):
        load_yaml_chain(child)


def test_invalid_yaml_names_file_and_line(tmp_path):
    bad = _write(tmp_path / "bad.yaml", "lr: 0.1\nsteps: [1, 2\n")
    with pytest.raises(ConfigError, match=r"bad.yaml:\d+: invalid YAML"):
        load_yaml_chain(bad)


def test_cli_overrides_are_typed():
    cfg = parse_config(["--lr", "0.05", "--img_shape", "320", "320", "--run_eval", "True", "--epoch_size", "3",
                        "--aspect_ratios", "[[2], [2, 3]]", "--steps", "[]", "--classes", "cat", "dog"])
    assert cfg.lr == 0.05 and isinstance(cfg.lr, float)
    assert cfg.img_shape == [320, 320]
    assert cfg.run_eval is True
    assert cfg.epoch_size == 3
    assert cfg.aspect_ratios == [[2], [2, 3]]
    assert cfg.steps == []
    assert cfg.classes == ["cat", "dog"]


def test_int_given_to_float_key_becomes_float():
    assert parse_config(["--lr", "1"]).lr == 1.0


def test_exponent_floats_choices_and_string_lists():
    cfg = parse_config(["--lr", "1e-3", "--device_target", "cpu", "--classes", "yes", "no", "cat"])
    assert cfg.lr == 0.001
    assert cfg.device_target == "CPU"
    assert cfg.classes == ["yes", "no", "cat"]


def test_every_key_has_help_text():
    values, helps, groups = load_yaml_chain(DEFAULT_CONFIG)
    assert set(values) - set(helps) == set()
    assert set(groups) == set(values)


def test_model_configs_load_and_name_a_registered_model(repo_root):
    from src.models.registry import MODELS
    import src.models.detector  # noqa: F401  (registers models)
    folder = os.path.join(repo_root, "configs")
    names = [f for f in os.listdir(folder) if f.endswith(".yaml")]
    assert names
    for name in names:
        cfg = load_config(os.path.join(folder, name))
        assert cfg.model_name in MODELS.names()


def _run_train(args):
    return subprocess.run([sys.executable, "train.py", *args], cwd=os.path.dirname(DEFAULT_CONFIG),
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("args, message", [
    (["--lrr", "0.1"], "unknown key '--lrr' (did you mean '--lr'?)"),
    (["--lr", "fast"], "key 'lr' expects a number, got 'fast'"),
    (["--img_shape", "300", "x"], "key 'img_shape' expects an integer, got 'x'"),
    (["--run_eval", "maybe"], "key 'run_eval' expects true or false"),
    (["--loss", "hinge"], "key 'loss' must be one of focal, softmax_hnm, got 'hinge'"),
    (["--log_interval", "0"], "key 'log_interval' must be positive, got 0"),
    (["--img_shape", "16", "16"], "key 'img_shape' must be [height, width], each at least 32"),
    (["--match_threshold", "0.4", "--ignore_threshold", "0.5"], "ignore_threshold (0.5) must not exceed"),
])
def test_bad_cli_is_one_line_and_exit_2(args, message):
    proc = _run_train(args)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.strip().splitlines() if "error:" in line]
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_help_lists_keys_with_help_text():
    proc = _run_train(["-h"])
    assert proc.returncode == 0
    assert "--match_threshold" in proc.stdout and "IoU at or above which an anchor is positive" in proc.stdout


def test_load_config_override_is_type_checked():
    with pytest.raises(ConfigError, match="'batch_size' expects an integer"):
        load_config(batch_size="eight")


def test_saved_run_config_loads_back_as_a_config_file(tmp_path):
    cfg = parse_config(["--lr", "0.123", "--img_shape", "200", "200"])
    path = tmp_path / "config.yaml"
    path.write_text(cfg.to_yaml())
    again = parse_config(["--config_path", str(path), "--epoch_size", "2"])
    assert again.lr == 0.123 and again.img_shape == [200, 200] and again.epoch_size == 2


def test_more_workers_than_cores_is_a_config_error():
    with pytest.raises(ConfigError, match="num_parallel_workers.*cores"):
        load_config(num_parallel_workers=(os.cpu_count() or 1) + 1)


def test_a_list_given_as_one_comma_separated_token_is_split():
    from src.config import parse_config
    cfg = parse_config(["--classes", "tshirt,trouser,pullover", "--img_shape", "320,320"])
    assert cfg.classes == ["tshirt", "trouser", "pullover"] and cfg.img_shape == [320, 320]
    assert parse_config(["--classes", "tshirt", "trouser"]).classes == ["tshirt", "trouser"]


def test_an_empty_item_in_a_comma_list_is_one_line(capsys):
    from src.config import parse_config
    with pytest.raises(SystemExit) as e:
        parse_config(["--classes", "cat,,dog"])
    assert e.value.code == 2
    assert "--classes: empty item" in capsys.readouterr().err


# ---- each entry point reads its own groups -------------------------------------------------------------------------
def _help_and_error(module, argv, capsys):
    """(-h text, the error line for argv) of an entry point's main(), run in this process."""
    import importlib
    main = importlib.import_module(module).main
    with pytest.raises(SystemExit) as e:
        main(["-h"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 1
    return text, errors[0]


@pytest.mark.parametrize("module, listed, absent, argv, message", [
    ("train", ["--lr", "--expand_prob", "--min_score", "--eval_batch_size", "--device_num"],
     ["--file_format", "--checkpoint_path", "--draw_score", "--gt_json", "--timed_steps"],
     ["--file_format", "ONNX"], "train.py does not read --file_format (a key of the 'export' group)"),
    ("eval", ["--checkpoint_path", "--coco_root", "--min_score", "--ema_weights", "--loss"],
     ["--lr", "--expand_prob", "--file_format", "--focal_alpha"],
     ["--checkpoint_path", "x.ckpt", "--lr", "0.1"], "eval.py does not read --lr (a key of the 'train' group)"),
    ("export", ["--file_format", "--export_batch_size", "--checkpoint_path", "--img_shape"],
     ["--lr", "--coco_root", "--batch_size", "--images"],
     ["--checkpoint_path", "x.ckpt", "--batch_size", "2"], "export.py reads --export_batch_size now, not --batch_size"),
    ("predict", ["--images", "--model_file", "--draw_score", "--min_score"],
     ["--lr", "--coco_root", "--file_format"],
     ["--images", "a.jpg", "--epoch_size", "3"], "predict.py does not read --epoch_size (a key of the 'train' group)"),
    ("postprocess", ["--result_path", "--gt_json", "--model_card", "--nms_threshold"],
     ["--lr", "--img_shape", "--anno_path", "--checkpoint_path"],
     ["--anno_path", "a.json"], "postprocess.py reads --gt_json now, not --anno_path"),
    ("benchmark", ["--timed_steps", "--lr", "--steps"], ["--file_format", "--checkpoint_path"],
     ["--images", "x"], "benchmark.py does not read --images (a key of the 'predict' group)"),
])
def test_help_lists_the_entry_points_keys_and_others_are_one_line(module, listed, absent, argv, message, capsys,
                                                                    monkeypatch):
    monkeypatch.setattr(sys, "argv", [f"{module}.py"])
    text, error = _help_and_error(module, argv, capsys)
    flags = set(re.findall(r"^\s+(--[a-z_0-9]+)", text, re.M))
    assert set(listed) <= flags, set(listed) - flags
    assert not set(absent) & flags, set(absent) & flags
    assert message in error, error


def test_model_zoo_flags_mean_what_they_mean_there():
    from src.config import parse_config
    cfg = parse_config(["--checkpoint_file_path", "a.ckpt", "--loss_scale=1"], groups=("checkpoint", "train"))
    assert cfg.checkpoint_path == "a.ckpt" and cfg.loss_scale == 1.0
    assert parse_config(["--output_path", "out/x"], groups=("train",)).output_dir == "out/x"


def test_the_keys_given_on_the_command_line_are_recorded():
    from src.config import parse_config
    cfg = parse_config(["--min_score", "0.3", "--lr=0.2"])
    assert cfg.command_line == {"min_score", "lr"}
    assert load_config().command_line == frozenset()


def test_a_model_file_may_set_keys_flat_or_under_their_group(tmp_path):
    child = _write(tmp_path / "m.yaml", f"__BASE__: {DEFAULT_CONFIG}\nlr: 0.2\ntrain:\n  epoch_size: 7\n")
    cfg = load_config(child)
    assert cfg.lr == 0.2 and cfg.epoch_size == 7
    bad = _write(tmp_path / "bad.yaml", f"__BASE__: {DEFAULT_CONFIG}\ntrain:\n  epoch_sise: 7\n")
    with pytest.raises(ConfigError, match="bad.yaml: unknown key 'epoch_sise'"):
        load_config(bad)


def test_the_readme_demo_script_passes_each_entry_point_only_its_own_valid_keys():
    # scripts/run_demo.sh is the README's first command and takes ten minutes, so the suite does not run it; a key
    # renamed or moved to another entry point would still break it, and that shows in its flags alone.
    import importlib
    import shlex
    with open(os.path.join(os.path.dirname(DEFAULT_CONFIG), "scripts", "run_demo.sh")) as f:
        text = f.read().replace("\\\n", " ")
    checked = set()
    for line in text.splitlines():
        words = shlex.split(line.split("#", 1)[0].replace('"$@"', "").replace("$", "X"))
        if words[:1] != ["python"] or not words[1].endswith(".py"):
            continue
        name = words[1][:-3]
        entry_point = importlib.import_module(name)
        cfg = parse_config(words[2:], groups=entry_point.GROUPS, keys=getattr(entry_point, "KEYS", ()))
        assert cfg.command_line, line
        checked.add(name)
    assert checked == {"train", "eval", "export", "predict"}
