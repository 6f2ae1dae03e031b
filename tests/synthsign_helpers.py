"""A small SynthSign corpus shared by the data and SynthSign tests (written in seconds)."""

from __future__ import annotations

from pathlib import Path

import pytest

from signgen.corpora.synthsign import SynthSignSettings, write_synthsign

# Two seen signers and one unseen, one video per split, sentences of 2 or 3 letters.
SMALL = SynthSignSettings(signers=2, videos=4, seed=0, unseen_signers=1, min_glosses=2, max_glosses=3)
PHOENIX_FIXTURE = Path(__file__).parent / "data" / "phoenix"


@pytest.fixture(scope="session")
def synthsign_corpus(tmp_path_factory) -> Path:
    """Treat as read-only: copy it (shutil.copytree) before changing anything."""
    root = tmp_path_factory.mktemp("synthsign") / "corpus"
    write_synthsign(root, SMALL, progress=False)
    return root
