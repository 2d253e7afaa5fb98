"""``axone tour``: every chapter runs in quick mode, writes its plot and beats a trivial
baseline; the command line picks chapters, lists them and refuses unknown ones; without
matplotlib the tour still runs and says the plots were skipped."""
import os
import subprocess
import sys

import pytest

from axone.cli import main
from axone.tour import CHAPTERS, run_tour

try:
    import matplotlib  # noqa: F401
    HAVE_MPL = True
except ImportError:
    HAVE_MPL = False

EXPECTED_PNG = {"mlp": "1_mlp.png", "optimization": "2_optimization.png",
                "regularization": "3_regularization.png", "cnn": "4_cnn.png",
                "transfer": "5_transfer.png", "rnn": "6_rnn.png",
                "generative": "7_generative.png"}


@pytest.fixture(scope="module")
def whole_tour(tmp_path_factory):
    out = tmp_path_factory.mktemp("tour")
    lines = []
    results = run_tour(out=str(out), quick=True, echo=lines.append)
    return out, results, "\n".join(lines)


def test_every_chapter_runs_in_order_and_beats_its_baseline(whole_tour):
    out, results, text = whole_tour
    assert [r.name for r in results] == list(CHAPTERS) == list(EXPECTED_PNG)
    for r in results:
        assert r.metrics, r.name
        for m in r.metrics:
            assert m.beats_baseline, (r.name, m)
        assert r.title in text and f"{r.metric.value:.4f}" in text
    by_name = {r.name: r for r in results}
    # metrics that say the models learned, well above the trivial baselines
    assert by_name["mlp"].metrics[0].value > 0.7                      # iris accuracy
    assert by_name["mlp"].metrics[1].value < 0.7 * by_name["mlp"].metrics[1].baseline
    assert by_name["cnn"].metric.value > 0.5 and by_name["rnn"].metric.value > 0.5
    assert by_name["transfer"].metric.value > 0.5
    assert by_name["generative"].metric.value < 0.7 * by_name["generative"].metric.baseline
    opt = {m.name.split()[0]: m.value for m in by_name["optimization"].metrics}
    assert opt["Adam"] < opt["SGD"] and opt["momentum"] < opt["SGD"]
    assert "stay unchanged" in by_name["transfer"].text           # the frozen base is frozen
    assert "Tour done: 7 chapter(s)" in text


@pytest.mark.skipif(not HAVE_MPL, reason="matplotlib is not installed")
def test_each_chapter_saves_its_png(whole_tour):
    out, results, text = whole_tour
    for r in results:
        path = os.path.join(str(out), EXPECTED_PNG[r.name])
        assert r.files == [path]
        with open(path, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
        assert os.path.getsize(path) > 5000
        assert f"plot: {path}" in text


def test_cli_runs_the_chosen_chapters(tmp_path, capsys):
    out = tmp_path / "plots"
    rc = main(["tour", "--quick", "--chapters", "rnn,optimization", "--out", str(out)])
    printed = capsys.readouterr().out
    assert rc == 0
    # run in the course's order whatever the order asked
    assert printed.index("Optimization") < printed.index("Recurrent")
    assert "Multi-layer" not in printed and "Tour done: 2 chapter(s)" in printed
    if HAVE_MPL:
        assert sorted(os.listdir(out)) == ["2_optimization.png", "6_rnn.png"]


def test_cli_list_and_bad_chapters(capsys):
    assert main(["tour", "--list"]) == 0
    listed = capsys.readouterr().out.split("\n")
    assert [line.split()[0] for line in listed if line.strip()] == list(CHAPTERS)
    assert main(["tour", "--chapters", "cnn,nosuch"]) == 2
    err = capsys.readouterr().err
    assert "unknown chapter(s) nosuch" in err and "generative" in err
    with pytest.raises(SystemExit):
        main(["tour", "--chapters", ","])
    with pytest.raises(ValueError, match=r"unknown chapter\(s\) \['cnnn'\]"):
        run_tour(["cnnn"], echo=None)


def test_without_matplotlib_the_tour_runs_and_says_plots_were_skipped(tmp_path):
    code = ("import sys; sys.modules['matplotlib'] = None\n"
            "from axone.cli import main\n"
            f"sys.exit(main(['tour', '--quick', '--chapters', 'optimization', "
            f"'--out', {str(tmp_path / 'none')!r}]))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "Plots skipped: matplotlib is not installed (pip install matplotlib)" in proc.stdout
    assert "Adam final training loss" in proc.stdout
    assert not (tmp_path / "none").exists()
