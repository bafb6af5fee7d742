"""`r3bench dirac`: one-line errors for a bad gamma and a bad --plot folder."""
from runners.cli import main


def test_negative_or_nan_gamma_is_refused(capsys):
    assert main(["dirac", "--gamma", "-1", "--json"]) == 2
    assert main(["dirac", "--gamma", "nan", "--json"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == ["r3bench dirac: error: --gamma: must be a finite number >= 0, got -1.0",
                     "r3bench dirac: error: --gamma: must be a finite number >= 0, got nan"]


def test_plot_into_a_file_is_one_line(tmp_path, capsys):
    target = tmp_path / "plot.png"
    target.write_text("not a folder")
    assert main(["dirac", "--plot", str(target), "--json"]) == 2
    err = capsys.readouterr().err
    assert "--plot: " in err and "is a file; give a folder" in err and err.count("\n") == 1
    assert main(["dirac", "--plot", str(target / "below"), "--json"]) == 2  # a file where a parent folder should be
    err = capsys.readouterr().err
    assert "--plot: cannot write into" in err and err.count("\n") == 1 and target.read_text() == "not a folder"
