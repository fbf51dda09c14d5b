"""A device added from outside: examples/custom_accelerator is installed as its own package and trains
through Trainer(accelerator="xpu-sim"), found by entry point, with no edit to fulmen."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("hatchling")
PACKAGE = Path(__file__).resolve().parent.parent / "examples" / "custom_accelerator"

_SCRIPT = textwrap.dedent(
    """
    import torch
    from torch.utils.data import DataLoader, TensorDataset
    import fulmen as L
    from fulmen_accelerators.testing import check_accelerator
    from xpu_sim import XPUSimAccelerator

    check_accelerator(XPUSimAccelerator())

    class Net(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(3, 1)
            self.autocast_dtypes = set()
        def training_step(self, batch, batch_idx):
            out = self.layer(batch[0])
            self.autocast_dtypes.add(str(out.dtype))
            return torch.nn.functional.mse_loss(out.float(), batch[1])
        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    data = DataLoader(TensorDataset(torch.randn(16, 3), torch.randn(16, 1)), batch_size=4)
    for precision in ("32-true", "bf16-mixed"):
        model = Net()
        trainer = L.Trainer(accelerator="xpu-sim", precision=precision, max_epochs=1, logger=False,
                            enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
        trainer.fit(model, data)
        print(precision, type(trainer.accelerator).__name__, trainer.global_step, sorted(model.autocast_dtypes),
              trainer.accelerator.setup_calls)
    try:
        L.Trainer(accelerator="xpu-sim", precision="16-mixed")
    except Exception as error:
        print("refused:", error)
    """
)

# DDP over gloo on the simulated device: two processes, the second started by the Trainer (which
# re-runs this script, so it holds nothing but the DDP run).
_DDP_SCRIPT = textwrap.dedent(
    """
    import torch
    from torch.utils.data import DataLoader, TensorDataset
    import fulmen as L

    class Net(L.LightningModule):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.layer = torch.nn.Linear(3, 1)
        def training_step(self, batch, batch_idx):
            return torch.nn.functional.mse_loss(self.layer(batch[0]), batch[1])
        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    data = DataLoader(TensorDataset(torch.randn(16, 3), torch.randn(16, 1)), batch_size=4)
    ddp = L.Trainer(accelerator="xpu-sim", devices=2, strategy="ddp", max_epochs=1, logger=False,
                    enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    model = Net()
    ddp.fit(model, data)
    weights = ddp.strategy.all_gather(model.layer.weight.detach())
    import sys
    # one write per rank, so the two processes' lines do not interleave on the shared pipe
    sys.stdout.write(f"ddp {ddp.global_rank} {ddp.world_size} {ddp.global_step} {bool(torch.equal(weights[0], weights[1]))}\\n")
    sys.stdout.flush()
    """
)


def test_xpu_sim_installs_and_trains_by_name(tmp_path: Path) -> None:
    """After pip-installing the example package, its accelerator trains by name in 32-bit, bf16-mixed and
    with DDP on gloo, passes the conformance kit, and a precision it does not list is refused."""
    target = tmp_path / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(PACKAGE)],
        capture_output=True, text=True,
    )
    assert install.returncode == 0, install.stderr[-2000:]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), os.environ.get("PYTHONPATH", "")])}
    script = tmp_path / "train_xpu_sim.py"
    script.write_text(_SCRIPT)
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=300)
    ddp_script = tmp_path / "ddp_xpu_sim.py"  # a file: DDP re-runs it for the second process
    ddp_script.write_text(_DDP_SCRIPT)
    ddp = subprocess.run([sys.executable, str(ddp_script)], capture_output=True, text=True, env=env, timeout=300)
    assert ddp.returncode == 0, ddp.stderr[-2000:]
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert "32-true XPUSimAccelerator 4 ['torch.float32'] [device(type='cpu')]" in lines
    assert "bf16-mixed XPUSimAccelerator 4 ['torch.bfloat16'] [device(type='cpu')]" in lines
    assert any(line.startswith("refused:") and "'16-mixed' is not supported by the 'xpu-sim'" in line for line in lines)
    ddp_lines = ddp.stdout.splitlines()
    assert "ddp 0 2 2 True" in ddp_lines and "ddp 1 2 2 True" in ddp_lines  # half the batches each, same weights
