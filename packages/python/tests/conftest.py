import sys
from pathlib import Path

# The package as Nexus puts it on an actor process's path.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
