"""A bench whose one run (two levels of about 20–35 s each on one CPU; 400 epochs: at 250 a fast CPU finished in 26 s, before the signal) outlasts a one-minute Slurm time limit: the tests
let Slurm stop it, and check that submitit requeues it and that it resumes from its in-level snapshot."""
from pruning_repro.config import Bench, DataSpec, ModelSpec, PruneSpec, TrainSpec, register

register(Bench("slow_mnist1d", DataSpec("mnist1d", n_val=200, n_generated=4000), ModelSpec("lenet", width=2.0),
               TrainSpec(400, 64, "adam", 1e-3), PruneSpec(levels=1, rewind_epoch=0), (0.0,), "M-LeNet",
               "one LeNet run of about 40–70 s of training on one CPU (tests: requeued after a time limit)", embedded=True))
