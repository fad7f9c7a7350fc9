"""The command line as a newcomer meets it: ``--out`` semantics, one-sequence ``eval``, usage
errors with suggestions, help texts of switches, and examples that run as printed."""

from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from emtrack.cli import build_parser, main, missing_extra_message
from emtrack.io import read_mot
from sequences import write_sequence

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"

#: Python source that makes ``import torch`` fail as on a light install.
BLOCK_TORCH = """
import importlib.abc, sys
class NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] == "torch":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, NoTorch())
"""
RUN_MAIN = "\nfrom emtrack.cli import main\nsys.exit(main(sys.argv[1:]))\n"


def error_line(stderr: str) -> str:
    """The one ``emtrack: error:`` line of ``stderr`` (no traceback, no second error)."""
    lines = [line for line in stderr.strip().splitlines() if line.startswith("emtrack: error:")]
    assert "Traceback" not in stderr and len(lines) == 1, stderr
    return lines[0]


# --------------------------------------------------------------------------------------------
# track --out
# --------------------------------------------------------------------------------------------


def test_track_file_to_a_trailing_slash_is_an_error(tmp_path: Path, capsys) -> None:
    det = write_sequence(tmp_path / "seqs", "SEQ")
    out = tmp_path / "odir"
    assert main(["track", "--det", str(det), "--out", f"{out}/"]) == 2
    line = error_line(capsys.readouterr().err)
    assert "is a folder, and --det is one det file" in line
    assert f"--out {out}/SEQ.txt" in line
    assert not out.exists()


def test_track_file_to_an_existing_folder_is_an_error(tmp_path: Path, capsys) -> None:
    det = write_sequence(tmp_path / "seqs", "SEQ")
    (tmp_path / "odir").mkdir()
    assert main(["track", "--det", str(det), "--out", str(tmp_path / "odir")]) == 2
    assert "give the result file's name" in error_line(capsys.readouterr().err)
    assert list((tmp_path / "odir").iterdir()) == []


def test_track_folder_to_a_file_name_is_an_error(tmp_path: Path, capsys) -> None:
    write_sequence(tmp_path / "seqs", "SEQ")
    out = tmp_path / "f.txt"
    assert main(["track", "--det", str(tmp_path / "seqs"), "--out", str(out)]) == 2
    line = error_line(capsys.readouterr().err)
    assert "--out must be a folder" in line and f"(--out {out}/)" in line
    assert not out.exists()


def test_track_folder_to_an_existing_folder_without_slash(tmp_path: Path) -> None:
    write_sequence(tmp_path / "seqs", "A")
    write_sequence(tmp_path / "seqs", "B")
    (tmp_path / "out").mkdir()
    assert (
        main(["-q", "track", "--det", str(tmp_path / "seqs"), "--out", str(tmp_path / "out")]) == 0
    )
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["A.txt", "B.txt"]


def test_track_to_stdout_is_the_result_file(tmp_path: Path, capsys) -> None:
    det = write_sequence(tmp_path / "seqs", "SEQ", num_frames=12)
    assert main(["-q", "track", "--det", str(det), "--out", "-"]) == 0
    printed = capsys.readouterr().out
    assert main(["-q", "track", "--det", str(det), "--out", str(tmp_path / "r.txt")]) == 0
    assert printed == (tmp_path / "r.txt").read_text()
    assert len(read_mot(tmp_path / "r.txt")) > 0
    assert not Path("-").exists()


def test_track_folder_of_one_sequence_to_stdout(tmp_path: Path, capsys) -> None:
    write_sequence(tmp_path / "seqs", "ONLY")
    assert main(["-q", "track", "--det", str(tmp_path / "seqs"), "--out", "-"]) == 0
    assert capsys.readouterr().out.startswith("1,")


def test_track_several_sequences_to_stdout_is_an_error(tmp_path: Path, capsys) -> None:
    write_sequence(tmp_path / "seqs", "A")
    write_sequence(tmp_path / "seqs", "B")
    assert main(["track", "--det", str(tmp_path / "seqs"), "--out", "-"]) == 2
    captured = capsys.readouterr()
    line = error_line(captured.err)
    assert "writes one sequence to stdout" in line and "holds 2" in line and "--out out/" in line
    assert captured.out == ""


# --------------------------------------------------------------------------------------------
# eval of one sequence
# --------------------------------------------------------------------------------------------


@pytest.fixture
def tracked(tmp_path: Path) -> tuple[Path, Path]:
    """A folder of two sequences and a folder of their results."""
    write_sequence(tmp_path / "seqs", "A", num_frames=12)
    write_sequence(tmp_path / "seqs", "B", num_frames=12)
    assert main(["-q", "track", "--det", str(tmp_path / "seqs"), "--out", f"{tmp_path}/res/"]) == 0
    return tmp_path / "seqs", tmp_path / "res"


def _hota_of(table: str, name: str) -> str:
    row = next(line for line in table.splitlines() if line.split()[:1] == [name])
    return row.split()[1]


def test_eval_one_sequence_and_its_result_file(tracked: tuple[Path, Path], capsys) -> None:
    seqs, results = tracked
    assert main(["eval", "--gt", str(seqs), "--results", str(results)]) == 0
    folder_table = capsys.readouterr().out
    assert main(["eval", "--gt", str(seqs / "A"), "--results", str(results / "A.txt")]) == 0
    one_table = capsys.readouterr().out
    assert "B" not in [line.split()[0] for line in one_table.splitlines() if line.strip()]
    assert _hota_of(one_table, "A") == _hota_of(folder_table, "A")
    # A results folder with <seq>.txt works for one sequence's --gt too.
    assert main(["eval", "--gt", str(seqs / "A"), "--results", str(results)]) == 0
    assert _hota_of(capsys.readouterr().out, "A") == _hota_of(folder_table, "A")


def test_eval_result_file_against_a_folder_is_an_error(tracked, capsys) -> None:
    seqs, results = tracked
    assert main(["eval", "--gt", str(seqs), "--results", str(results / "A.txt")]) == 2
    line = error_line(capsys.readouterr().err)
    assert "--gt must be that sequence's folder" in line and f"--gt {seqs / 'A'}" in line


def test_eval_missing_result_of_one_sequence(tracked, capsys) -> None:
    seqs, results = tracked
    assert main(["eval", "--gt", str(seqs / "A"), "--results", str(results / "X.txt")]) == 2
    assert "result file not found" in error_line(capsys.readouterr().err)


# --------------------------------------------------------------------------------------------
# Usage errors and help texts
# --------------------------------------------------------------------------------------------


def test_misspelled_flag_gets_a_suggestion_and_the_subcommand_usage(capsys) -> None:
    assert main(["track", "--det", "d.txt", "--out", "o.txt", "--ofline"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: emtrack track ")
    assert "emtrack track: error: unrecognized arguments: --ofline (did you mean --offline?)" in err


def test_misspelled_flag_of_a_nested_subcommand(capsys) -> None:
    assert main(["bench", "track", "root", "--trakers", "sort"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: emtrack bench track ")
    assert "did you mean --trackers?" in err


def test_unknown_flag_without_a_close_option(capsys) -> None:
    assert main(["eval", "--gt", "g", "--results", "r", "--zzzzzz"]) == 2
    err = capsys.readouterr().err
    assert "unrecognized arguments: --zzzzzz" in err and "did you mean" not in err


def test_misspelled_subcommand_and_choice_get_suggestions(capsys) -> None:
    assert main(["trak"]) == 2
    assert "did you mean 'track'?" in capsys.readouterr().err
    assert main(["track", "--det", "d", "--out", "o", "--association", "iuo"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: emtrack track ") and "did you mean 'iou'?" in err


def _help_entries(argv: list[str], capsys) -> dict[str, str]:
    """Each option's help text (joined lines) from ``argv + ['--help']``."""
    assert main([*argv, "--help"]) == 0
    text = capsys.readouterr().out
    entries: dict[str, str] = {}
    current = None
    for line in text.splitlines():
        match = re.match(r"^  (-\S+)", line)
        if match:
            current = match.group(1).rstrip(",")
            entries[current] = line
        elif current and line.startswith("    "):
            entries[current] += " " + line.strip()
        else:
            current = None
    return entries


def test_switches_show_no_default(capsys) -> None:
    entries = _help_entries(["train"], capsys)
    assert "keep Q, R" in entries["--no-learn-noise"]
    assert "(default:" not in entries["--no-learn-noise"]
    assert "(default:" not in entries["--float64"]
    assert "(default: 10)" in entries["--epochs"]  # options with values keep theirs
    assert "(default: auto)" in entries["--init"]


def test_train_help_without_torch() -> None:
    """A light install (no torch) prints the train options with their defaults and choices:
    TrainConfig and its Literal choice types are torch-free."""
    command = [sys.executable, "-c", BLOCK_TORCH + RUN_MAIN, "train", "--help"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    text = " ".join(done.stdout.split())
    assert "number of epochs (default: 10)" in text
    assert "--lr-schedule {constant,cosine}" in text
    assert "--objective {smoothed,filtered,innovations}" in text
    assert "--association {chain,predicted}" in text
    assert "--init auto|shipped|scratch|FILE" in text


def test_missing_extra_names_command_and_extra() -> None:
    args = argparse.Namespace(command="bench", bench_command="train")
    error = ModuleNotFoundError("No module named 'torch'", name="torch")
    assert missing_extra_message(error, args) == (
        "emtrack bench train needs PyTorch, which is not installed: pip install "
        "'emtrack[train]' (or 'emtrack[dev]' for everything)"
    )
    other = ModuleNotFoundError("No module named 'foo'", name="foo")
    assert missing_extra_message(other, argparse.Namespace(command="x")) == "No module named 'foo'"


def test_train_without_torch_is_one_line_exit_1(tmp_path: Path) -> None:
    """A fresh interpreter that cannot import torch (tests/test_light_install.py does it with
    a real install)."""
    command = [sys.executable, "-c", BLOCK_TORCH + RUN_MAIN, "train", "--synthetic", "1"]
    done = subprocess.run(
        [*command, "--out", "x.pt"], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 1, done.stderr
    line = error_line(done.stderr)
    assert line.startswith("emtrack: error: emtrack train needs PyTorch")
    assert "pip install 'emtrack[train]'" in line
    assert not (tmp_path / "x.pt").exists()


def test_only_training_modules_need_torch() -> None:
    """Every module of emtrack imports without torch, except the training side's (the
    training settings, emtrack.train.config, and the checkpoint reader,
    emtrack.model.checkpoint, are torch-free)."""
    probe = (
        BLOCK_TORCH
        + """
import importlib, pkgutil, emtrack
failed = []
for module in pkgutil.walk_packages(emtrack.__path__, "emtrack."):
    try:
        importlib.import_module(module.name)
    except ImportError:
        failed.append(module.name)
print(" ".join(sorted(failed)))
"""
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [
        "emtrack.bench.accuracy_bench",
        "emtrack.bench.train_bench",
        "emtrack.model.dense",
        "emtrack.model.kalman",
        "emtrack.model.loss",
        "emtrack.model.network",
        "emtrack.model.sinkhorn",
        "emtrack.train.accuracy",
        "emtrack.train.adapt",
        "emtrack.train.checkpoint",
        "emtrack.train.clips",
        "emtrack.train.data",
        "emtrack.train.distributed",
        "emtrack.train.heldout",
        "emtrack.train.init",
        "emtrack.train.trainer",
        "emtrack.train.verdict",
    ]


@pytest.mark.parametrize("option", ["--out", "--export"])
def test_train_file_options_given_a_folder(option: str, tmp_path: Path, capsys) -> None:
    argv = ["train", "--synthetic", "1", "--out", str(tmp_path / "x.pt")]
    argv += [option, f"{tmp_path}/runs/"]
    assert main(argv) == 2
    assert f"{option} is a folder; give the file's name" in error_line(capsys.readouterr().err)
    assert not (tmp_path / "runs").exists()


# --------------------------------------------------------------------------------------------
# Examples run as printed from the repository root
# --------------------------------------------------------------------------------------------

#: Options whose value is a file or folder the command reads, and those it writes.
_INPUTS = ("--det", "--gt", "--seqinfo", "--result", "--results", "--model", "--images", "--init")
_OUTPUTS = ("--out", "--export", "--sheet", "--json", "--plot", "--results-dir")
#: The pages of the documentation site whose shell examples are checked with the README's.
_DOC_PAGES = sorted((REPO / "docs").glob("*.md"))
#: Where an example's command starts: the installed script, the bare name of the help texts,
#: or ``python -m emtrack`` under torchrun.
_COMMAND_START = re.compile(r"(?:^|\s)(?:\.venv/bin/emtrack|-m emtrack|^emtrack)\s")
#: A shell variable of a loop (``$seed``): the examples are checked with it set to 0.
_SHELL_VARIABLE = re.compile(r"\$\{?\w+\}?")


def _shell_blocks(markdown: str) -> str:
    """The text of the ``bash`` code blocks of a Markdown page."""
    return "\n".join(re.findall(r"^```bash\n(.*?)^```", markdown, flags=re.DOTALL | re.MULTILINE))


def _commands_in(where: str, text: str) -> list[tuple[str, list[str]]]:
    """``(where, words after 'emtrack')`` of every emtrack command line of ``text``."""
    commands = []
    for line in text.replace("\\\n", " ").splitlines():
        line = line.split(" #", 1)[0].split("|", 1)[0].strip()
        if line.startswith("#"):
            continue
        match = _COMMAND_START.search(line)
        if match:
            words = shlex.split(_SHELL_VARIABLE.sub("0", line[match.end() :]))
            commands.append((where, words))
    return commands


def _example_commands() -> list[tuple[str, list[str]]]:
    """Every emtrack command in the --help epilogs, the README's and the docs pages' shell
    blocks, with where it is (``emtrack ... --help``, ``README``, ``docs/<page>.md``)."""
    commands = []
    parser = build_parser()
    stack = [("emtrack", parser)]
    while stack:
        name, current = stack.pop()
        commands += _commands_in(f"{name} --help", current.epilog or "")
        for action in current._actions:
            if isinstance(action, argparse._SubParsersAction):
                stack += [(f"{name} {n}", p) for n, p in action.choices.items()]
    commands += _commands_in("README", _shell_blocks((REPO / "README.md").read_text()))
    for page in _DOC_PAGES:
        where = f"docs/{page.name}"
        commands += _commands_in(where, _shell_blocks(page.read_text()))
    return commands


def _values(words: list[str], options: tuple[str, ...]) -> list[str]:
    return [words[i + 1] for i, word in enumerate(words[:-1]) if word in options]


def _writes_where_allowed(where: str, words: list[str], value: str) -> bool:
    """Examples write to out/ and runs/ (or stdout); the benchmark pages' commands also
    rewrite the benchmark records in docs/bench/, and the multi-machine examples a shared
    absolute folder."""
    if value == "-" or value.startswith(("out/", "runs/")):
        return True
    if where.startswith("docs/") and words[0] == "bench":
        return value.startswith("docs/bench/") and value.endswith(".json")
    return where.startswith("docs/") and value.startswith("/")


def test_examples_parse_and_read_what_exists_or_an_example_writes() -> None:
    commands = _example_commands()
    wheres = {where for where, _ in commands}
    assert len(commands) > 60
    assert {"README", "docs/usage.md", "docs/training.md", "docs/benchmarks.md"} <= wheres
    written = {
        Path(value).as_posix().rstrip("/")
        for _, words in commands
        for value in _values(words, _OUTPUTS)
    }
    parser = build_parser()
    for where, words in commands:
        try:
            parser.parse_args(words)
        except SystemExit:
            pytest.fail(f"{where}: emtrack {shlex.join(words)} is not a valid command")
        for value in _values(words, _OUTPUTS):
            assert _writes_where_allowed(where, words, value), (where, words)
        for value in _values(words, _INPUTS) + [w for w in words if w.endswith(".json")]:
            if value.startswith(("../shared/data/", "/")):
                continue  # the data are checked below; absolute paths are the user's
            assert value in ("auto", "shipped", "scratch") or (
                Path(value).as_posix().rstrip("/") in written or (REPO / value).exists()
            ), f"{where}: {value} is neither in the repository nor written by an example"


def test_example_data_paths_exist(shared_data: Path) -> None:
    for where, words in _example_commands():
        for word in words:
            if word.startswith("../shared/data/"):
                assert (REPO / word).exists(), f"{where}: {word} does not exist"


def test_examples_do_not_overwrite_the_shipped_pictures() -> None:
    for where, words in _example_commands():
        assert not any(word.startswith("docs/img/") for word in words), (where, words)


def test_readme_keeps_the_set_up_and_test_commands() -> None:
    """CI and outside tools run the README's two set-up commands as printed."""
    readme = (REPO / "README.md").read_text()
    assert "bash scripts/setup.sh && .venv/bin/emtrack demo" in readme
    assert "bash scripts/test.sh" in readme


def test_readme_track_and_eval_examples_run_as_printed(
    shared_data: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    """The README's first track command and its one-sequence eval, from a copy of the root."""
    root = tmp_path / "repo"
    root.mkdir()
    (tmp_path / "shared").symlink_to(shared_data.parent)
    monkeypatch.chdir(root)
    readme = [words for where, words in _example_commands() if where == "README"]
    track = next(words for words in readme if words[0] == "track" and "-" not in words)
    evaluate = next(words for words in readme if words[0] == "eval" and words[-1].endswith(".txt"))
    assert main(["-q", *track]) == 0
    assert main(evaluate) == 0
    assert "HOTA" in capsys.readouterr().out
