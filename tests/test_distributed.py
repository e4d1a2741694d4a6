"""Data-parallel training on the CPU through the real launchers: msrun (2 workers, loopback) and mpirun.

One short msrun job trains SSD-MobileNetV2 at width 0.5 and 128 px on the 16-image demo set, 2 epochs of 4 steps per
rank, with `rank_dump_dir` so that each rank's samples and final weights can be checked from outside. A job costs
two graph compilations at once on the machine's cores, so the other default tests reuse its files and stop before
compiling; `-m slow` adds a resume of it and a training through mpirun.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

import mindspore as ms
import numpy as np
import pytest

from src.device import DeviceInfo
from src.training.builder import peak_lr

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = ["--img_shape", "128", "128", "--steps", "[]", "--width_mult", "0.5", "--batch_size", "2",
         "--log_interval", "1"]
LAUNCHERS = ("run_distribute_train_msrun.sh", "run_distribute_train_gpu.sh", "run_distribute_train.sh")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def own_processes(marker):
    """{pid: command line} of live processes whose command line holds `marker` (the test's temporary folder)."""
    found = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read()
            with open(f"/proc/{pid}/stat") as f:
                zombie = f.read().rsplit(")", 1)[1].split()[0] == "Z"
        except OSError:
            continue
        if marker.encode() in cmdline and not zombie and int(pid) != os.getpid():
            found[int(pid)] = cmdline.replace(b"\0", b" ").decode(errors="replace")[:200]
    return found


def launch(script, args, tmp, timeout=300, **env):
    """Run a launcher in its own session; on a timeout stop it (its trap stops the job) and any straggler."""
    env = dict(os.environ, LOG_DIR=str(tmp / "logs"), MASTER_PORT=str(free_port()), **env)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env["PATH"]  # msrun starts `python` from PATH
    for key in ("MS_ROLE", "RANK_TABLE_FILE", "OMPI_COMM_WORLD_SIZE"):
        env.pop(key, None)
    shutil.rmtree(tmp / "logs", ignore_errors=True)
    proc = subprocess.Popen(["bash", os.path.join("scripts", script), *args], cwd=REPO, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    start = time.perf_counter()
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
        for pid in own_processes(str(tmp)):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        pytest.fail(f"{script} ran over {timeout} s:\n{out[-3000:]}")
    return proc.returncode, out, time.perf_counter() - start


def log_text(tmp, name):
    text = (tmp / "logs" / name).read_text()
    return "\n".join(line for line in text.splitlines() if not line.startswith(("[WARNING]", "[INFO]")))


def trainable(path):
    return {k: v.asnumpy() for k, v in ms.load_checkpoint(str(path)).items() if "moving_" not in k}


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    """A finished 2-worker msrun job: (tmp folder, data args, console output)."""
    tmp = tmp_path_factory.mktemp("dist")
    data = ["--dataset", "demo", "--demo_root", str(tmp / "demo"), "--demo_num_train", "16", "--demo_num_val", "4",
            "--mindrecord_dir", str(tmp / "mr"), "--output_dir", str(tmp / "runs")]
    rc, out, _ = launch("run_distribute_train_msrun.sh",
                        ["2", "configs/ssd_mobilenet_v2_300.yaml", *data, *MODEL, "--epoch_size", "2", "--lr", "0.002",
                         "--run_name", "job", "--rank_dump_dir", str(tmp / "dump")], tmp)
    assert rc == 0, out[-4000:]
    assert not own_processes(str(tmp)), own_processes(str(tmp))
    return tmp, data, out


@pytest.mark.parametrize("script,args", [
    (LAUNCHERS[0], []), (LAUNCHERS[0], ["two"]), (LAUNCHERS[0], ["2", "missing.yaml"]),
    (LAUNCHERS[1], ["2", "1", "0.1"]), (LAUNCHERS[1], ["2", "1", "fast", "demo"]),
    (LAUNCHERS[1], ["2", "1", "0.1", "mnist"]), (LAUNCHERS[1], ["2", "1", "0.1", "demo", "", "missing.ckpt"]),
    (LAUNCHERS[2], ["2", "1", "0.1", "demo", "missing.json"]), (LAUNCHERS[2], ["2", "x", "0.1", "demo", "a.json"]),
])
def test_launchers_reject_bad_arguments_with_usage(script, args):
    proc = subprocess.run(["bash", os.path.join("scripts", script), *args], cwd=REPO, capture_output=True,
                          text=True, timeout=30)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.startswith("error: ") and "usage: bash scripts/" + script in proc.stderr


def test_msrun_node_settings_are_checked():
    proc = subprocess.run(["bash", "scripts/run_distribute_train_msrun.sh", "2"], cwd=REPO, capture_output=True,
                          text=True, timeout=30, env=dict(os.environ, NODE_NUM="2", NODE_RANK="2"))
    assert proc.returncode == 2 and "NODE_RANK (2) must be below NODE_NUM (2)" in proc.stderr


def test_run_distribute_without_a_launcher_is_one_clear_line():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MS_", "OMPI_", "PMI_", "RANK_"))}
    proc = subprocess.run([sys.executable, "train.py", "--run_distribute", "True"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("error: --run_distribute True needs a launcher")
    assert "Traceback" not in proc.stderr


def test_lr_is_scaled_linearly_to_the_global_batch():
    assert peak_lr(0.03, 8, DeviceInfo("CPU", 0, 2, distributed=True), base_batch_size=8) == pytest.approx(0.06)
    assert peak_lr(0.03, 8, DeviceInfo("CPU")) == 0.03  # one device: the lr as configured
    assert peak_lr(0.03, 8, DeviceInfo("CPU", 0, 4, distributed=True), scale_lr=False) == 0.03


def test_msrun_ranks_train_disjoint_shards_to_identical_weights(job):
    tmp, _, _ = job
    run = tmp / "runs" / "job"
    # Only rank 0 writes the run folder: config, summary log, checkpoints and the per-epoch results.
    assert sorted(os.listdir(run)) == ["config.yaml", "epoch_2.ckpt", "last.ckpt", "results.csv", "results.png",
                                       "train.log"]
    assert "[rank" not in (run / "train.log").read_text()
    # Every rank logs its own progress, and the lr scaling once: 0.002 x (2 x 2) / 8.
    worker0, worker1 = log_text(tmp, "worker_0.log"), log_text(tmp, "worker_1.log")
    assert "epoch 2/2 step 4/4 loss" in worker0 and "[rank 1] epoch 2/2 step 4/4 loss" in worker1
    assert "lr 0.002 scaled to 0.001 for global batch 4 (base_batch_size 8)" in worker0
    assert "checkpoints in" in worker0 and "checkpoints in" not in worker1
    # Disjoint halves of the 16 images in each epoch, a new order in the second.
    samples = [json.loads((tmp / "dump" / f"rank{r}_samples.json").read_text())["epochs"] for r in (0, 1)]
    for epoch in ("1", "2"):
        a, b = samples[0][epoch], samples[1][epoch]
        assert len(a) == len(b) == 8 and not set(a) & set(b) and set(a) | set(b) == set(range(1, 17))
    assert samples[0]["1"] != samples[0]["2"]
    # The all-reduce keeps the ranks in step: the same weights, and rank 0's are the saved ones.
    w0, w1 = trainable(tmp / "dump" / "rank0_final.ckpt"), trainable(tmp / "dump" / "rank1_final.ckpt")
    assert w0.keys() == w1.keys() and len(w0) > 100
    assert all(np.array_equal(w0[k], w1[k]) for k in w0)
    saved = ms.load_checkpoint(str(run / "last.ckpt"))
    assert all(np.array_equal(w0[k], saved[k].asnumpy()) for k in w0)


def test_a_failing_rank_stops_the_whole_job_with_its_error(job, tmp_path):
    _, data, _ = job
    # Rank 1 alone fails (its dump file is unreadable) while rank 0 builds its graph: msrun must stop rank 0, the
    # launcher the scheduler, and the error must be shown rather than a hang.
    (tmp_path / "dump").mkdir()
    (tmp_path / "dump" / "rank1_samples.json").write_text("not json")
    rc, out, _ = launch("run_distribute_train_msrun.sh",
                              ["2", "configs/ssd_mobilenet_v2_300.yaml", *data, *MODEL, "--run_name", "broken",
                               "--rank_dump_dir", str(tmp_path / "dump")], tmp_path, timeout=180)
    assert rc == 1, out[-3000:]
    assert "worker_1.log (last lines)" in out and "JSONDecodeError" in out   # a hang fails at launch's timeout
    assert not own_processes(str(tmp_path)), own_processes(str(tmp_path))


@pytest.mark.skipif(shutil.which("mpirun") is None, reason="OpenMPI's mpirun is not installed")
def test_mpirun_cpu_route_forms_the_job(job, tmp_path):
    # The mpirun wrapper's scheduler and workers form a 2-rank job that passes the data barrier and reads the
    # checkpoint on every rank; the run is complete, so it stops before compiling (slow test: a real training).
    tmp, _, _ = job
    run = tmp_path / "runs" / "copy"  # a copy: rank 0 rewrites the config.yaml of the run it resumes
    run.mkdir(parents=True)
    for name in ("config.yaml", "last.ckpt"):
        shutil.copy(tmp / "runs" / "job" / name, run / name)
    rc, out, _ = launch("run_distribute_train_gpu.sh", ["2", "2", "0.03", "demo", "--resume", str(run / "last.ckpt")],
                        tmp_path, timeout=180, DEVICE_TARGET="CPU")
    assert rc == 0, out[-3000:]
    for rank in (0, 1):
        text = log_text(tmp_path, f"worker_{rank}.log")
        assert "device CPU, 2 device(s)" in text and "nothing to do: the run is already at epoch 2 of 2" in text
    assert (tmp_path / "logs" / "scheduler.log").is_file()
    assert not own_processes(str(tmp_path)), own_processes(str(tmp_path))


@pytest.mark.slow
def test_msrun_resume_continues_every_rank_from_rank0_checkpoint(job):
    tmp, _, _ = job
    rc, out, _ = launch("run_distribute_train_msrun.sh",
                        ["2", "--resume", str(tmp / "runs" / "job" / "last.ckpt"), "--epoch_size", "3"], tmp)
    assert rc == 0, out[-4000:]
    for rank in (0, 1):
        text = log_text(tmp, f"worker_{rank}.log")
        assert re.search(r"resumed .*last.ckpt at epoch 2, step 8", text)
        assert "epoch 3/3 step 4/4" in text and "epoch 1/3" not in text
    assert "epoch_3.ckpt" in os.listdir(tmp / "runs" / "job")
    w0, w1 = trainable(tmp / "dump" / "rank0_final.ckpt"), trainable(tmp / "dump" / "rank1_final.ckpt")
    assert all(np.array_equal(w0[k], w1[k]) for k in w0)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("mpirun") is None, reason="OpenMPI's mpirun is not installed")
def test_mpirun_cpu_route_trains_to_identical_weights(job, tmp_path):
    _, data, _ = job
    rc, out, _ = launch("run_distribute_train_gpu.sh",
                        ["2", "1", "0.015", "demo", "configs/ssd_mobilenet_v2_300.yaml", *data, *MODEL,
                         "--run_name", "mpi", "--output_dir", str(tmp_path / "runs"),
                         "--rank_dump_dir", str(tmp_path / "dump")], tmp_path, timeout=300, DEVICE_TARGET="CPU")
    assert rc == 0, out[-4000:]
    assert "lr 0.015 used as given for global batch 4 (scale_lr false)" in out
    w0, w1 = trainable(tmp_path / "dump" / "rank0_final.ckpt"), trainable(tmp_path / "dump" / "rank1_final.ckpt")
    assert all(np.array_equal(w0[k], w1[k]) for k in w0)
    assert sorted(os.listdir(tmp_path / "runs" / "mpi")) == ["config.yaml", "epoch_1.ckpt", "last.ckpt",
                                                            "results.csv", "results.png", "train.log"]


def test_a_finished_rank_runs_the_exit_handlers_and_keeps_its_exit_code(tmp_path):
    # exit_process skips the interpreter's teardown (where MindSpore's CPU workers can segfault) but must still run
    # the exit handlers, in which MindSpore unregisters the node from the scheduler, and flush what was printed.
    marker = tmp_path / "handler_ran"
    script = (
        "import atexit\n"
        "from src.device import DeviceInfo\n"
        f"atexit.register(lambda: open({str(marker)!r}, 'w').write('yes'))\n"
        "print('written before the exit')\n"
        "DeviceInfo('CPU').exit_process(3)\n"
        "print('never reached')\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 3, proc.stderr[-2000:]
    assert proc.stdout.splitlines() == ["written before the exit"]
    assert marker.read_text() == "yes"
