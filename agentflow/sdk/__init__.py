"""What agents are built with: the `agent` WIT world, and the Python guest library with the
entry glue that `componentize-py` bundles into a component (see `agentflow.authoring.python`)."""

from pathlib import Path

SDK_DIR = Path(__file__).resolve().parent
WIT_DIR = SDK_DIR / "wit"
WORLD = "agent"
PYTHON_GUEST_DIR = SDK_DIR / "python"  # the `agentflow` guest package and `app.py`, the component's entry
