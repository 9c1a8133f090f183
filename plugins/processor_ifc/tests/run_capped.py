"""Run the processor under an address-space cap, as the core's isolated child will.

    python run_capped.py HEADROOM_MB FILE [FILE ...]

Imports everything first, then caps RLIMIT_AS at the current address space plus
HEADROOM_MB, so the cap bites on the model, not on loading IfcOpenShell's libraries. Prints
one JSON line per file with the outcome classified like ``aecflow.isolation.child`` does.
"""

from __future__ import annotations

import json
import resource
import sys
from pathlib import Path

import ifcopenshell  # noqa: F401 - mapped before the cap, like a warm child

from aecflow.processing import InvalidInput, ProcessingContext
from aecflow_processor_ifc import IfcProcessor, extract, honesty, inputs, opening, scan  # noqa: F401


def vm_size() -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmSize")


def main() -> None:
    headroom = int(sys.argv[1]) << 20
    cap = vm_size() + headroom
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    processor = IfcProcessor()
    for name in sys.argv[2:]:
        path = Path(name)
        context = ProcessingContext("f", "p", path.name, path.stat().st_size)
        try:
            data = processor.process(path, context).data
            report = {"outcome": "succeeded", "entity_count": data["entity_count"]}
        except InvalidInput as exc:
            report = {"outcome": "invalid_input", "error": str(exc)}
        except MemoryError as exc:
            report = {"outcome": "out_of_memory", "error": str(exc)}
        except Exception as exc:  # classified like the core's child does, not raised
            report = {"outcome": "crashed", "error": f"{type(exc).__name__}: {exc}"}
        print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
