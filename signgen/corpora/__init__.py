"""Data: the RWTH-PHOENIX-Weather 2014T reader, the training samplers and their augmentation,
and SynthSign (the synthetic corpus in the PHOENIX layout) with its cartoon renderer."""
