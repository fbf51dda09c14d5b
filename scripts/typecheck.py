"""Run ``mypy --strict`` once per package (each has its own tests folder, so module names repeat
across packages), then over the meta-package, the cross-package tests and the examples."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ["core", "loops", "accelerators", "loggers", "callbacks", "export"]


def main() -> int:
    targets: list[list[str]] = []
    for name in PACKAGES:
        package = ROOT / "packages" / name
        paths = [str(package / "src")]
        if any((package / "tests").glob("*.py")):
            paths.append(str(package / "tests"))
        targets.append(paths)
    targets.append([str(ROOT / "src"), str(ROOT / "tests"), str(ROOT / "examples"), str(ROOT / "benchmarks"), str(ROOT / "scripts")])
    failed = 0
    for paths in targets:
        existing = [p for p in paths if Path(p).is_file() or any(Path(p).rglob("*.py"))]
        print("mypy --strict", " ".join(str(Path(p).relative_to(ROOT)) for p in existing), flush=True)
        result = subprocess.run(
            [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", *existing], cwd=ROOT
        )
        failed += result.returncode != 0
    print("mypy: all packages pass" if not failed else f"mypy: {failed} target(s) failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
