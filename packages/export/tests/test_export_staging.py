"""Tests of atomic artifact writes: all or nothing at the target path."""

from __future__ import annotations

from pathlib import Path

import pytest

from fulmen_export import ExportError
from fulmen_export._staging import staged_artifact


def test_staged_artifact_moves_the_file_and_its_side_files_into_place(tmp_path: Path) -> None:
    """On success the artifact and side files land next to the target; the staging dir is gone."""
    target = tmp_path / "sub" / "model.onnx"
    with staged_artifact(target) as staged:
        assert staged.name == "model.onnx" and staged.parent.parent == target.parent
        assert not target.exists()
        staged.write_text("graph")
        (staged.parent / "model.onnx.data").write_text("weights")
    assert target.read_text() == "graph"
    assert (target.parent / "model.onnx.data").read_text() == "weights"
    assert sorted(p.name for p in target.parent.iterdir()) == ["model.onnx", "model.onnx.data"]


def test_staged_artifact_leaves_nothing_when_the_block_fails(tmp_path: Path) -> None:
    """An error after a partial write leaves no file at the target and no temporary files."""
    target = tmp_path / "model.pt2"
    with pytest.raises(ValueError, match="verification failed"), staged_artifact(target) as staged:
        staged.write_text("partial")
        raise ValueError("verification failed")
    assert list(tmp_path.iterdir()) == []


def test_staged_artifact_keeps_an_existing_file_when_the_block_fails(tmp_path: Path) -> None:
    """A failed export never touches a file already at the target path."""
    target = tmp_path / "model.onnx"
    target.write_text("previous good artifact")
    with pytest.raises(ValueError), staged_artifact(target) as staged:
        staged.write_text("bad")
        raise ValueError("mismatch")
    assert target.read_text() == "previous good artifact"
    assert list(tmp_path.iterdir()) == [target]


def test_staged_artifact_refuses_a_directory_or_an_empty_write(tmp_path: Path) -> None:
    """A directory target and an exporter that wrote nothing are errors naming the path."""
    with (
        pytest.raises(ExportError, match="is a directory; pass a file path"),
        staged_artifact(tmp_path),
    ):
        pass
    target = tmp_path / "model.onnx"
    with pytest.raises(ExportError, match="wrote nothing"), staged_artifact(target):
        pass
    assert list(tmp_path.iterdir()) == []
