"""Progress bars on stderr for long steps, and ``-q/--quiet`` leaves stderr empty on success."""

from __future__ import annotations

from pathlib import Path

import pytest

from medsift.cli import main
from test_report import make_run


@pytest.fixture
def fake_minilm(tmp_path, monkeypatch):
    """A cheap stand-in for the MiniLM conversion (the real one copies and loads a 90 MB model)."""
    from medsift.models import prepare as converters
    from medsift.models import registry

    monkeypatch.setenv("MEDSIFT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(
        converters.PREPARERS, "minilm", lambda asset, out: (out / "config.json").write_text("{}")
    )
    monkeypatch.setattr(converters, "verify", lambda spec, folder: None)
    monkeypatch.setattr(registry, "package_asset", lambda spec: Path("/nowhere"))


def test_models_prepare_shows_a_bar_and_quiet_leaves_stderr_empty(fake_minilm, capsys):
    main(["models", "offline:minilm", "--prepare", "--force", "--json"])
    err = capsys.readouterr().err
    assert "preparing offline:minilm" in err and "2/2" in err  # the tqdm bar: convert, verify
    main(["models", "offline:minilm", "--prepare", "--force", "--json", "-q"])
    captured = capsys.readouterr()
    assert captured.err == "" and '"prepared": true' in captured.out


def test_report_quiet_leaves_stderr_empty(tmp_path, capsys):
    run = make_run(tmp_path, "alpha")
    main(["report", str(run), "-o", str(tmp_path / "r.html")])
    err = capsys.readouterr().err
    assert "reading runs" in err and "building report" in err and "report written to" in err
    main(["report", str(run), "-o", str(tmp_path / "r.html"), "-q"])
    assert capsys.readouterr().err == ""


@pytest.mark.slow
def test_export_shows_a_bar_and_quiet_leaves_stderr_empty(tiny_bert, tmp_path, capsys):
    from medsift.ade.train import train
    from test_ade import make_ade_csv, tiny_config

    config = tiny_config(tiny_bert, make_ade_csv(tmp_path / "train.csv"), tmp_path / "run")
    run = train(config, quiet=True)
    capsys.readouterr()
    main(["export", str(run)])
    captured = capsys.readouterr()
    assert "ONNX export" in captured.err and "model.onnx" in captured.out
    main(["export", str(run), "--quantize", "-q"])
    captured = capsys.readouterr()
    assert captured.err == "" and "model.int8.onnx" in captured.out
