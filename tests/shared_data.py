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
REAL_FRAME = SHARED_TUSIMPLE / "frame_520.jpg"


def tusimple_layout(root: Path, lines: int | None = None) -> Path:
    """A data set in TuSimple's layout: the real labels (the first ``lines``) in label_data_0313.json, and at
    every raw_file path a real 1280x720 JPEG (the shared example frame)."""
    root.mkdir(parents=True, exist_ok=True)
    labels = REAL_LABELS.read_text().splitlines()[:lines]
    (root / "label_data_0313.json").write_text("\n".join(labels) + "\n")
    import json

    for line in labels:
        image = root / json.loads(line)["raw_file"]
        image.parent.mkdir(parents=True, exist_ok=True)
        if not image.exists():
            image.write_bytes(REAL_FRAME.read_bytes())
    return root
