"""Copy the front-end assets installed by npm into static files (served locally by WhiteNoise).

Hospital intranets are offline: nothing is fetched at run time, and nothing third-party is
committed; ``src/yilian/static/vendor/`` is rebuilt from ``node_modules`` by ``make``.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ASSETS = {
    "htmx.org/dist/htmx.min.js": "htmx.min.js",
    "echarts/dist/echarts.min.js": "echarts.min.js",
    "alpinejs/dist/cdn.min.js": "alpine.min.js",
    "jsqr/dist/jsQR.js": "jsQR.js",
}


def main() -> int:
    target = ROOT / "src" / "yilian" / "static" / "vendor"
    target.mkdir(parents=True, exist_ok=True)
    for source, name in ASSETS.items():
        path = ROOT / "node_modules" / source
        if not path.exists():
            print(f"missing {path}: run npm ci first", file=sys.stderr)
            return 1
        shutil.copyfile(path, target / name)
    print(f"copied {len(ASSETS)} assets to {target.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
