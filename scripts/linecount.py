"""Print the line count of manygrad's core (tensor + autograd + backend) and of each
package folder, so that growth stays visible."""

import pathlib

SRC = pathlib.Path(__file__).resolve().parents[1] / "src" / "manygrad"
CORE = [
    "tensor.py",
    "autograd/__init__.py",
    "autograd/_engine.py",
    "autograd/_inplace.py",
    "backend.py",
    "dtypes.py",
    "creation.py",
]


def count(p: pathlib.Path) -> int:
    return sum(1 for line in p.read_text().splitlines() if line.strip())


def main() -> None:
    core = {n: count(SRC / n) for n in CORE}
    for n, c in core.items():
        print(f"{c:6d}  {n}")
    engine = sum(c for n, c in core.items() if n not in ("dtypes.py", "creation.py"))
    print(f"{engine:6d}  tensor+autograd+backend (budget ~1,200)")
    print(f"{sum(core.values()):6d}  core total")
    for d in sorted(p for p in SRC.iterdir() if p.is_dir() and not p.name.startswith("_")):
        print(f"{sum(count(f) for f in d.rglob('*.py')):6d}  {d.name}/")


if __name__ == "__main__":
    main()
