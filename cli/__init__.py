"""The ``signgen`` command: argument handling and progress, nothing else."""
