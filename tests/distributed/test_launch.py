"""``manygrad launch`` end to end, the mpiexec command line, and per-rank log files."""

import subprocess
import sys

import pytest
from mpirun import WORKER, env, mpiexec_or_skip, run_worker

from manygrad.cli import launch as cli_launch
from manygrad.distributed import DistributedError, launch


def test_cli_launch_runs_two_ranks(capfd, monkeypatch):
    mpiexec_or_skip()
    for k, v in env().items():
        monkeypatch.setenv(k, v)
    rc = cli_launch.main(["-n", "2", "--", "python", str(WORKER), "hello"])
    out = capfd.readouterr().out
    assert rc == 0, out
    assert "OK hello rank 0 of 2" in out and "OK hello rank 1 of 2" in out


def test_launch_returns_nonzero_when_a_rank_fails(monkeypatch):
    mpiexec_or_skip()
    for k, v in env().items():
        monkeypatch.setenv(k, v)
    rc = launch.run_command(2, ["python", "-c", "import sys; sys.exit(3)"], timeout=60)
    assert rc != 0


def test_build_command_resolves_manygrad_and_hostfile(tmp_path):
    hosts = tmp_path / "hosts"
    hosts.write_text("node1:4\nnode2:4\n")
    cmd = launch.build_command(8, ["manygrad", "train", "--epochs", "1"], str(hosts),
                               mpiexec="/opt/mpi/bin/mpiexec")  # fmt: skip
    assert cmd[:3] == ["/opt/mpi/bin/mpiexec", "-n", "8"]
    assert str(hosts) in cmd
    i = cmd.index(sys.executable)
    assert cmd[i + 1] == "-c" and "manygrad.cli.main" in cmd[i + 2]
    assert cmd[-3:] == ["train", "--epochs", "1"]
    with pytest.raises(FileNotFoundError, match="hostfile"):
        launch.build_command(2, ["x"], str(tmp_path / "missing"), mpiexec="mpiexec")
    with pytest.raises(ValueError, match="-n must be at least 1"):
        launch.build_command(0, ["x"], mpiexec="mpiexec")


@pytest.mark.parametrize("flavour", ["openmpi", "hydra"])
@pytest.mark.parametrize("root", [True, False])
def test_open_mpi_as_root_is_allowed(monkeypatch, flavour, root):
    # GPU containers run as root, which Open MPI refuses unless told; MPICH does not care
    monkeypatch.setattr(launch, "mpiexec_flavour", lambda m: flavour)
    monkeypatch.setattr(launch, "_is_root", lambda: root)
    cmd = launch.build_command(2, ["python", "t.py"], mpiexec="mpiexec")
    assert ("--allow-run-as-root" in cmd) == (root and flavour == "openmpi")
    assert cmd.index(sys.executable) > cmd.index("2")


def test_nproc_beyond_gpus_suggests_cpu_or_fewer(monkeypatch):
    monkeypatch.setattr(launch.backend, "cuda_device_count", lambda: 2)
    with pytest.raises(DistributedError, match=r"--nproc 4 needs 4 GPUs.*2 are available.*"
                       r"--nproc 2 or fewer.*--device cpu"):  # fmt: skip
        launch.check_nproc(4, "cuda")
    launch.check_nproc(2, "cuda")
    launch.check_nproc(16, "cpu")


def test_only_rank_zero_prints_others_log_to_files(tmp_path):
    res = run_worker("logging", RUN_DIR=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "OK logging rank 0" in res.stdout
    assert "rank 1" not in res.stdout
    assert "OK logging rank 1" in (tmp_path / "rank1.log").read_text()
    assert not (tmp_path / "rank0.log").exists()


def test_manygrad_launch_manygrad_command_end_to_end():
    # `manygrad launch -n 2 -- manygrad --version`: ranks run manygrad with this interpreter
    mpiexec_or_skip()
    cmd = [sys.executable, "-m", "manygrad.cli.main", "launch", "-n", "2", "--", "manygrad",
           "--version"]  # fmt: skip
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env())
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.count("manygrad ") == 2, res.stdout


@pytest.mark.parametrize("env_vars, size", [
    ({}, 1),
    ({"PMI_SIZE": "4"}, 4),
    ({"OMPI_COMM_WORLD_SIZE": "3"}, 3),
    ({"SLURM_STEP_ID": "0", "SLURM_NTASKS": "8"}, 8),
    ({"SLURM_NTASKS": "8"}, 1),  # an allocation, but not inside srun
])  # fmt: skip
def test_launched_world_size_from_launcher_environment(monkeypatch, env_vars, size):
    for var in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE", "SLURM_STEP_ID",
                "SLURM_NTASKS"):  # fmt: skip
        monkeypatch.delenv(var, raising=False)
    for k, v in env_vars.items():
        monkeypatch.setenv(k, v)
    assert launch.launched_world_size() == size


def test_find_mpiexec_order_and_install_hint(monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setattr(sys, "prefix", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("MANYGRAD_MPIEXEC", raising=False)
    with pytest.raises(FileNotFoundError, match=r"pip install 'manygrad\[mpi\]'"):
        launch.find_mpiexec()
    fake = tmp_path / "bin" / "mpiexec"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    assert launch.find_mpiexec() == str(fake)  # the one installed with this Python
    monkeypatch.setenv("MANYGRAD_MPIEXEC", "/nonexistent/mpiexec")
    with pytest.raises(FileNotFoundError, match="MANYGRAD_MPIEXEC"):
        launch.find_mpiexec()


def test_launch_log_dir_keeps_rank_zero_on_the_terminal(capfd, monkeypatch, tmp_path):
    mpiexec_or_skip()
    for k, v in env().items():
        monkeypatch.setenv(k, v)
    args = ["-n", "2", "--log-dir", str(tmp_path), "--", "python", str(WORKER), "hello"]
    assert cli_launch.main(args) == 0
    out = capfd.readouterr().out
    assert "OK hello rank 0 of 2" in out and "rank 1" not in out, out
    assert "OK hello rank 1 of 2" in (tmp_path / "rank1.log").read_text()
