"""Training throughput of the default model (eqff's Trainer with its default recipe: ace, float32,
batch 5, energy + force loss, the force term's double backward, AdamW, EMA) on rMD17 aspirin
frames: structures per second over one epoch, after a first epoch that warms up (kernels,
allocator). Validation is not timed."""
import os
import tempfile
import time

import ase.io

from common import Run
from structures import ASPIRIN_FRAMES


def run(suite: Run):
    from eqff.train.config import TrainConfig
    from eqff.train.trainer import Trainer

    frames = 10 if suite.quick else 400
    if not suite.has_time(60 if not suite.quick else 5):
        return [{"skipped": "time budget"}]
    with tempfile.TemporaryDirectory() as folder:
        train_file, valid_file = os.path.join(folder, "train.xyz"), os.path.join(folder, "valid.xyz")
        ase.io.write(train_file, ase.io.read(ASPIRIN_FRAMES, f":{frames}"))
        ase.io.write(valid_file, ase.io.read(ASPIRIN_FRAMES, f"{frames}:{frames + 5}"))
        config = TrainConfig(train_file=train_file, valid_file=valid_file, device=str(suite.device),
                             output=os.path.join(folder, "run"), max_epochs=2, progress=False,
                             hyperparameters=suite.hyperparameters("ace"),
                             threads=1 if suite.quick else None).validate()
        trainer = Trainer(config)
        trainer.start_time = time.time()
        epochs = []
        for _ in range(2):
            begin = time.perf_counter()
            trainer.train_epoch(None)
            if suite.device.type == "cuda":
                import torch

                torch.cuda.synchronize(suite.device)
            epochs.append(time.perf_counter() - begin)
            trainer.epoch += 1
    return [{"model": config.model, "structure": "aspirin", "atoms": 21, "batch_size": config.batch_size,
             "train_frames": frames, "dtype": config.dtype, "first_epoch_s": epochs[0], "epoch_s": epochs[1],
             "structures_per_s": frames / epochs[1]}]
