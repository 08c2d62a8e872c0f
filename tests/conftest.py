from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
REAL_DATA = PROJECT_ROOT.parent / "shared" / "data" / "real"
MUSICAL_INSTRUMENTS = REAL_DATA / "amazon_musical_instruments_5core_2014" / "reviews_Musical_Instruments_5.json.gz"

SMOKE_WORLD = {
    "seed": 3,
    "n_users": 60,
    "n_items": 30,
    "interactions_per_user": 8,
    "start_timestamp": 1609459200,
    "span_days": 365,
    "noise_sentence_rate": 0.35,
    "rating_noise": 0.45,
}


@pytest.fixture
def smoke_world() -> dict:
    return dict(SMOKE_WORLD)


@pytest.fixture
def musical_instruments() -> Path:
    if not MUSICAL_INSTRUMENTS.is_file():
        pytest.skip(f"real data not present at {MUSICAL_INSTRUMENTS}")
    return MUSICAL_INSTRUMENTS
