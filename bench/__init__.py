"""Speed benchmarks of pruning_repro: run `python -m bench` (or `make bench`); results land in `bench/results/`."""
