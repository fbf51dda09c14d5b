"""The model summary: the numbers of ``summarize`` and the table text, compared with Lightning 2.6's."""

from __future__ import annotations

import math
import warnings
from typing import Any

import pytest
import torch
from fulmen_core import Callback, LightningModule
from fulmen_loops import LoopSettings, Runner
from torch.utils.data import DataLoader, TensorDataset

from fulmen_callbacks import ModelSummary, Summary, get_human_readable_count, summarize


class Reference(LightningModule):
    """The module whose tables Lightning 2.6.6 printed for ``LIGHTNING_TABLES``."""

    def __init__(self, example: bool) -> None:
        super().__init__()
        inner = torch.nn.Sequential(torch.nn.Linear(8, 1000), torch.nn.Dropout())
        self.net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), inner)
        self.net[0].requires_grad_(False)
        self.bn = torch.nn.BatchNorm1d(1000).eval()
        self.unused = torch.nn.Linear(30, 40000)
        if example:
            self.example_input_array = torch.zeros(2, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.bn(self.net(x))
        return out


# str(lightning.pytorch.utilities.model_summary.summarize(Reference(example), max_depth=depth)) from
# lightning 2.6.6 with torch 2.13.0, keyed by (example, depth). Trailing spaces are stripped here
# (the rows' widths are checked separately by test_table_rows_are_padded_to_one_width).
LIGHTNING_TABLES: dict[tuple[bool, int], str] = {
    (False, 0): """\
  | Name         | Type | Params | Mode | FLOPs
-----------------------------------------------------
  | other params | n/a  | 1.3 M  | n/a  | n/a
-----------------------------------------------------
1.3 M     Trainable params
40        Non-trainable params
1.3 M     Total params
5.004     Total estimated model params size (MB)
7         Modules in train mode
1         Modules in eval mode
0         Total Flops""",
    (False, 1): """\
  | Name   | Type        | Params | Mode  | FLOPs
-------------------------------------------------------
0 | net    | Sequential  | 9.0 K  | train | 0
1 | bn     | BatchNorm1d | 2.0 K  | eval  | 0
2 | unused | Linear      | 1.2 M  | train | 0
-------------------------------------------------------
1.3 M     Trainable params
40        Non-trainable params
1.3 M     Total params
5.004     Total estimated model params size (MB)
7         Modules in train mode
1         Modules in eval mode
0         Total Flops""",
    (False, 2): """\
  | Name   | Type        | Params | Mode  | FLOPs
-------------------------------------------------------
0 | net    | Sequential  | 9.0 K  | train | 0
1 | net.0  | Linear      | 40     | train | 0
2 | net.1  | ReLU        | 0      | train | 0
3 | net.2  | Sequential  | 9.0 K  | train | 0
4 | bn     | BatchNorm1d | 2.0 K  | eval  | 0
5 | unused | Linear      | 1.2 M  | train | 0
-------------------------------------------------------
1.3 M     Trainable params
40        Non-trainable params
1.3 M     Total params
5.004     Total estimated model params size (MB)
7         Modules in train mode
1         Modules in eval mode
0         Total Flops""",
    (False, -1): """\
  | Name    | Type        | Params | Mode  | FLOPs
--------------------------------------------------------
0 | net     | Sequential  | 9.0 K  | train | 0
1 | net.0   | Linear      | 40     | train | 0
2 | net.1   | ReLU        | 0      | train | 0
3 | net.2   | Sequential  | 9.0 K  | train | 0
4 | net.2.0 | Linear      | 9.0 K  | train | 0
5 | net.2.1 | Dropout     | 0      | train | 0
6 | bn      | BatchNorm1d | 2.0 K  | eval  | 0
7 | unused  | Linear      | 1.2 M  | train | 0
--------------------------------------------------------
1.3 M     Trainable params
40        Non-trainable params
1.3 M     Total params
5.004     Total estimated model params size (MB)
7         Modules in train mode
1         Modules in eval mode
0         Total Flops""",
    (True, 0): """\
  | Name         | Type | Params | Mode | FLOPs | In sizes | Out sizes
----------------------------------------------------------------------------
  | other params | n/a  | 1.3 M  | n/a  | n/a   | n/a      | n/a
----------------------------------------------------------------------------
1.3 M     Trainable params
40        Non-trainable params
1.3 M     Total params
5.004     Total estimated model params size (MB)
7         Modules in train mode
1         Modules in eval mode
32.1 K    Total Flops""",
    (True, 1): """\
  | Name   | Type        | Params | Mode  | FLOPs  | In sizes  | Out sizes
--------------------------------------------------------------------------------
0 | net    | Sequential  | 9.0 K  | train | 32.1 K | [2, 4]    | [2, 1000]
1 | bn     | BatchNorm1d | 2.0 K  | eval  | 0      | [2, 1000] | [2, 1000]
2 | unused | Linear      | 1.2 M  | train | 0      | ?         | ?
--------------------------------------------------------------------------------
1.3 M     Trainable params
40        Non-trainable params
1.3 M     Total params
5.004     Total estimated model params size (MB)
7         Modules in train mode
1         Modules in eval mode
32.1 K    Total Flops""",
    (True, 2): """\
  | Name   | Type        | Params | Mode  | FLOPs  | In sizes  | Out sizes
--------------------------------------------------------------------------------
0 | net    | Sequential  | 9.0 K  | train | 32.1 K | [2, 4]    | [2, 1000]
1 | net.0  | Linear      | 40     | train | 128    | [2, 4]    | [2, 8]
2 | net.1  | ReLU        | 0      | train | 0      | [2, 8]    | [2, 8]
3 | net.2  | Sequential  | 9.0 K  | train | 32.0 K | [2, 8]    | [2, 1000]
4 | bn     | BatchNorm1d | 2.0 K  | eval  | 0      | [2, 1000] | [2, 1000]
5 | unused | Linear      | 1.2 M  | train | 0      | ?         | ?
--------------------------------------------------------------------------------
1.3 M     Trainable params
40        Non-trainable params
1.3 M     Total params
5.004     Total estimated model params size (MB)
7         Modules in train mode
1         Modules in eval mode
32.1 K    Total Flops""",
    (True, -1): """\
  | Name    | Type        | Params | Mode  | FLOPs  | In sizes  | Out sizes
---------------------------------------------------------------------------------
0 | net     | Sequential  | 9.0 K  | train | 32.1 K | [2, 4]    | [2, 1000]
1 | net.0   | Linear      | 40     | train | 128    | [2, 4]    | [2, 8]
2 | net.1   | ReLU        | 0      | train | 0      | [2, 8]    | [2, 8]
3 | net.2   | Sequential  | 9.0 K  | train | 32.0 K | [2, 8]    | [2, 1000]
4 | net.2.0 | Linear      | 9.0 K  | train | 32.0 K | [2, 8]    | [2, 1000]
5 | net.2.1 | Dropout     | 0      | train | 0      | [2, 1000] | [2, 1000]
6 | bn      | BatchNorm1d | 2.0 K  | eval  | 0      | [2, 1000] | [2, 1000]
7 | unused  | Linear      | 1.2 M  | train | 0      | ?         | ?
---------------------------------------------------------------------------------
1.3 M     Trainable params
40        Non-trainable params
1.3 M     Total params
5.004     Total estimated model params size (MB)
7         Modules in train mode
1         Modules in eval mode
32.1 K    Total Flops""",
}


def _stripped(text: str) -> list[str]:
    return [line.rstrip() for line in text.splitlines()]


def _fit_data() -> DataLoader[tuple[torch.Tensor, ...]]:
    return DataLoader(TensorDataset(torch.randn(8, 4), torch.randn(8, 1)), batch_size=4)


class Tiny(LightningModule):
    """A small regressor for fits; counts its forward calls."""

    def __init__(self, example: bool = True) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)
        self.forward_calls = 0
        if example:
            self.example_input_array = torch.zeros(3, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.forward_calls += 1
        out: torch.Tensor = self.layer(x)
        return out

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        # fulmen-loops 0.1.0 skips the input cast of "-true" precisions on CPU (reported); cast here.
        x, y = x.to(self.dtype), y.to(self.dtype)
        return torch.nn.functional.mse_loss(self(x), y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


class FakeTrainer:
    """The few Trainer attributes ModelSummary reads."""

    def __init__(self, is_global_zero: bool) -> None:
        self.is_global_zero = is_global_zero


@pytest.mark.parametrize(("example", "depth"), sorted(LIGHTNING_TABLES))
def test_table_matches_lightning(example: bool, depth: int) -> None:
    """For every depth, with and without an example input, the table is Lightning 2.6's line for line."""
    table = str(summarize(Reference(example), max_depth=depth))
    assert _stripped(table) == _stripped(LIGHTNING_TABLES[(example, depth)])


def test_table_rows_are_padded_to_one_width() -> None:
    """The header and every row are padded to one width, six characters short of the rules (Lightning's layout)."""
    lines = str(summarize(Reference(True), max_depth=-1)).splitlines()
    first, second = [index for index, line in enumerate(lines) if line and set(line) == {"-"}]
    table = [lines[0], *lines[first + 1 : second]]
    assert {len(line) for line in table} == {len(lines[first]) - 6}
    assert lines[2].endswith("| [2, 1000]") and lines[9].endswith("| ?        ")


def test_summary_numbers() -> None:
    """summarize returns exact counts, rows, modes, shapes, size and FLOPs as numbers."""
    summary = summarize(Reference(True))
    net = (4 * 8 + 8) + (8 * 1000 + 1000)
    total = net + 2 * 1000 + (30 * 40000 + 40000)
    assert isinstance(summary, Summary)
    assert summary.total_parameters == total
    assert summary.trainable_parameters == total - 40
    assert summary.non_trainable_parameters == 40
    assert summary.layer_names == ["net", "bn", "unused"]
    assert summary.layer_types == ["Sequential", "BatchNorm1d", "Linear"]
    assert summary.param_nums == [net, 2000, 1_240_000]
    assert summary.training_modes == [True, False, True]
    assert summary.total_training_modes == {"train": 7, "eval": 1}
    assert summary.in_sizes == [[2, 4], [2, 1000], "?"]
    assert summary.out_sizes == [[2, 1000], [2, 1000], "?"]
    # A linear layer's matmul is 2*M*N*K FLOPs: 2*2*4*8 + 2*2*8*1000.
    assert [layer.flops for layer in summary.layers] == [32128, 0, 0]
    assert summary.total_flops == 32128
    assert summary.model_size == pytest.approx(total * 4 / 1e6)
    assert summary.leftover_parameters == 0
    assert summary.has_example_input and summary.max_depth == 1


def test_depth_zero_has_no_rows() -> None:
    """max_depth=0 gives no rows: every parameter is an "other params" one, totals unchanged."""
    summary = summarize(Reference(False), max_depth=0)
    assert summary.layers == ()
    assert summary.leftover_parameters == summary.total_parameters
    assert "other params" in str(summary)


@pytest.mark.parametrize("depth", [-2, 1.5, True, "1"])
def test_invalid_depth_is_rejected(depth: Any) -> None:
    """A depth that is not -1, 0 or a positive int raises ValueError naming the accepted values."""
    with pytest.raises(ValueError, match="max_depth"):
        summarize(Reference(False), max_depth=depth)
    with pytest.raises(ValueError, match="max_depth"):
        ModelSummary(max_depth=depth)


def test_forward_pass_restores_modes_and_leaves_no_trace() -> None:
    """The example forward runs in eval mode without autograd, then restores every mode and removes its hooks."""
    model = Reference(True)
    model.net[1].eval()
    before = [(name, sub.training) for name, sub in model.named_modules()]
    seen_training: list[bool] = []
    seen_grad: list[bool] = []

    def spy(module: torch.nn.Module, args: Any, output: Any) -> None:
        seen_training.append(module.training)
        seen_grad.append(torch.is_grad_enabled())

    handle = model.bn.register_forward_hook(spy)
    summarize(model, max_depth=-1)
    handle.remove()
    assert seen_training == [False] and seen_grad == [False]
    assert [(name, sub.training) for name, sub in model.named_modules()] == before
    assert all(not sub._forward_hooks for sub in model.modules())
    assert all(p.grad is None for p in model.parameters())


class Pair(torch.nn.Module):
    """A plain torch module taking two tensors and returning a tuple, with a root parameter and a shared layer."""

    def __init__(self) -> None:
        super().__init__()
        self.shared = torch.nn.Linear(3, 3)
        self.block = torch.nn.Sequential(self.shared, torch.nn.Tanh())
        self.scale = torch.nn.Parameter(torch.ones(5))

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.shared(self.shared(a)), b * self.scale


def test_plain_module_tuple_shapes_shared_layer_and_other_params() -> None:
    """A plain nn.Module works: tuple inputs/outputs give nested shapes, a shared layer shows once with its first call, and root parameters form the "other params" row at every depth."""
    model = Pair()
    # setattr: torch types Module.__setattr__ for tensors and modules only, and this is a tuple.
    setattr(model, "example_input_array", (torch.zeros(2, 3), torch.zeros(2, 5)))
    summary = summarize(model, max_depth=-1)
    assert summary.layer_names == ["shared", "block", "block.1"]
    assert summary.in_sizes[0] == [2, 3] and summary.out_sizes[0] == [2, 3]
    assert summary.leftover_parameters == 5
    assert summary.total_parameters == 12 + 5
    for depth in (1, -1):
        rows = str(summarize(model, max_depth=depth)).splitlines()
        assert any(row.startswith("  | other params | n/a") and "| 5  " in row for row in rows)


def test_nested_output_shapes() -> None:
    """A layer returning a tuple shows a list of shapes, and a dict example is passed as keyword arguments."""

    class Split(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return x[:, :1], x[:, 1:]

    class Holder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.split = Split()

        def forward(self, *, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            first, second = self.split(x)
            return first, second

    model = Holder()
    setattr(model, "example_input_array", {"x": torch.zeros(4, 3)})  # a dict: see the setattr above
    summary = summarize(model)
    assert summary.in_sizes == [[4, 3]]
    assert summary.out_sizes == [[[4, 1], [4, 2]]]


def test_lazy_parameters_count_zero_with_a_warning() -> None:
    """Uninitialized lazy parameters count 0 and warn; an example input materializes them first."""
    model = torch.nn.Sequential(torch.nn.LazyLinear(2))
    with pytest.warns(UserWarning, match="lazy"):
        summary = summarize(model)
    assert summary.total_parameters == 0
    model.example_input_array = torch.zeros(1, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert summarize(model).total_parameters == 3 * 2 + 2


def test_model_size_uses_the_parameters_element_size() -> None:
    """The size in MB is parameters times their element size: 8 bytes each for a float64 model."""
    model = torch.nn.Linear(100, 100).double()
    assert summarize(model).model_size == pytest.approx(10100 * 8 / 1e6)


@pytest.mark.parametrize(
    ("number", "text"),
    [
        (0, "0  "),
        (7, "7  "),
        (123, "123  "),
        (999, "999  "),
        (1000, "1.0 K"),
        (1049, "1.0 K"),
        (1050, "1.1 K"),
        (1234, "1.2 K"),
        (99_949, "99.9 K"),
        (99_950, "100.0 K"),
        (999_999, "999 K"),
        (1_000_000, "1.0 M"),
        (2_000_000, "2.0 M"),
        (3_000_000_000, "3.0 B"),
        (400_000_000_000_000, "400 T"),
        (5_000_000_000_000_000, "5,000 T"),
    ],
)
def test_human_readable_count_matches_lightning(number: int, text: str) -> None:
    """Counts are abbreviated exactly as Lightning's get_human_readable_count does, quirks included."""
    assert get_human_readable_count(number) == text


def test_human_readable_count_rejects_negative() -> None:
    """A negative count is an error, not a garbled string."""
    with pytest.raises(ValueError, match="negative"):
        get_human_readable_count(-1)


def test_callback_prints_the_table_once_when_fit_starts(capsys: pytest.CaptureFixture[str]) -> None:
    """ModelSummary prints one table (after a blank line) when fit starts, with the example's shapes."""
    callback: Callback = ModelSummary()
    runner = Runner(callbacks=[callback], settings=LoopSettings(max_epochs=1, num_sanity_val_steps=0))
    runner.fit(Tiny(), _fit_data())
    out = capsys.readouterr().out
    assert out.startswith("\n  | Name  | Type   | Params | Mode  | FLOPs | In sizes | Out sizes\n")
    assert "0 | layer | Linear | 5      | train | 24    | [3, 4]   | [3, 1]" in out
    assert out.count("Trainable params") == 1
    assert "5         Total params\n" in out


def test_callback_depth_zero_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    """ModelSummary(max_depth=0) prints nothing and runs no forward pass, as Lightning's."""
    module = Tiny()
    ModelSummary(max_depth=0).on_fit_start(FakeTrainer(is_global_zero=True), module)
    assert capsys.readouterr().out == ""
    assert module.forward_calls == 0


def test_callback_prints_on_global_zero_only(capsys: pytest.CaptureFixture[str]) -> None:
    """Other processes print nothing; they still run the example forward (a sharded model needs every process), and skip all work without one."""
    with_example, without_example = Tiny(example=True), Tiny(example=False)
    callback = ModelSummary()
    callback.on_fit_start(FakeTrainer(is_global_zero=False), with_example)
    callback.on_fit_start(FakeTrainer(is_global_zero=False), without_example)
    assert capsys.readouterr().out == ""
    assert with_example.forward_calls == 1 and without_example.forward_calls == 0


def test_callback_summary_under_bf16_true(capsys: pytest.CaptureFixture[str]) -> None:
    """Under precision="bf16-true" the example input is cast like a batch and the size counts 2-byte parameters."""
    runner = Runner(
        callbacks=[ModelSummary()],
        settings=LoopSettings(max_epochs=1, num_sanity_val_steps=0, limit_train_batches=1),
        precision="bf16-true",
    )
    runner.fit(Tiny(), _fit_data())
    out = capsys.readouterr().out
    assert "[3, 4]   | [3, 1]" in out
    assert f"{5 * 2 / 1e6:,.3f}     Total estimated model params size (MB)" in out


def test_example_goes_through_the_transfer_hooks() -> None:
    """The example input passes through on_before_batch_transfer, as a real batch would."""

    class FromDict(Tiny):
        def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
            return batch["x"] if isinstance(batch, dict) else batch

    module = FromDict()
    module.example_input_array = {"x": torch.zeros(6, 4)}
    summary = summarize(module)
    assert summary.in_sizes == [[6, 4]]
    assert not math.isnan(summary.model_size)
