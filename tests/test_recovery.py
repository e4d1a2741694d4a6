"""A killed run resumes where its last checkpoint left it; a run whose loss goes non-finite stops and keeps the last
good checkpoint. Both through the real train.py, at tiny size."""
import hashlib
import os
import re
import signal
import subprocess
import sys
import threading

import pytest

from src.training.lr_schedule import warmup_cosine_lr

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--img_shape", "128", "128", "--steps", "[]", "--width_mult", "0.5", "--batch_size", "2", "--log_interval",
        "1", "--dataset", "demo", "--demo_num_train", "16", "--demo_num_val", "4", "--lr", "0.01",
        "--warmup_epochs", "1", "--augment", "False"]


@pytest.fixture(scope="module")
def args(tmp_path_factory):
    d = tmp_path_factory.mktemp("recovery")
    return d, TINY + ["--demo_root", str(d / "demo"), "--mindrecord_dir", str(d / "mindrecord"),
                      "--output_dir", str(d / "runs"), "--run_name", "r"]


def run(argv, timeout=600):
    proc = subprocess.run([sys.executable, "train.py", *argv], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)
    return proc.returncode, proc.stdout + proc.stderr


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_kill_9_mid_epoch_then_resume_continues_at_the_same_epoch_step_and_lr(args):
    d, argv = args
    run_dir = d / "runs" / "r"
    proc = subprocess.Popen([sys.executable, "train.py", *argv, "--epoch_size", "3"], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    seen = []
    # A hard deadline, also for a run that hangs without printing: the kill ends the output, and the loop with it.
    watchdog = threading.Timer(600, os.killpg, (proc.pid, signal.SIGKILL))
    watchdog.start()
    try:
        for line in proc.stdout:   # epoch 1 ended (last.ckpt written) and epoch 2 is under way
            seen.append(line)
            if "epoch 2/3 step 3/8" in line:
                break
    finally:
        watchdog.cancel()
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
    assert any("epoch 2/3 step 3/8" in line for line in seen), "".join(seen)[-3000:]
    assert proc.returncode == -signal.SIGKILL
    assert not [f for f in os.listdir(run_dir) if ".tmp" in f]

    code, out = run(argv + ["--epoch_size", "3", "--resume", str(run_dir / "last.ckpt")])
    assert code == 0, out[-3000:]
    assert re.search(r"resumed .*last.ckpt at epoch 1, step 8", out), out[-3000:]
    assert "epoch 1/3" not in out and "epoch 2/3 step 1/8" in out
    first_lr = float(re.search(r"epoch 2/3 step 1/8 loss \S+ lr ([0-9.]+)", out).group(1))
    assert first_lr == pytest.approx(warmup_cosine_lr(0.01, 8, 3, 1, end_ratio=0.01)[8], abs=1e-5)


def test_a_non_finite_run_stops_and_keeps_the_good_checkpoint(args):
    d, argv = args
    last = d / "runs" / "r" / "last.ckpt"
    assert last.is_file()   # the finished run of the test above
    before = digest(last)
    code, out = run(argv + ["--epoch_size", "5", "--resume", str(last), "--lr", "1e30", "--warmup_epochs", "0",
                            "--loss_scale_type", "fixed", "--max_nan_steps", "3"])
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1 and "Traceback" not in out, out[-3000:]
    assert "non-finite" in errors[0] or "not finite" in errors[0], errors
    assert digest(last) == before
