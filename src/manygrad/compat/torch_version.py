"""``torch.version``: the version strings ported programs print."""

cuda = None  # manygrad reaches CUDA through CuPy; see manygrad.cuda.is_available()
hip = None
git_version = "unknown"
debug = False
