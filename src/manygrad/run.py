"""``python -m manygrad.run script.py args...``: run an unchanged PyTorch script on manygrad.

The same as ``manygrad run script.py args...`` (see ``manygrad.compat.runner``).
"""

import sys

from .compat.runner import main

if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
