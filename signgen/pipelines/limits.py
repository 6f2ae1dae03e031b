"""Limits on sampling settings, shared by the pipeline and the command line's checks
(``signgen.cli.options``); a light module, so that parsing options imports no torch."""

# Guidance scales beyond this overflow the prediction to non-finite values (1e30) or
# saturate every pixel; FPDM and CFLD use scales up to about 5.
MAX_GUIDANCE = 30.0
# The most denoising steps the command line takes; a model also caps them at its
# training noise schedule's num_train_timesteps.
MAX_STEPS = 1000
# Random seeds: what torch.Generator.manual_seed and numpy take.
MAX_SEED = 2**63 - 1
