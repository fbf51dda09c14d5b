"""fulmen-export: ONNX and ``torch.export`` artifacts, verified against the module before use.

Importing this package imports neither onnx nor onnxruntime; the ONNX exporter imports them when it
runs (install them with ``pip install 'fulmen-export[onnx]'``).
"""

from fulmen_export._callback import ExportCallback
from fulmen_export._checkpoint import import_module_class, load_module_from_checkpoint
from fulmen_export._errors import ExportError, ExportVerificationError, InvalidInputSampleError
from fulmen_export._onnx import ONNXExporter
from fulmen_export._torch_export import TorchExportExporter
from fulmen_export._version import __version__

__all__ = [
    "ExportCallback",
    "ExportError",
    "ExportVerificationError",
    "InvalidInputSampleError",
    "ONNXExporter",
    "TorchExportExporter",
    "__version__",
    "import_module_class",
    "load_module_from_checkpoint",
]
