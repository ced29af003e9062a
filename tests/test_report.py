"""The report compiles against the committed result files: a failing #assert (a sentence the
results no longer support) or a missing result fails this test."""
from conftest import REPO, run_script


def test_report_compiles_from_committed_results(tmp_path):
    out = tmp_path / "report.pdf"
    proc = run_script(REPO / "report" / "build.py", "--output", out, "--figures", tmp_path / "figures", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    pdf = out.read_bytes()
    pages = pdf.count(b"/Type/Page") - pdf.count(b"/Type/Pages")
    assert pdf.startswith(b"%PDF") and pages >= 10, pages
    assert (tmp_path / "figures" / "facts.json").is_file()  # the figures went where it was told, not into report/
