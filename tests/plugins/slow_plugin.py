"""A bench whose one run (two levels of about 20–35 s each on one CPU; 400 epochs: at 250 a fast CPU finished in 26 s, before the signal) outlasts a one-minute Slurm time limit: the tests
let Slurm stop it, and check that submitit requeues it and that it resumes from its in-level snapshot."""
from pruning_repro.config import Bench, DataSpec, ModelSpec, PruneSpec, TrainSpec, register

register(Bench(name="slow_mnist1d", data=DataSpec("mnist1d", n_val=200, n_generated=4000),
               model=ModelSpec("lenet", width=2.0), train=TrainSpec(epochs=400, batch_size=64, optimizer="adam", lr=1e-3),
               prune=PruneSpec(levels=1, rewind_epoch=0), noise_levels=(0.0,), family="M-LeNet",
               description="one LeNet run of about 40–70 s of training on one CPU (tests: requeued after a time limit)",
               embedded=True))
