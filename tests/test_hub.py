"""manygrad.hub (torch.hub): the cache folder, atomic downloads, checkpoints from URLs and
hubconf repositories, local and GitHub-style, served by a local HTTP server (no internet)."""

import functools
import hashlib
import http.server
import io
import json
import os
import socket
import sys
import threading
import types
import zipfile
from urllib.error import HTTPError, URLError

import numpy as np
import pytest
import torch
import torch.hub

import manygrad as mg
from manygrad import _hub_download, hub
from manygrad.compat import importer

REAL_TORCH = sys.modules["torch"]

HUBCONF = '''"""A tiny test repository."""
dependencies = ["torch", "numpy"]

import torch
import torch.nn as nn
from torch.hub import load_state_dict_from_url as _load_url


def mlp(pretrained=False, url=None, hidden=4):
    """A small MLP: 3 -> hidden -> 2."""
    model = nn.Sequential(nn.Linear(3, hidden), nn.ReLU(), nn.Linear(hidden, 2))
    if pretrained:
        model.load_state_dict(_load_url(url, progress=False))
    return model


def which_tensor():
    return torch.Tensor


def _private():
    pass


not_callable = 3
'''


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves the folder, except paths in ``server.routes`` (path with query -> callable)."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        route = self.server.routes.get(self.path)
        if route is None:
            return super().do_GET()
        route(self)


def _send(body: bytes, status=200):
    def route(h):
        h.send_response(status)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    return route


def _drop_midway(h):
    """Announces 100 kB, sends 1 kB, then closes the connection."""
    h.send_response(200)
    h.send_header("Content-Length", "100000")
    h.end_headers()
    h.wfile.write(b"x" * 1000)
    h.wfile.flush()
    h.close_connection = True


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    srv = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Handler, directory=str(root))
    )
    srv.routes = {}
    thread = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield types.SimpleNamespace(
        root=root, url=f"http://127.0.0.1:{srv.server_port}", routes=srv.routes
    )
    srv.shutdown()
    srv.server_close()


@pytest.fixture(autouse=True)
def hub_dir(tmp_path, monkeypatch):
    d = tmp_path / "hub"
    monkeypatch.setattr(hub, "_hub_dir", str(d))
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "torch_hub"))
    return d


def _closed_port_url(path="/x.pth"):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}{path}"


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _leftovers(folder):
    return [p.name for p in folder.iterdir()] if folder.exists() else []


# ---------------------------------------------------------------- cache folder


@pytest.mark.parametrize(
    "env",
    [{}, {"XDG_CACHE_HOME": "/x/cache"}, {"TORCH_HOME": "~/th", "XDG_CACHE_HOME": "/x/cache"}],
)
def test_get_dir_follows_pytorchs_environment(env, monkeypatch):
    monkeypatch.setattr(hub, "_hub_dir", None)
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    for k in ("TORCH_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(k, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert hub.get_dir() == torch.hub.get_dir()
    hub.set_dir("~/elsewhere")
    torch.hub.set_dir("~/elsewhere")
    assert hub.get_dir() == torch.hub.get_dir() == os.path.expanduser("~/elsewhere")


def test_torch_hub_maps_to_manygrad_hub():
    importer.install()
    try:
        import torch.hub as th

        assert th.load_state_dict_from_url is mg.hub.load_state_dict_from_url
        assert th.get_dir is hub.get_dir
    finally:
        importer.uninstall()
    assert sys.modules["torch"] is REAL_TORCH


# ---------------------------------------------------------------- downloads


def test_download_file_url_with_hash_and_progress(tmp_path, capsys):
    src = tmp_path / "blob.bin"
    src.write_bytes(os.urandom(300_000))
    dst = tmp_path / "out" / "blob.bin"
    dst.parent.mkdir()
    hub.download_url_to_file(src.as_uri(), dst, hash_prefix=_sha(src)[:10])
    assert dst.read_bytes() == src.read_bytes()
    assert capsys.readouterr().err  # a progress bar
    hub.download_url_to_file(src.as_uri(), str(dst), _sha(src), progress=False)
    assert capsys.readouterr().err == "" and _leftovers(dst.parent) == ["blob.bin"]


def test_plain_progress_line_without_tqdm(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(_hub_download, "_tqdm", lambda: None)
    src = tmp_path / "blob.bin"
    src.write_bytes(b"1" * 2**20)
    hub.download_url_to_file(src.as_uri(), tmp_path / "copy.bin")
    err = capsys.readouterr().err
    assert "copy.bin: 1.0 MiB of 1.0 MiB (100.0%)" in err and err.endswith("\n")


def test_bad_hash_deletes_the_download_as_pytorch(tmp_path):
    src = tmp_path / "blob.bin"
    src.write_bytes(b"payload")
    out = tmp_path / "out"
    out.mkdir()
    bad = "0" if _sha(src)[0] != "0" else "1"
    with pytest.raises(RuntimeError, match=f'invalid hash value \\(expected "{bad}"') as e:
        hub.download_url_to_file(src.as_uri(), out / "a.bin", hash_prefix=bad, progress=False)
    assert isinstance(e.value, hub.HashMismatchError) and src.as_uri() in str(e.value)
    with pytest.raises(RuntimeError, match="invalid hash value"):
        torch.hub.download_url_to_file(src.as_uri(), out / "b.bin", bad, progress=False)
    assert _leftovers(out) == []


def test_dropped_connection_leaves_no_file(server, tmp_path):
    server.routes["/big.pth"] = _drop_midway
    out = tmp_path / "cache"
    out.mkdir()
    (out / "big.pth").write_bytes(b"older copy")
    url = server.url + "/big.pth"
    with pytest.raises(URLError, match="1000 of 100000 bytes") as e:
        hub.download_url_to_file(url, out / "big.pth", progress=False)
    msg = str(e.value)
    assert isinstance(e.value, hub.DownloadError) and url in msg
    assert f"place it at {out / 'big.pth'}" in msg
    assert _leftovers(out) == ["big.pth"] and (out / "big.pth").read_bytes() == b"older copy"
    with pytest.raises(URLError):
        hub.download_url_to_file(url, out / "new.pth", progress=False)
    assert _leftovers(out) == ["big.pth"]


def test_interrupt_leaves_no_file(tmp_path, monkeypatch):
    class Interrupting:
        def update(self, n):
            raise KeyboardInterrupt

        def close(self):
            pass

    monkeypatch.setattr(_hub_download, "_progress_bar", lambda *a: Interrupting())
    src = tmp_path / "blob.bin"
    src.write_bytes(b"z" * 1000)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(KeyboardInterrupt):
        hub.download_url_to_file(src.as_uri(), out / "blob.bin")
    assert _leftovers(out) == []


def test_network_failures_name_the_url_and_the_cache_path(server, tmp_path):
    url = _closed_port_url()
    with pytest.raises(URLError) as e:
        hub.download_url_to_file(url, tmp_path / "x.pth", progress=False)
    assert url in str(e.value) and str(tmp_path / "x.pth") in str(e.value)
    with pytest.raises(HTTPError) as e:
        hub.download_url_to_file(server.url + "/missing.pth", tmp_path / "y.pth")
    assert e.value.code == 404 and "missing.pth" in str(e.value)
    with pytest.raises(URLError):
        hub.download_url_to_file((tmp_path / "nope.bin").as_uri(), tmp_path / "z.pth")
    assert _leftovers(tmp_path) == ["www"]


# ---------------------------------------------------------------- load_state_dict_from_url


def _torch_checkpoint(folder, stem="weights"):
    sd = {
        "w": torch.randn(3, 4),
        "b": torch.arange(5),
        "h": torch.randn(2, 3, dtype=torch.float16).t(),
    }
    tmp = folder / "tmp.pth"
    torch.save(sd, tmp)
    path = folder / f"{stem}-{_sha(tmp)[:8]}.pth"
    tmp.rename(path)
    return path


def _assert_same(mg_sd, torch_sd):
    assert list(mg_sd) == list(torch_sd)
    for k, t in torch_sd.items():
        assert isinstance(mg_sd[k], mg.Tensor) and tuple(mg_sd[k].shape) == tuple(t.shape)
        assert str(mg_sd[k].dtype).split(".")[-1] == str(t.dtype).split(".")[-1]
        np.testing.assert_array_equal(mg_sd[k].numpy(), t.numpy())


def test_torch_checkpoint_from_url_matches_torch_load(server, hub_dir, capsys):
    path = _torch_checkpoint(server.root)
    url = f"{server.url}/{path.name}"
    sd = hub.load_state_dict_from_url(url, check_hash=True, progress=False)
    _assert_same(sd, torch.load(path, weights_only=True))
    cached = hub_dir / "checkpoints" / path.name
    assert cached.read_bytes() == path.read_bytes()
    assert f'Downloading: "{url}" to {cached}' in capsys.readouterr().out
    path.unlink()  # the cached copy serves from now on
    again = hub.load_state_dict_from_url(url, map_location="cpu")
    _assert_same(again, torch.load(cached, weights_only=True))
    assert "Downloading" not in capsys.readouterr().out


def test_model_dir_file_name_and_safetensors(tmp_path):
    sd = {"a": mg.randn(2, 3), "b": mg.arange(4)}
    src = tmp_path / "weights.safetensors"
    mg.save(sd, src)
    out = tmp_path / "models"
    got = hub.load_state_dict_from_url(src.as_uri(), out, progress=False, file_name="mine.st")
    assert os.listdir(out) == ["mine.st"]
    for k in sd:
        np.testing.assert_array_equal(got[k].numpy(), sd[k].numpy())
    with pytest.warns(UserWarning, match="holds no '-<sha256 prefix>.' part"):
        hub.load_state_dict_from_url(src.as_uri(), tmp_path / "m2", check_hash=True)


def test_hash_mismatch_from_url_leaves_no_file_as_pytorch(server, tmp_path):
    path = _torch_checkpoint(server.root)
    wrong = server.root / "weights-deadbeef.pth"
    path.rename(wrong)
    url = f"{server.url}/{wrong.name}"
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    with pytest.raises(RuntimeError, match='expected "deadbeef"'):
        hub.load_state_dict_from_url(url, ours, check_hash=True, progress=False)
    with pytest.raises(RuntimeError, match='expected "deadbeef"'):
        torch.hub.load_state_dict_from_url(url, theirs, check_hash=True, progress=False)
    assert _leftovers(ours) == _leftovers(theirs) == []


def test_legacy_single_file_zip(server, tmp_path):
    path = _torch_checkpoint(server.root)
    with zipfile.ZipFile(server.root / "old.zip", "w") as z:
        z.write(path, path.name)
    url = server.url + "/old.zip"
    with pytest.warns(FutureWarning):
        sd = hub.load_state_dict_from_url(url, tmp_path / "ours", progress=False)
    with pytest.warns(FutureWarning):
        ref = torch.hub.load_state_dict_from_url(url, tmp_path / "theirs", weights_only=True)
    _assert_same(sd, ref)
    assert sorted(os.listdir(tmp_path / "ours")) == sorted(os.listdir(tmp_path / "theirs"))


# ---------------------------------------------------------------- local hubconf


def _repo(folder, hubconf=HUBCONF):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "hubconf.py").write_text(hubconf)
    return folder


def test_local_repo_builds_a_manygrad_model_with_weights_from_a_url(tmp_path):
    repo = _repo(tmp_path / "repo")
    torch.manual_seed(0)
    ref = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.ReLU(), torch.nn.Linear(5, 2))
    weights = tmp_path / "mlp.pth"
    torch.save(ref.state_dict(), weights)
    model = hub.load(str(repo), "mlp", source="local", pretrained=True, url=weights.as_uri(),
                     hidden=5)  # fmt: skip
    assert isinstance(model, mg.nn.Module)
    x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    want = ref(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(model(mg.tensor(x)).detach().numpy(), want, rtol=1e-5, atol=1e-6)
    assert hub.load(repo, "which_tensor", source="local") is mg.Tensor
    assert sys.modules["torch"] is REAL_TORCH and importer._FINDER not in sys.meta_path
    assert hub.list(repo, source="local") == ["mlp", "which_tensor"]
    assert hub.help(repo, "mlp", source="local") == "A small MLP: 3 -> hidden -> 2."


def test_local_repo_under_an_installed_hook_keeps_it(tmp_path):
    repo = _repo(tmp_path / "repo")
    importer.install()
    try:
        assert hub.load(repo, "which_tensor", source="Local") is mg.Tensor
        assert importer._FINDER in sys.meta_path
    finally:
        importer.uninstall()


def test_local_repo_errors_as_pytorch(tmp_path):
    repo = str(_repo(tmp_path / "repo"))
    for load in (hub.load, torch.hub.load):
        with pytest.raises(RuntimeError, match="Cannot find callable nope in hubconf"):
            load(repo, "nope", source="local")
        with pytest.raises(RuntimeError, match="Cannot find callable not_callable"):
            load(repo, "not_callable", source="local")
        with pytest.raises(ValueError, match="model should be a string"):
            load(repo, 3, source="local")
        with pytest.raises(ValueError, match='Unknown source: "svn"'):
            load(repo, "mlp", source="svn")
    with pytest.raises(RuntimeError, match="its entrypoints are: mlp, which_tensor$"):
        hub.load(repo, "nope", source="local")
    deps = str(_repo(tmp_path / "deps", 'dependencies = ["numpy", "no_such_pkg_xyz"]\n'))
    for load in (hub.load, torch.hub.load):
        with pytest.raises(RuntimeError, match="Missing dependencies: no_such_pkg_xyz"):
            load(deps, "f", source="local")
    with pytest.raises(FileNotFoundError, match="no hubconf.py"):
        hub.load(str(tmp_path), "mlp", source="local")


# ---------------------------------------------------------------- GitHub-style repositories


def _zipball(server, ref="main", hubconf=HUBCONF, top="owner-repo-0123abc", extra=()):
    folder = server.root / "owner" / "repo" / "zipball"
    folder.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(top + "/", "")
        z.writestr(f"{top}/hubconf.py", hubconf)
        for name in extra:
            z.writestr(name, "print('escaped')\n")
    (folder / ref.replace("/", "_")).write_bytes(buf.getvalue())


@pytest.fixture
def github(server, monkeypatch):
    monkeypatch.setattr(hub, "_GITHUB", server.url)
    monkeypatch.setattr(hub, "_GITHUB_API", server.url)
    return server


def test_github_zipball_is_cached_as_pytorch_names_it(github, hub_dir, tmp_path, monkeypatch):
    _zipball(github)
    ours = hub.list("owner/repo:main", trust_repo=True, skip_validation=True)
    link = lambda o, r, ref: f"{github.url}/{o}/{r}/zipball/{ref}"  # noqa: E731
    monkeypatch.setattr(torch.hub, "_git_archive_link", link)
    theirs = torch.hub.list("owner/repo:main", trust_repo=True, skip_validation=True)
    assert ours == theirs == ["mlp", "which_tensor"]
    assert sorted(os.listdir(hub_dir)) == sorted(os.listdir(tmp_path / "torch_hub"))
    assert sorted(os.listdir(hub_dir)) == ["owner_repo_main", "trusted_list"]
    assert (hub_dir / "trusted_list").read_text() == "owner_repo\n"
    assert hub.load("owner/repo:main", "which_tensor", skip_validation=True) is mg.Tensor


def test_github_cache_reload_and_default_ref(github, hub_dir, capsys):
    (github.root / "owner" / "repo" / "tree" / "main").mkdir(parents=True)
    _zipball(github)
    assert hub.list("owner/repo", trust_repo=True, skip_validation=True) == ["mlp", "which_tensor"]
    assert "Using cache" not in capsys.readouterr().err
    _zipball(github, hubconf="def newer():\n    return 1\n")
    assert hub.list("owner/repo", skip_validation=True) == ["mlp", "which_tensor"]
    assert f"Using cache found in {hub_dir / 'owner_repo_main'}" in capsys.readouterr().err
    hub.list("owner/repo", skip_validation=True, verbose=False)
    assert capsys.readouterr().err == ""
    assert hub.list("owner/repo", force_reload=True, skip_validation=True) == ["newer"]
    assert hub.help("owner/repo", "newer", skip_validation=True) is None


def test_github_master_when_main_is_missing(github, hub_dir):
    _zipball(github, ref="master", hubconf="def m():\n    return 'master'\n")
    assert hub.load("owner/repo", "m", trust_repo=True, skip_validation=True) == "master"
    assert (hub_dir / "owner_repo_master" / "hubconf.py").exists()


def test_github_branch_with_slash_and_validation(github, hub_dir):
    branches = [{"name": "feat/x", "commit": {"sha": "abc123"}}]
    base = "/repos/owner/repo/%s?per_page=100&page=%d"
    github.routes[base % ("branches", 1)] = _send(json.dumps(branches).encode())
    github.routes[base % ("branches", 2)] = _send(b"[]")
    github.routes[base % ("tags", 1)] = _send(b"[]")
    _zipball(github, ref="feat/x", hubconf="def f():\n    return 'feat'\n")
    # NOTE: the zipball of "feat/x" is served at .../zipball/feat/x: put it there
    (github.root / "owner/repo/zipball/feat").mkdir()
    (github.root / "owner/repo/zipball/feat_x").rename(github.root / "owner/repo/zipball/feat/x")
    assert hub.load("owner/repo:feat/x", "f", trust_repo=True) == "feat"
    assert (hub_dir / "owner_repo_feat_x").is_dir()
    with pytest.raises(ValueError, match="Cannot find nope in https://github.com/owner/repo"):
        hub.load("owner/repo:nope", "f", trust_repo=True)


def test_trust_prompt_and_trusted_list(github, hub_dir, monkeypatch, capsys):
    _zipball(github)
    answers = []
    monkeypatch.setattr("builtins.input", lambda prompt: answers.pop(0))
    answers.append("n")
    with pytest.raises(hub.UntrustedRepoError, match="Untrusted repository"):
        hub.list("owner/repo:main", skip_validation=True)
    assert not (hub_dir / "owner_repo_main").exists()
    answers.append("maybe")
    with pytest.raises(ValueError, match="Unrecognized response maybe"):
        hub.list("owner/repo:main", skip_validation=True)
    answers.append("Y")
    assert hub.list("owner/repo:main", skip_validation=True) == ["mlp", "which_tensor"]
    assert (hub_dir / "trusted_list").read_text() == "owner_repo\n"
    hub.list("owner/repo:main", skip_validation=True)  # trusted now: no prompt (answers empty)
    answers.append("yes")
    hub.list("owner/repo:main", skip_validation=True, trust_repo=False)  # always asks
    assert "already trusted" in capsys.readouterr().out
    with pytest.raises(ValueError, match="trust_repo must be"):
        hub.list("owner/repo:main", skip_validation=True, trust_repo="always")

    def closed(prompt):
        raise EOFError

    monkeypatch.setattr("builtins.input", closed)
    with pytest.raises(hub.UntrustedRepoError, match="trust_repo=True"):
        hub.list("other/repo:main", skip_validation=True)


def test_github_errors(github, hub_dir, monkeypatch):
    with pytest.raises(ValueError, match="'repo_owner/repo_name\\[:ref\\]'"):
        hub.load("just-a-name", "f", trust_repo=True)
    with pytest.raises(HTTPError) as e:  # no zipball served
        hub.load("owner/repo:main", "f", trust_repo=True, skip_validation=True)
    assert e.value.code == 404 and "source='local'" in str(e.value)
    assert "owner_repo_main" in str(e.value) and sorted(os.listdir(hub_dir)) == ["trusted_list"]
    _zipball(github, extra=["owner-repo-0123abc/../../evil.py"])
    with pytest.raises(ValueError, match="escapes"):
        hub.load("owner/repo:main", "f", trust_repo=True, skip_validation=True)
    assert not (hub_dir.parent / "evil.py").exists() and not (hub_dir / "main.zip").exists()
    _zipball(github, top="..")
    with pytest.raises(ValueError, match="without a top folder"):
        hub.load("owner/repo:main", "f", trust_repo=True, skip_validation=True)
    assert (hub_dir.parent / "www").is_dir()
    (github.root / "owner/repo/zipball/main").write_text("<html>rate limited</html>")
    with pytest.raises(RuntimeError, match="did not give a zip archive"):
        hub.load("owner/repo:main", "f", trust_repo=True, skip_validation=True)
    assert sorted(os.listdir(hub_dir)) == ["trusted_list"]
    monkeypatch.setattr(hub, "_GITHUB", _closed_port_url(""))
    with pytest.raises(RuntimeError, match="no internet connection"):
        hub.load("owner/repo", "f", trust_repo=True, skip_validation=True)
    with pytest.raises(URLError, match="source='local'"):
        hub.load("owner/repo:main", "f", trust_repo=True, skip_validation=True)
    _repo(hub_dir / "owner_repo_master", "def g():\n    return 'cached'\n")
    assert hub.load("owner/repo", "g", trust_repo=True, skip_validation=True) == "cached"
