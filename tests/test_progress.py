"""Progress bars: shown on a terminal, quiet otherwise, switchable by MINIGEN_PROGRESS."""

import io

import pytest

from minigen.progress import enabled, progress


class Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.fixture
def no_setting(monkeypatch):
    monkeypatch.delenv("MINIGEN_PROGRESS", raising=False)


def run_bar(monkeypatch, stream):
    monkeypatch.setattr("sys.stderr", stream)
    bar = progress(range(5), desc="gan")
    seen = []
    for i in bar:
        bar.set_postfix(d_loss=1.0 / (i + 1), g_loss=0.25)
        seen.append(i)
    bar.close()
    assert seen == [0, 1, 2, 3, 4], "the bar passes every item through, shown or not"
    return stream.getvalue()


def test_quiet_when_not_a_terminal(monkeypatch, no_setting):
    assert run_bar(monkeypatch, io.StringIO()) == ""


def test_shown_on_a_terminal_with_losses(monkeypatch, no_setting):
    out = run_bar(monkeypatch, Terminal())
    assert "gan" in out and "5/5" in out
    assert "d_loss=0.2" in out and "g_loss=0.25" in out


@pytest.mark.parametrize("value,shown", [("0", False), ("off", False), ("1", True)])
def test_environment_setting_wins(monkeypatch, value, shown):
    monkeypatch.setenv("MINIGEN_PROGRESS", value)
    assert enabled(Terminal()) is shown and enabled(io.StringIO()) is shown
    assert (run_bar(monkeypatch, io.StringIO()) != "") is shown


def test_manual_bar_with_total(monkeypatch, no_setting):
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    bar = progress(total=3, desc="epoch")
    bar.update(3)
    bar.close()
    assert bar.n == 3 and "epoch" in terminal.getvalue() and "3/3" in terminal.getvalue()
