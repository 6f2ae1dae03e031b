"""Limits on sampling settings, shared by the pipeline and the command line's checks
(``signgen.cli.options``); a light module, so that parsing options imports no torch."""

# Guidance scales beyond this overflow the prediction to non-finite values (1e30) or
# saturate every pixel; FPDM and CFLD use scales up to about 5.
MAX_GUIDANCE = 30.0
# The most denoising steps the command line takes; a model also caps them at its
# training noise schedule's num_train_timesteps.
MAX_STEPS = 1000
# The deflickering filter's width in frames, a Gaussian's sigma (pipeline setting deflicker, render
# --deflicker): a second at 25 fps; the filter looks twice as far.
MAX_DEFLICKER_SIGMA = 25.0
# Random seeds: what torch.Generator.manual_seed and numpy take.
MAX_SEED = 2**63 - 1

# The torch device types a pipeline can run on (what ``--device`` takes: cpu, cuda, cuda:N, mps).
DEVICE_TYPES = ("cpu", "cuda", "mps", "xpu")


def check_device(requested) -> str:
    """``requested`` (``--device``) as a torch device name this process can use, or one
    SigngenError line: a name torch does not know, a device type signgen does not run on,
    CUDA on a torch without it, or a GPU index beyond the ones there are. torch is
    imported only when called."""
    from signgen.errors import SigngenError

    text = str(requested).strip()
    shown = repr(text) if len(text) <= 40 else repr(text[:39] + "…")
    import torch

    try:
        device = torch.device(text)
    except (RuntimeError, ValueError, TypeError):
        raise SigngenError(f"no such device {shown}: use cpu, cuda, cuda:N or mps") from None
    if device.type not in DEVICE_TYPES:
        raise SigngenError(f"no such device {shown}: signgen runs on {', '.join(DEVICE_TYPES)}, not {device.type}")
    if device.type == "cpu":
        return "cpu"
    backend = getattr(torch, device.type, None) if device.type != "mps" else getattr(torch.backends, "mps", None)
    try:
        available = bool(backend is not None and backend.is_available())
        count = (int(backend.device_count()) if hasattr(backend, "device_count") else 1) if available else 0
    except (RuntimeError, AssertionError, AttributeError):
        available, count = False, 0
    if not available:
        raise SigngenError(f"no such device {shown}: this torch has no usable {device.type} device "
                           f"(not built with it, or no GPU or driver); use cpu")
    if device.index is not None and device.index >= count:
        raise SigngenError(f"no such device {shown}: there are {count} {device.type} device(s), "
                           f"{device.type}:0 to {device.type}:{count - 1}")
    return str(device)
