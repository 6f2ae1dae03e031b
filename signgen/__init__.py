"""signgen: sign-language video generation from glosses and one signer photo.

Kept light on purpose: ``import signgen.poses`` must not pull in torch or diffusers.
"""

__version__ = "0.1.0"
