"""Where the real TuSimple material lives: ../shared/tusimple beside the project, or $TUSIMPLE_SHARED_DIR."""
import os
from pathlib import Path

CANDIDATES = [
    Path(os.environ["TUSIMPLE_SHARED_DIR"]) if os.environ.get("TUSIMPLE_SHARED_DIR") else None,
    Path(__file__).resolve().parents[1].parent / "shared" / "tusimple",
    Path("/work/shared/tusimple"),
]
SHARED_TUSIMPLE = next((p for p in CANDIDATES if p is not None and p.is_dir()), CANDIDATES[1])
REAL_LABELS = SHARED_TUSIMPLE / "label_data_0313_head200.json"
