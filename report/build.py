"""Build the report: figures from the committed results, then the Typst document to report/report.pdf.

    python report/build.py [--output PATH] [--figures DIR]

Every number in report.typ is read from result files, and each comparison its text states is an
#assert there: if a rerun no longer supports a sentence, the build fails and names it.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPORT = Path(__file__).resolve().parent
sys.path.insert(0, str(REPORT))

import figures  # noqa: E402


def build(output: Path, figure_dir: Path) -> None:
    import typst

    if figures.main(figure_dir) != 0:
        raise SystemExit(2)
    try:
        # root "/": the figures folder may lie outside the repository (the test writes to a temporary one)
        typst.compile(str(REPORT / "report.typ"), output=str(output), root="/",
                      sys_inputs={"figures": str(figure_dir)})
    except typst.TypstError as err:  # compile errors, failed #asserts among them
        print(f"error: the report does not compile:\n{err.diagnostic}", file=sys.stderr)
        raise SystemExit(1) from None
    print(f"wrote {output}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--output", type=Path, default=REPORT / "report.pdf", help="where the PDF goes (default: report/report.pdf)")
    p.add_argument("--figures", type=Path, default=REPORT / "figures",
                   help="where the figures and facts.json go (default: report/figures, git-ignored)")
    args = p.parse_args()
    build(args.output.resolve(), args.figures.resolve())


if __name__ == "__main__":
    main()
