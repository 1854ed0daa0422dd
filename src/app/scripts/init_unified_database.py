"""Install guide step 9 as written: ``python src/app/scripts/init_unified_database.py``.

The same as ``poundcake db init``: creates or migrates the PoundCake and extension tables.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

try:
    from poundcake.cli.poundcake import app
except ImportError as error:
    sys.stderr.write(
        f"error: PoundCake's dependencies are not installed for {sys.executable} ({error}); "
        "run ./run.sh once, then use .venv/bin/python or activate .venv\n"
    )
    sys.exit(1)

if __name__ == "__main__":
    app(["db", "init", *sys.argv[1:]])
