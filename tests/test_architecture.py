"""The import contracts of pyproject.toml ([tool.importlinter]) hold: the layers core <-
customers <- ml <- retention <- bots with no import running upward, no circle of modules
inside an app, and ml's numeric core without Django. `make lint` checks the same; this
test makes `make test`, and so CI, fail on a violation too."""

from pathlib import Path

from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parent.parent


def test_imports_keep_the_layers_and_have_no_circles(monkeypatch, capsys):
    monkeypatch.chdir(ROOT)  # the packages it reads are found from the working directory
    status = lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True)
    assert status == 0, capsys.readouterr().out
