"""What a user runs: pretraining, few-label training, evaluation of pretrained runs, diagnosis,
studies, ablation tables, benchmarks, and writing the phantom. Each module is one workflow; the
command line calls one function of one of them per command."""
