"""signgen: sign-language video generation from glosses and one signer photo.

Kept light on purpose: ``import signgen.poses`` must not pull in torch or diffusers.
"""

__version__ = "0.1.0"


def __getattr__(name: str):
    # The pipeline pulls in torch and diffusers: import it only when it is asked for.
    if name == "load_pipeline":
        from signgen.pipelines.pipeline import load_pipeline

        return load_pipeline
    raise AttributeError(f"module 'signgen' has no attribute {name!r}")
