"""`r3bench report`: output-path mistakes are one line each, before anything is built (issue 16)."""
from runners.cli import main


def test_report_out_that_is_a_file_and_a_missing_readme(tmp_path, capsys):
    results = tmp_path / "results"
    results.mkdir()
    out_file = tmp_path / "report.md"
    out_file.write_text("keep me")
    assert main(["report", str(results), "--out", str(out_file)]) == 2
    err = capsys.readouterr().err
    assert "--out: " in err and "is a file; give a folder for the report" in err and err.count("\n") == 1
    assert out_file.read_text() == "keep me"
    assert main(["report", str(results), "--out", str(tmp_path / "out"), "--readme", str(tmp_path / "NOPE.md")]) == 2
    err = capsys.readouterr().err
    assert "--readme: " in err and "is not an existing file" in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()
    assert main(["report", str(out_file)]) == 2
    assert "RESULTS_DIR: " in capsys.readouterr().err
