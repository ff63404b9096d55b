"""Self-contained TorchScript export: the model, its own neighbour list, its unit handling and
its metadata in one file that ``torch.jit.load`` runs without eqff, e3nn or vesin installed."""
from eqff.export.torchscript import (
    EXPORT_FORMAT,
    METADATA_FILE,
    ExportedPotential,
    export_checkpoint,
    export_potential,
    is_exported,
    load_exported,
    read_metadata,
)

__all__ = ["EXPORT_FORMAT", "METADATA_FILE", "ExportedPotential", "export_checkpoint", "export_potential",
           "is_exported", "load_exported", "read_metadata"]
