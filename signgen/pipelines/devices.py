"""The torch device a pipeline runs on, checked before any work (``--device``); torch is
imported only when a device is checked."""

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
