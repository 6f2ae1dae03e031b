"""The shipped YAML configs, one defaults file per model family plus small overrides (``base:``).

Installed as the package ``signgen.configs`` so that training from a wheel has its defaults;
:mod:`signgen.config` reads them."""
