"""The torch.distributed module paths a ported script imports that need no running ranks:
``elastic.multiprocessing.errors.record`` (compared with PyTorch's, error file and all),
``elastic.utils.data``, ``nn.parallel.distributed``, and the imports of
``torch.distributed.nn`` / ``optim`` / ``device_mesh`` through ``manygrad run``."""

import json

import pytest
import torch
import torch.distributed.elastic.multiprocessing.errors as theirs_errors
import torch.distributed.elastic.utils.data as theirs_data

import manygrad as mg
from manygrad import compat
from manygrad.distributed.elastic.multiprocessing import errors
from manygrad.distributed.elastic.utils import data


def _fail(tag):
    raise ValueError(f"boom {tag}")


@pytest.mark.filterwarnings("ignore:Unable to enable fault handler")
def test_record_writes_pytorchs_error_file(tmp_path, monkeypatch):
    files = {}
    for name, rec in (("ours", errors.record), ("theirs", theirs_errors.record)):
        path = tmp_path / f"{name}.json"
        monkeypatch.setenv("TORCHELASTIC_ERROR_FILE", str(path))
        main = rec(_fail)
        assert main.__name__ == "_fail"
        with pytest.raises(ValueError, match="boom 7"):
            main(7)
        files[name] = json.loads(path.read_text())
    ours, theirs = files["ours"], files["theirs"]
    assert ours.keys() == theirs.keys() and ours["message"].keys() == theirs["message"].keys()
    assert ours["message"]["message"] == theirs["message"]["message"] == "ValueError: boom 7"
    info, their_info = ours["message"]["extraInfo"], theirs["message"]["extraInfo"]
    assert info.keys() == their_info.keys()
    assert "_fail" in info["py_callstack"] and info["timestamp"].isdigit()


@pytest.mark.filterwarnings("ignore:Unable to enable fault handler")
def test_record_passes_results_and_exit_codes(tmp_path, monkeypatch):
    path = tmp_path / "err.json"
    monkeypatch.setenv("TORCHELASTIC_ERROR_FILE", str(path))
    for rec in (errors.record, theirs_errors.record):
        assert rec(lambda a, b=1: a + b)(2, b=3) == 5
        assert rec(lambda: exec("raise SystemExit(0)"))() is None
        with pytest.raises(SystemExit):
            rec(lambda: exec("raise SystemExit(3)"))()
    assert not path.exists()  # neither a result nor an exit writes the file
    monkeypatch.delenv("TORCHELASTIC_ERROR_FILE")
    with pytest.raises(KeyError):  # no file named: nothing written, still raised
        errors.record(lambda: {}["x"])()
    # a failed child's error file is copied to this process's, with its exit code
    child = tmp_path / "child.json"
    child.write_text(json.dumps({"message": {"message": "RuntimeError: x", "extraInfo": {
        "py_callstack": "...", "timestamp": "12"}}}))  # fmt: skip
    monkeypatch.setenv("TORCHELASTIC_ERROR_FILE", str(path))
    failure = errors.ProcessFailure(local_rank=1, pid=99, exitcode=5, error_file=str(child))
    assert failure.message == "RuntimeError: x" and failure.timestamp == 12
    err = errors.ChildFailedError("train.py", {1: failure})
    assert err.get_first_failure() == (1, failure)

    def launcher():
        raise err

    with pytest.raises(errors.ChildFailedError):
        errors.record(launcher)()
    assert json.loads(path.read_text())["message"]["errorCode"] == 5


def test_elastic_data_matches_pytorch():
    gen = lambda epoch: iter([epoch, 10 + epoch])  # noqa: E731
    for start in (0, 1, 3):
        ours = list(data.CyclingIterator(3, gen, start_epoch=start))
        assert ours == list(theirs_data.CyclingIterator(3, gen, start_epoch=start))
    ds = list(range(11))
    for reps, rank, start, epoch in ((2, 1, 3, 4), (3, 0, 0, 1), (3, 2, 6, 0)):
        ours = data.ElasticDistributedSampler(ds, num_replicas=reps, rank=rank, start_index=start)
        theirs = theirs_data.ElasticDistributedSampler(ds, num_replicas=reps, rank=rank,
                                                       start_index=start)  # fmt: skip
        ours.set_epoch(epoch)
        theirs.set_epoch(epoch)
        assert list(ours) == list(theirs) and len(ours) == len(theirs)
    with pytest.raises(ValueError, match="less than dataset size"):
        data.ElasticDistributedSampler(ds, num_replicas=1, rank=0, start_index=11)


def test_pytorch_imports_resolve_under_manygrad_run(tmp_path):
    script = tmp_path / "imports.py"
    script.write_text(
        "import torch\n"
        "import torch.distributed.nn\n"
        "from torch.distributed.nn.functional import all_gather\n"
        "from torch.distributed.optim import ZeroRedundancyOptimizer\n"
        "from torch.distributed.device_mesh import DeviceMesh, init_device_mesh\n"
        "from torch.distributed.elastic.multiprocessing.errors import record\n"
        "from torch.distributed.elastic.utils.data import ElasticDistributedSampler\n"
        "from torch.nn.parallel.distributed import DistributedDataParallel\n"
        "result = (torch.distributed.nn.all_gather, all_gather, ZeroRedundancyOptimizer,\n"
        "          DeviceMesh, init_device_mesh, torch.distributed.init_device_mesh, record,\n"
        "          ElasticDistributedSampler, DistributedDataParallel)\n"
    )
    got = compat.run_script(str(script), [])["result"]
    import manygrad.distributed as dist
    import manygrad.distributed.nn as dist_nn
    from manygrad.distributed.optim import ZeroRedundancyOptimizer

    want = (dist_nn.all_gather, dist_nn.functional.all_gather, ZeroRedundancyOptimizer,
            dist.DeviceMesh, dist.init_device_mesh, dist.init_device_mesh, errors.record,
            data.ElasticDistributedSampler, mg.nn.parallel.DistributedDataParallel)  # fmt: skip
    assert got == want
    assert torch.distributed.device_mesh.DeviceMesh is torch.distributed.DeviceMesh
