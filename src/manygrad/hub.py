"""Pretrained models and weights from the web, as ``torch.hub`` (``manygrad.hub``).

A ported script's ``torch.hub`` calls run unchanged (``import torch`` resolves to
manygrad under ``manygrad run``). The cache is PyTorch's: ``$TORCH_HOME/hub``, else
``$XDG_CACHE_HOME/torch/hub``, else ``~/.cache/torch/hub`` (``set_dir`` overrides it), so
weights and repositories that PyTorch already downloaded are reused, and files placed
there by hand (on a machine without internet access) are found.

- ``load_state_dict_from_url(url)`` downloads once into ``<hub dir>/checkpoints`` and
  loads with ``manygrad.load``: checkpoints written by PyTorch's ``torch.save``,
  safetensors files, and zip files holding one such file. With ``check_hash=True`` the
  file name's ``name-<sha256 prefix>.ext`` part is checked against the download.
- ``download_url_to_file(url, dst)`` streams into a temporary file beside ``dst`` and
  renames it into place only when complete and (optionally) hash-checked: a failed or
  interrupted download never leaves a partial file, and an older ``dst`` stays as it was.
- ``load(repo, entrypoint, ...)``, ``list(repo)`` and ``help(repo, entrypoint)`` run a
  repository's ``hubconf.py``: from GitHub (``"owner/repo[:ref]"``, downloaded once into
  ``<hub dir>/<owner>_<repo>_<ref>``, after the trust check) or from a local folder
  (``source="local"``). While ``hubconf.py`` runs, ``import torch`` inside it gives
  manygrad, so its entrypoints build manygrad models.

Example:
    >>> import manygrad as mg
    >>> sd = mg.hub.load_state_dict_from_url("https://example.org/weights-1a2b3c4d.pth",
    ...                                      check_hash=True)
    >>> model = mg.hub.load("path/to/repo", "resnet18", source="local", pretrained=True)
"""

from __future__ import annotations

import builtins
import contextlib
import importlib.util
import json
import os
import re
import shutil
import sys
import warnings
import zipfile
from pathlib import Path
from urllib.error import HTTPError, URLError
from urllib.parse import urlparse
from urllib.request import Request, urlopen

from ._hub_download import DownloadError as DownloadError  # the errors, as hub.<Name>
from ._hub_download import HashMismatchError as HashMismatchError
from ._hub_download import HTTPDownloadError as HTTPDownloadError
from ._hub_download import HubError as HubError
from ._hub_download import (
    download,
    is_legacy_zip_format,
    network_error,
    remove_if_exists,
    safe_extract_zip,
)
from .errors import ManygradError

__all__ = [
    "download_url_to_file",
    "get_dir",
    "help",
    "list",
    "load",
    "load_state_dict_from_url",
    "set_dir",
]

HASH_REGEX = re.compile(r"-([a-f0-9]*)\.")  # resnet18-bfd8deac.pth -> bfd8deac
ENV_GITHUB_TOKEN = "GITHUB_TOKEN"
ENV_TORCH_HOME = "TORCH_HOME"
ENV_XDG_CACHE_HOME = "XDG_CACHE_HOME"
DEFAULT_CACHE_DIR = "~/.cache"
VAR_DEPENDENCY = "dependencies"
MODULE_HUBCONF = "hubconf.py"
_TRUSTED_REPO_OWNERS = ("facebookresearch", "facebookincubator", "pytorch", "fairinternal")
_GITHUB = "https://github.com"
_GITHUB_API = "https://api.github.com"
_hub_dir: str | None = None


class UntrustedRepoError(ManygradError):
    """The user declined to trust a GitHub repository (PyTorch raises a plain Exception)."""


def get_dir() -> str:
    """The hub cache folder: ``set_dir``'s, else ``$TORCH_HOME/hub``, else
    ``$XDG_CACHE_HOME/torch/hub``, else ``~/.cache/torch/hub`` (PyTorch's, so shared with it).

    Example:
        >>> mg.hub.get_dir()
        '/home/me/.cache/torch/hub'
    """
    if os.getenv("TORCH_HUB"):
        warnings.warn("TORCH_HUB is deprecated, please use env TORCH_HOME instead", stacklevel=2)
    if _hub_dir is not None:
        return _hub_dir
    cache = os.getenv(ENV_XDG_CACHE_HOME, DEFAULT_CACHE_DIR)
    home = os.getenv(ENV_TORCH_HOME, os.path.join(cache, "torch"))
    return os.path.join(os.path.expanduser(home), "hub")


def set_dir(d: str | os.PathLike) -> None:
    """Use folder ``d`` as the hub cache (for weights and repositories) in this process.

    Example:
        >>> mg.hub.set_dir("/data/hub")
    """
    global _hub_dir
    _hub_dir = os.path.expanduser(os.fspath(d))


def download_url_to_file(
    url: str, dst: str | os.PathLike, hash_prefix: str | None = None, progress: bool = True
) -> None:
    """Download ``url`` to the file ``dst``, atomically.

    The data streams into a temporary file beside ``dst`` that is renamed to ``dst`` only
    when complete (all ``Content-Length`` bytes) and, with ``hash_prefix``, when its SHA-256
    starts with it; on any failure (network, bad hash, Ctrl-C) it is deleted and an existing
    ``dst`` stays as it was.

    Args:
        url: the address (``https://``, ``http://``, ``file://``).
        dst: the file to write.
        hash_prefix: leading hex digits of the expected SHA-256 (default None: unchecked).
        progress: show a progress bar on stderr (tqdm when installed; default True).

    Example:
        >>> mg.hub.download_url_to_file("https://example.org/w.pth", "/tmp/w.pth")
    """
    download(url, dst, hash_prefix, progress, None)


def load_state_dict_from_url(
    url: str,
    model_dir: str | os.PathLike | None = None,
    map_location=None,
    progress: bool = True,
    check_hash: bool = False,
    file_name: str | None = None,
    weights_only: bool = True,
):
    """Load the checkpoint at ``url``, downloading it into the cache on first use.

    The file is cached as ``<model_dir>/<file name>`` and read with ``manygrad.load``
    (PyTorch ``torch.save`` files, safetensors, or a zip holding one such file). A file
    already there is used as is, so one placed there by hand needs no network.

    Args:
        url: the address of the file.
        model_dir: the cache folder (default None: ``<get_dir()>/checkpoints``).
        map_location: device for the tensors (default None: the CPU), as ``manygrad.load``.
        progress: show a progress bar on stderr while downloading (default True).
        check_hash: check the download's SHA-256 against the ``-<hex>.`` part of the file
            name, e.g. ``resnet18-f37072fd.pth`` (default False).
        file_name: the name to cache under (default None: the URL's last path part).
        weights_only: load tensors and containers only, never pickled objects (default True).

    Example:
        >>> sd = mg.hub.load_state_dict_from_url("https://example.org/net-1a2b3c4d.pth")
        >>> model.load_state_dict(sd)
    """
    if os.getenv("TORCH_MODEL_ZOO"):
        warnings.warn(
            "TORCH_MODEL_ZOO is deprecated, please use env TORCH_HOME instead", stacklevel=2
        )
    if model_dir is None:
        model_dir = os.path.join(get_dir(), "checkpoints")
    model_dir = os.fspath(model_dir)
    os.makedirs(model_dir, exist_ok=True)
    filename = file_name if file_name is not None else os.path.basename(urlparse(url).path)
    if not filename:
        raise ValueError(f"load_state_dict_from_url: {url!r} names no file; pass file_name=")
    cached_file = os.path.join(model_dir, filename)
    if not os.path.exists(cached_file):
        sys.stdout.write(f'Downloading: "{url}" to {cached_file}\n')
        hash_prefix = None
        if check_hash:
            m = HASH_REGEX.search(filename)
            if m is None:
                warnings.warn(
                    f"load_state_dict_from_url: check_hash=True, but the file name {filename!r} "
                    "holds no '-<sha256 prefix>.' part; the download is not checked",
                    stacklevel=2,
                )
            hash_prefix = m.group(1) if m else None
        download_url_to_file(url, cached_file, hash_prefix, progress=progress)
    from .io import load as load_file

    if is_legacy_zip_format(cached_file):
        warnings.warn(
            f"{cached_file}: a zip holding one checkpoint is the format of PyTorch < 1.6; "
            "save it again with torch.save or manygrad.save",
            FutureWarning,
            stacklevel=2,
        )
        with zipfile.ZipFile(cached_file) as zf:
            safe_extract_zip(zf, model_dir)
            cached_file = os.path.join(model_dir, zf.infolist()[0].filename)
    return load_file(cached_file, map_location=map_location, weights_only=weights_only)


# ---------------------------------------------------------------- hubconf repositories


@contextlib.contextmanager
def _hubconf_context(repo_dir: str):
    """``repo_dir`` first on ``sys.path``, and ``import torch`` meaning manygrad."""
    from .compat import importer

    hooked = importer._FINDER in sys.meta_path  # e.g. under `manygrad run`: leave it on
    sys.path.insert(0, repo_dir)
    if not hooked:
        importer.install()
    try:
        yield
    finally:
        if not hooked:
            importer.uninstall()
        sys.path.remove(repo_dir)


def _import_hubconf(repo_dir: str):
    path = os.path.join(repo_dir, MODULE_HUBCONF)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"hub: no {MODULE_HUBCONF} in {repo_dir}")
    spec = importlib.util.spec_from_file_location(MODULE_HUBCONF, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _entrypoints(module) -> builtins.list[str]:
    return [n for n in dir(module) if callable(getattr(module, n)) and not n.startswith("_")]


def _module_exists(name: str) -> bool:
    if name in sys.modules:
        return True
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _load_entry_from_hubconf(module, model: str):
    if not isinstance(model, str):
        raise ValueError("Invalid input: model should be a string of function name")
    deps = getattr(module, VAR_DEPENDENCY, None) or []
    missing = [d for d in deps if not _module_exists(d)]
    if missing:
        raise HubError(
            f"Missing dependencies: {', '.join(missing)} (listed in {module.__file__}); "
            f"install them, e.g. pip install {' '.join(missing)}"
        )
    func = getattr(module, model, None)
    if func is None or not callable(func):
        raise HubError(
            f"Cannot find callable {model} in hubconf ({module.__file__}); its entrypoints "
            f"are: {', '.join(_entrypoints(module)) or '(none)'}"
        )
    return func


def _git_archive_link(repo_owner: str, repo_name: str, ref: str) -> str:
    return f"{_GITHUB}/{repo_owner}/{repo_name}/zipball/{ref}"


def _parse_repo_info(github: str):
    repo_info, _, ref = github.partition(":") if isinstance(github, str) else ("", "", "")
    parts = repo_info.split("/")
    if len(parts) != 2 or not all(parts) or ":" in ref:
        raise ValueError(
            f"hub: expected a GitHub repository as 'repo_owner/repo_name[:ref]', e.g. "
            f"'pytorch/vision:v0.10.0', got {github!r}; for a folder pass source='local'"
        )
    owner, name = parts
    if ref:
        return owner, name, ref
    # NOTE: no ref given: the default branch is main if GitHub has it, else master
    try:
        with urlopen(f"{_GITHUB}/{owner}/{name}/tree/main/"):
            return owner, name, "main"
    except HTTPError as e:
        if e.code == 404:
            return owner, name, "master"
        raise
    except URLError as e:
        for ref in ("main", "master"):
            if os.path.exists(os.path.join(get_dir(), f"{owner}_{name}_{ref}")):
                return owner, name, ref
        raise HubError(
            f"It looks like there is no internet connection ({e.reason}) and the repo "
            f"{owner}/{name} could not be found in the cache ({get_dir()}); place its files "
            f"in {os.path.join(get_dir(), f'{owner}_{name}_<ref>')}, or load a local copy with "
            "source='local'"
        ) from e


def _read_json(url: str, headers: dict):
    with urlopen(Request(url, headers=headers)) as r:
        return json.loads(r.read().decode(r.headers.get_content_charset("utf-8")))


def _validate_not_a_forked_repo(repo_owner: str, repo_name: str, ref: str) -> None:
    headers = {"Accept": "application/vnd.github.v3+json"}
    token = os.environ.get(ENV_GITHUB_TOKEN)
    if token is not None:
        headers["Authorization"] = f"token {token}"
    for kind in ("branches", "tags"):
        page = 0
        while True:
            page += 1
            url = f"{_GITHUB_API}/repos/{repo_owner}/{repo_name}/{kind}?per_page=100&page={page}"
            try:
                try:
                    response = _read_json(url, headers)
                except HTTPError:
                    if "Authorization" not in headers:
                        raise
                    del headers["Authorization"]  # the token may lack the permission
                    response = _read_json(url, headers)
            except URLError as e:
                raise network_error(
                    url, "", e.reason, "pass skip_validation=True to skip this check", e
                ) from e
            if not response:
                break
            for br in response:
                if br["name"] == ref or br["commit"]["sha"].startswith(ref):
                    return
    raise ValueError(
        f"Cannot find {ref} in https://github.com/{repo_owner}/{repo_name}. If it's a commit "
        "from a forked repo, please call hub.load() with forked repo directly."
    )


def _check_repo_is_trusted(repo_owner, repo_name, owner_name_branch, trust_repo) -> None:
    if trust_repo not in (True, False, "check", None):
        raise ValueError(f'hub: trust_repo must be True, False or "check", got {trust_repo!r}')
    hub_dir = get_dir()
    filepath = os.path.join(hub_dir, "trusted_list")
    Path(filepath).touch()
    with open(filepath) as file:
        trusted = {line.strip() for line in file}
    # NOTE: a repository downloaded before the trust list existed counts as trusted
    downloaded = next(os.walk(hub_dir))[1]
    owner_name = f"{repo_owner}_{repo_name}"
    is_trusted = (
        owner_name in trusted
        or owner_name_branch in downloaded
        or repo_owner in _TRUSTED_REPO_OWNERS
    )
    if trust_repo is False or (trust_repo == "check" and not is_trusted):
        try:
            response = input(
                f"The repository {owner_name} does not belong to the list of trusted "
                "repositories and as such cannot be downloaded. Do you trust this repository "
                "and wish to add it to the trusted list of repositories (y/N)?"
            )
        except EOFError:
            raise UntrustedRepoError(
                f"Untrusted repository {owner_name}: no answer to the trust prompt (stdin is "
                "closed); pass trust_repo=True to trust it"
            ) from None
        if response.lower() in ("y", "yes"):
            if is_trusted:
                print("The repository is already trusted.")
        elif response.lower() in ("n", "no", ""):
            raise UntrustedRepoError("Untrusted repository.")
        else:
            raise ValueError(f"Unrecognized response {response}.")
    if not is_trusted:
        with open(filepath, "a") as file:
            file.write(owner_name + "\n")


def _get_cache_or_reload(github, force_reload, trust_repo, verbose=True, skip_validation=False):
    hub_dir = get_dir()
    os.makedirs(hub_dir, exist_ok=True)
    owner, name, ref = _parse_repo_info(github)
    normalized_br = ref.replace("/", "_")  # NOTE: a branch name may hold '/', never '\'
    owner_name_branch = f"{owner}_{name}_{normalized_br}"
    repo_dir = os.path.join(hub_dir, owner_name_branch)
    _check_repo_is_trusted(owner, name, owner_name_branch, trust_repo)
    if not force_reload and os.path.exists(repo_dir):
        if verbose:
            sys.stderr.write(f"Using cache found in {repo_dir}\n")
        return repo_dir
    if not skip_validation:
        _validate_not_a_forked_repo(owner, name, ref)
    cached_file = os.path.join(hub_dir, normalized_br + ".zip")
    remove_if_exists(cached_file)
    hint = (
        f"without network access, place the repository's files (with its {MODULE_HUBCONF}) "
        f"in {repo_dir}, or pass a local copy with source='local'"
    )
    url = _git_archive_link(owner, name, ref)
    sys.stdout.write(f'Downloading: "{url}" to {cached_file}\n')
    try:
        download(url, cached_file, None, False, hint)
    except HTTPError as err:
        if err.code != 300:
            raise
        warnings.warn(
            f"The ref {ref} is ambiguous (both a tag and a branch?); it is taken as the "
            "branch. Name refs/heads/<branch> or refs/tags/<tag> to choose (that may need "
            "skip_validation=True).",
            stacklevel=3,
        )
        url = _git_archive_link(owner, name, f"refs/heads/{ref}")
        download(url, cached_file, None, False, hint)
    try:
        with zipfile.ZipFile(cached_file) as zf:
            top = re.split(r"[/\\]", zf.infolist()[0].filename)[0]
            if top in ("", ".", ".."):  # NOTE: never rmtree above the hub folder
                raise ValueError(f"hub: {url} gave an archive without a top folder ({top!r})")
            extracted = os.path.join(hub_dir, top)
            remove_if_exists(extracted)
            safe_extract_zip(zf, hub_dir)
    except (zipfile.BadZipFile, IndexError) as e:
        raise HubError(f"hub: {url} did not give a zip archive of the repository ({e})") from e
    finally:
        remove_if_exists(cached_file)
    remove_if_exists(repo_dir)
    shutil.move(extracted, repo_dir)
    return repo_dir


def _repo_dir(repo_or_dir, source, force_reload, trust_repo, verbose, skip_validation) -> str:
    source = source.lower()
    if source not in ("github", "local"):
        raise ValueError(f'Unknown source: "{source}". Allowed values: "github" | "local".')
    if source == "github":
        return _get_cache_or_reload(repo_or_dir, force_reload, trust_repo, verbose, skip_validation)
    if not os.path.isdir(repo_or_dir):
        raise FileNotFoundError(f"hub: source='local' needs a folder, got {repo_or_dir!r}")
    return os.fspath(repo_or_dir)


def list(github, force_reload=False, skip_validation=False, trust_repo="check", verbose=True,
         *, source: str = "github") -> builtins.list[str]:  # fmt: skip
    """The entrypoints (public callables) of a repository's ``hubconf.py``.

    Args:
        github: ``"repo_owner/repo_name[:ref]"`` (default ref: main, else master), or a
            folder with ``source="local"``.
        force_reload: download the repository again even if cached (default False).
        skip_validation: skip the GitHub API check that ``ref`` belongs to the repository
            (default False; set ``GITHUB_TOKEN`` for a higher rate limit).
        trust_repo: ``"check"`` (default: prompt unless trusted), True (trust and record) or
            False (always prompt).
        verbose: report a cache hit on stderr (default True).
        source: ``"github"`` (default) or ``"local"``.

    Example:
        >>> mg.hub.list("pytorch/vision:v0.10.0")
    """
    repo_dir = _repo_dir(github, source, force_reload, trust_repo, verbose, skip_validation)
    with _hubconf_context(repo_dir):
        return _entrypoints(_import_hubconf(repo_dir))


def help(github, model, force_reload=False, skip_validation=False, trust_repo="check",
         *, source: str = "github") -> str | None:  # fmt: skip
    """The docstring of entrypoint ``model`` of a repository's ``hubconf.py``.

    Args: as ``list``; ``model`` is the entrypoint's name.

    Example:
        >>> print(mg.hub.help("pytorch/vision:v0.10.0", "resnet18"))
    """
    repo_dir = _repo_dir(github, source, force_reload, trust_repo, True, skip_validation)
    with _hubconf_context(repo_dir):
        return _load_entry_from_hubconf(_import_hubconf(repo_dir), model).__doc__


def load(repo_or_dir, model, *args, source="github", trust_repo="check", force_reload=False,
         verbose=True, skip_validation=False, **kwargs):  # fmt: skip
    """Call entrypoint ``model`` of a repository's ``hubconf.py`` and return its result.

    ``import torch`` inside ``hubconf.py`` (and the repository's modules it imports) gives
    manygrad while it runs, so the entrypoint builds a manygrad model.

    Args:
        repo_or_dir: ``"repo_owner/repo_name[:ref]"`` for GitHub (default ref: main, else
            master), or a folder holding ``hubconf.py`` with ``source="local"``.
        model: the entrypoint's name.
        *args, **kwargs: passed to the entrypoint.
        source: ``"github"`` (default) or ``"local"``.
        trust_repo: ``"check"`` (default: prompt unless the repository is in
            ``<hub dir>/trusted_list``), True (trust and record it) or False (always prompt).
        force_reload: download the repository again even if cached (default False).
        verbose: report a cache hit on stderr (default True).
        skip_validation: skip the GitHub API check that ``ref`` belongs to the repository
            (default False).

    Example:
        >>> model = mg.hub.load("pytorch/vision:v0.10.0", "resnet18", weights=None)
    """
    repo_dir = _repo_dir(repo_or_dir, source, force_reload, trust_repo, verbose, skip_validation)
    with _hubconf_context(repo_dir):
        entry = _load_entry_from_hubconf(_import_hubconf(repo_dir), model)
        return entry(*args, **kwargs)
