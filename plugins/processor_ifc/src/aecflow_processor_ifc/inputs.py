"""From the uploaded bytes to a plain STEP file IfcOpenShell can open.

An upload is a .ifc, a .ifczip, or a .ifc with a UTF-8 byte-order mark. The content decides,
not the name. A .ifczip is unpacked here rather than by ``ifcopenshell.open``, which extracts
whatever the archive claims without limits: a 1 MB zip bomb would fill the disk. A BOM is
stripped by copying, because IfcOpenShell refuses a file that does not start with the magic.
"""

from __future__ import annotations

import shutil
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aecflow.processing import InvalidInput
from aecflow_processor_ifc.config import IfcProcessorConfig
from aecflow_processor_ifc.header import BOM, HeaderCheck, check_header, is_zip

_CHUNK = 1 << 20
_MB = 1 << 20


@dataclass
class Prepared:
    """The STEP file to open, its header, and where it came from (for the summary)."""

    path: Path
    header: HeaderCheck
    source: dict[str, Any] = field(default_factory=dict)


@contextmanager
def prepared(path: Path, config: IfcProcessorConfig) -> Iterator[Prepared]:
    """Yield the STEP file inside ``path``; scratch copies are removed on exit."""
    size = path.stat().st_size
    if size == 0:
        raise InvalidInput("the file is empty (0 bytes); an IFC file starts with 'ISO-10303-21;'")
    with path.open("rb") as f:
        head = f.read(4)
    with ExitStack() as stack:
        source: dict[str, Any] = {"format": "ifc", "size": size}
        if is_zip(head):
            scratch = stack.enter_context(_scratch(config))
            member, step = _unzip(path, scratch, config)
            source.update(format="ifczip", member=member, size=step.stat().st_size)
        else:
            step = path
        try:
            header = check_header(step)
        except InvalidInput as exc:
            if exc.result is not None:
                exc.result["source"] = source
            raise
        if header.bom:
            scratch = stack.enter_context(_scratch(config))
            step = _strip_bom(step, scratch)
            source["bom"] = True
        yield Prepared(path=step, header=header, source=source)


@contextmanager
def _scratch(config: IfcProcessorConfig) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="aecflow-ifc-", dir=config.scratch_dir) as tmp:
        yield Path(tmp)


def _unzip(path: Path, scratch: Path, config: IfcProcessorConfig) -> tuple[str, Path]:
    """Extract the first .ifc member, refusing archives that unpack to absurd sizes."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InvalidInput(f"not a readable .ifczip (zip archive): {exc}") from exc
    with archive:
        files = [i for i in archive.infolist() if not i.is_dir()]
        members = [i for i in files if i.filename.lower().endswith(".ifc")]
        if not members:
            names = ", ".join(i.filename for i in files[:10]) or "nothing"
            xml = any(i.filename.lower().endswith(".ifcxml") for i in files)
            hint = " (IFC-XML is not supported)" if xml else ""
            raise InvalidInput(f"the .ifczip holds no .ifc file{hint}; it holds: {names}")
        info = members[0]
        if info.flag_bits & 0x1:
            raise InvalidInput(f"the .ifczip member {info.filename!r} is encrypted")
        limit = config.zip_max_member_mb * _MB
        _check_declared(info, limit, config.zip_max_ratio)
        # Declared sizes are the archive's word; count what actually comes out as well.
        allowed = min(limit, int(config.zip_max_ratio * max(info.compress_size, 1)) + _MB)
        target = scratch / "model.ifc"
        written = 0
        try:
            with archive.open(info) as src, target.open("wb") as dst:
                while chunk := src.read(_CHUNK):
                    written += len(chunk)
                    if written > allowed:
                        raise InvalidInput(
                            f"the .ifczip member {info.filename!r} unpacks to more than its "
                            f"header declares and past the limit of {allowed // _MB:,} MB: "
                            "refused as a zip bomb"
                        )
                    dst.write(chunk)
        except (zipfile.BadZipFile, EOFError, zlib.error) as exc:
            raise InvalidInput(f"the .ifczip is damaged: {exc}") from exc
        except NotImplementedError as exc:  # e.g. a compression method zipfile lacks
            raise InvalidInput(f"the .ifczip uses an unsupported compression: {exc}") from exc
    return info.filename, target


def _check_declared(info: zipfile.ZipInfo, limit: int, max_ratio: float) -> None:
    if info.file_size > limit:
        raise InvalidInput(
            f"the .ifczip member {info.filename!r} would unpack to {info.file_size / _MB:,.0f} MB, "
            f"more than the limit of {limit // _MB:,} MB"
        )
    ratio = info.file_size / max(info.compress_size, 1)
    if ratio > max_ratio:
        raise InvalidInput(
            f"the .ifczip member {info.filename!r} expands {ratio:,.0f} times "
            f"({info.compress_size:,} to {info.file_size:,} bytes), more than the "
            f"{max_ratio:g} times IFC text ever does: refused as a zip bomb"
        )


def _strip_bom(path: Path, scratch: Path) -> Path:
    """Copy ``path`` without its leading BOM (IfcOpenShell insists on the magic first)."""
    target = scratch / "model.ifc"
    with path.open("rb") as src, target.open("wb") as dst:
        if src.read(len(BOM)) != BOM:
            raise AssertionError("no BOM to strip")
        shutil.copyfileobj(src, dst, _CHUNK)
    return target
