"""``make demo-class``: fill ``submitted/`` with the shipped demo class.

``grading/demo_class/<student>/<assignment>/`` holds a handful of submissions: right (ada),
partly right (ben), blank (cleo), a kernel that dies half-way (dan), a notebook saved under
another name (fay) and one that is not valid JSON (gus). ``python -m grading.demo`` copies them
into the course's ``submitted/`` (replacing only these students' folders);
``python -m grading.demo --build`` regenerates them from ``solutions/`` (for maintainers).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from grading import corpus

HERE = Path(__file__).resolve().parent / "demo_class"


def build(target: Path = HERE) -> None:
    """Regenerate the demo submissions from solutions/ and exercises/."""
    for old in (p for p in target.glob("[!.]*") if p.is_dir()):
        shutil.rmtree(old)
    a, p = "01_convolution", "03_pooling"
    flip = corpus.solved(a)["convolve2d"].replace("corr2d(x, k[::-1, ::-1])", "corr2d(x, k)")
    stride = corpus.solved(p)["max_pool2d"].replace("stride = kernel_size if stride is None",
                                                    "stride = 1 if stride is None")
    corpus.write(corpus.filled(a), target / "ada" / a, a)
    corpus.write(corpus.filled(p), target / "ada" / p, p)
    corpus.write(corpus.filled(a, {"convolve2d": flip}), target / "ben" / a, a)
    corpus.write(corpus.filled(p, {"max_pool2d": stride}), target / "ben" / p, p)
    corpus.write(corpus.released(a), target / "cleo" / a, a)
    corpus.write(corpus.filled(a, {"convolve2d": "import os\nos._exit(1)  # the kernel dies here\n"}),
                 target / "dan" / a, a)
    corpus.write(corpus.filled(a), target / "fay" / a, "convolution_final")
    (target / "gus" / a).mkdir(parents=True)
    (target / "gus" / a / f"{a}.ipynb").write_text('{"cells": [{"cell_type": "code", "source": ')


def install(course: Path) -> list[str]:
    """Copy the demo class into ``course/submitted``; the students copied."""
    students = sorted(p.name for p in HERE.iterdir() if p.is_dir() and not p.name.startswith("."))
    for student in students:
        target = course / "submitted" / student
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(HERE / student, target)
    return students


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Install the demo class into submitted/.")
    parser.add_argument("--course", type=Path, default=Path.cwd())
    parser.add_argument("--build", action="store_true", help="regenerate grading/demo_class from solutions/")
    args = parser.parse_args(argv)
    if args.build:
        build()
    students = install(args.course)
    print(f"demo class in {args.course / 'submitted'}: {', '.join(students)}; now run `make grade`")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
