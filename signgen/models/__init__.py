"""The networks: diffusers ``ModelMixin`` + ``ConfigMixin`` modules, one family per file, each
with its save/load. Nothing here samples, trains or reads a corpus."""
