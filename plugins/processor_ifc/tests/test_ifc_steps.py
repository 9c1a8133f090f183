"""The IFC steps ``ifc-validate``, ``ifc-ids`` and ``ifc-csv`` on real and written models.

Each step runs once per model (module fixtures) into an output directory of its own, as the
core's child would run it; the assertions compare with what plain IfcOpenShell reads from the
same file, never with the step's own output.
"""

from __future__ import annotations

import asyncio
import csv
import json
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

import ifcopenshell
import pydantic
import pytest
from ifc_support import BODY, FOOTER, HEADER, TINY, sample, write

from aecflow.isolation import Limits, ProcessorSpec, run_isolated
from aecflow.loading.plugins import PluginHost
from aecflow.processing import InvalidInput, ProcessingContext, ProcessingResult, Processor
from aecflow_processor_ifc.steps import (
    CsvConfig,
    CsvStep,
    IdsConfig,
    IdsStep,
    ValidateConfig,
    ValidateStep,
)
from aecflow_processor_ifc.testing.synthetic import Spec, write_model

IDS_HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<ids xmlns="http://standards.buildingsmart.org/IDS" '
    'xmlns:xs="http://www.w3.org/2001/XMLSchema" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\n'
    "<info><title>{title}</title></info><specifications>\n"
)
IDS_TAIL = "</specifications></ids>\n"


def spec_xml(name: str, entity: str, requirement: str) -> str:
    return (
        f'<specification name="{name}" ifcVersion="IFC2X3 IFC4">'
        '<applicability minOccurs="1" maxOccurs="unbounded">'
        f"<entity><name><simpleValue>{entity}</simpleValue></name></entity></applicability>"
        f"<requirements>{requirement}</requirements></specification>\n"
    )


IS_EXTERNAL = (
    '<property dataType="IFCBOOLEAN"><propertySet><simpleValue>Pset_WallCommon</simpleValue>'
    "</propertySet><baseName><simpleValue>IsExternal</simpleValue></baseName></property>"
)
HAS_NAME = "<attribute><name><simpleValue>Name</simpleValue></name></attribute>"


def write_ids(path: Path, title: str, *specs: str) -> Path:
    path.write_text(IDS_HEAD.format(title=title) + "".join(specs) + IDS_TAIL, encoding="utf-8")
    return path


def run_step(step: Processor, path: Path, out: Path | None, project: str = "p") -> ProcessingResult:
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    context = ProcessingContext(
        file_id="f1", project=project, filename=path.name, size=path.stat().st_size,
        output_dir=out,
    )  # fmt: skip
    return step.process(path, context)


def artifact_files(result: ProcessingResult, out: Path) -> dict[str, Path]:
    """The declared artifacts; each must be a file the step wrote, and nothing undeclared."""
    declared = {a.name: out / a.name for a in result.artifacts}
    assert sorted(p.name for p in out.iterdir()) == sorted(declared)
    return declared


# -- registration ---------------------------------------------------------------------------


def test_steps_are_registered_through_the_entry_point() -> None:
    host = PluginHost(environ={"AECFLOW_LOAD_PLUGINS": "processor_ifc"}).load()
    found = {
        name: (reg.factory, reg.config, reg.plugin)
        for name in ("ifc-validate", "ifc-ids", "ifc-csv")
        if (reg := host.registries.processors.get(name)) is not None
    }
    assert found == {
        "ifc-validate": (ValidateStep, ValidateConfig, "processor_ifc"),
        "ifc-ids": (IdsStep, IdsConfig, "processor_ifc"),
        "ifc-csv": (CsvStep, CsvConfig, "processor_ifc"),
    }
    for step in (ValidateStep(), IdsStep(), CsvStep()):
        assert step.accepts("model.ifc", None, b"<html>")  # refused with a reason, not skipped
        assert not step.accepts("notes.txt", None, TINY)
        assert step.resources(100 << 20).memory_mb is not None


def test_ids_settings_name_files_that_exist(tmp_path: Path) -> None:
    with pytest.raises(pydantic.ValidationError, match=r"IDS files not found: .*nope\.ids"):
        IdsConfig(projects={"alpha": (tmp_path / "nope.ids",)})
    with pytest.raises(pydantic.ValidationError, match="unknown report kinds"):
        IdsConfig(reports=("pdf",))


# -- real models ----------------------------------------------------------------------------

MODELS = ["AC20-FZK-Haus.ifc", "duplex.ifc"]


@pytest.fixture(scope="module", params=MODELS)
def model(request: pytest.FixtureRequest) -> tuple[Path, Any]:
    path = sample(request.param)
    return path, ifcopenshell.open(str(path))


@pytest.fixture(scope="module")
def csv_run(
    model: tuple[Path, Any], tmp_path_factory: pytest.TempPathFactory
) -> tuple[ProcessingResult, Path]:
    out = tmp_path_factory.mktemp("csv")
    step = CsvStep(CsvConfig(psets=("Pset_WallCommon", "Pset_DoorCommon")))
    return run_step(step, model[0], out), out


def test_csv_has_a_row_per_element(
    model: tuple[Path, Any], csv_run: tuple[ProcessingResult, Path]
) -> None:
    _, ifc = model
    result, out = csv_run
    (path,) = artifact_files(result, out).values()
    assert result.artifacts[0].media_type == "text/csv"
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    elements = ifc.by_type("IfcElement")
    assert len(rows) == result.data["rows"] == len(elements) > 50
    assert {r["global_id"] for r in rows} == {e.GlobalId for e in elements}
    assert rows and list(rows[0])[:6] == [
        "global_id",
        "class",
        "name",
        "storey",
        "type",
        "material",
    ]
    by_id = {r["global_id"]: r for r in rows}
    storeys = {s.Name for s in ifc.by_type("IfcBuildingStorey")}
    for element in elements:
        row = by_id[element.GlobalId]
        assert (row["class"], row["name"]) == (element.is_a(), element.Name or "")
        assert row["storey"] == "" or row["storey"] in storeys
    assert result.data["elements_with_storey"] == sum(bool(r["storey"]) for r in rows) > 0


def test_csv_property_columns_hold_the_values(
    model: tuple[Path, Any], csv_run: tuple[ProcessingResult, Path]
) -> None:
    _, ifc = model
    result, out = csv_run
    with (out / "elements.csv").open(encoding="utf-8", newline="") as f:
        rows = {r["global_id"]: r for r in csv.DictReader(f)}
    # The oracle: each wall's own Pset_WallCommon, read straight from the relationships.
    checked = 0
    for rel in ifc.by_type("IfcRelDefinesByProperties"):
        pset = rel.RelatingPropertyDefinition
        if not pset.is_a("IfcPropertySet") or pset.Name != "Pset_WallCommon":
            continue
        for prop in pset.HasProperties:
            if not prop.is_a("IfcPropertySingleValue") or prop.NominalValue is None:
                continue
            column = f"Pset_WallCommon.{prop.Name}"
            assert column in result.data["columns"]
            for element in rel.RelatedObjects:
                assert rows[element.GlobalId][column] == str(prop.NominalValue.wrappedValue)
                checked += 1
    assert checked > 0


@pytest.fixture(scope="module")
def validate_run(
    model: tuple[Path, Any], tmp_path_factory: pytest.TempPathFactory
) -> tuple[ProcessingResult, Path]:
    out = tmp_path_factory.mktemp("validate")
    return run_step(ValidateStep(), model[0], out), out


def test_validate_agrees_with_plain_ifcopenshell_validate(
    model: tuple[Path, Any], validate_run: tuple[ProcessingResult, Path]
) -> None:
    """The oracle: plain ``ifcopenshell.validate`` on the same file finds the same issues."""
    import ifcopenshell.validate

    path, ifc = model
    result, out = validate_run
    data = result.data
    (artifact,) = artifact_files(result, out).values()
    document = json.loads(artifact.read_text(encoding="utf-8"))
    issues = document["issues"]
    assert document["issue_count"] == len(issues) == data["issue_count"]
    assert (document["truncated"], data["truncated"]) == (False, False)
    assert issues[: len(data["issues"])] == data["issues"]
    assert data["by_entity"] == dict(Counter(i["entity"] or "(none)" for i in issues))

    for issue in issues:
        assert ifc.by_id(issue["id"]).is_a() == issue["entity"]
    # FZK-Haus has five space boundaries without their element; duplex is clean.
    assert data["issue_count"] == {"AC20-FZK-Haus.ifc": 5, "duplex.ifc": 0}[path.name]
    if path.name == "duplex.ifc":
        assert data["valid"] is True
        return  # the oracle below takes as long as the step: run it once
    plain = ifcopenshell.validate.json_logger()
    ifcopenshell.validate.validate(str(path), plain)

    def ref(s: dict[str, Any]) -> int | None:
        instance = s.get("instance")
        return instance.id() if isinstance(instance, ifcopenshell.entity_instance) else None

    assert data["valid"] is (not plain.statements)
    assert [(i["id"], i["attribute"], i["message"]) for i in issues] == [
        (ref(s), s.get("attribute"), s["message"][:2000]) for s in plain.statements
    ]


@pytest.fixture(scope="module")
def walls_ids(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Walls must say whether they are external (FZK-Haus's do not) and have a name."""
    return write_ids(
        tmp_path_factory.mktemp("ids") / "walls.ids",
        "Walls",
        spec_xml("Walls say IsExternal", "IFCWALLSTANDARDCASE", IS_EXTERNAL),
        spec_xml("Walls have a name", "IFCWALLSTANDARDCASE", HAS_NAME),
    )


def test_ids_reports_the_failing_walls(walls_ids: Path, tmp_path: Path) -> None:
    path = sample("AC20-FZK-Haus.ifc")
    ifc = ifcopenshell.open(str(path))
    walls = ifc.by_type("IfcWallStandardCase")
    step = IdsStep(IdsConfig(ids=(walls_ids,), reports=("json", "bcf", "html"), max_failures=5))
    result = run_step(step, path, tmp_path / "out")
    data = result.data
    assert (data["checked"], data["status"], data["specifications_failed"]) == (True, "failed", 1)
    (entry,) = data["ids"]
    failing, passing = entry["specifications"]
    assert (failing["name"], failing["status"]) == ("Walls say IsExternal", "failed")
    assert (failing["applicable"], failing["failed"], failing["passed"]) == (
        len(walls),
        len(walls),
        0,
    )
    (requirement,) = failing["requirements"]
    assert requirement["failed"] == len(walls) > 5
    assert len(requirement["failures"]) == 5  # max_failures
    named = {w.GlobalId: (w.is_a(), w.Name) for w in walls}
    for failure in requirement["failures"]:
        assert named[failure["global_id"]] == (failure["class"], failure["name"])
        assert failure["reason"]
    assert (passing["status"], passing["applicable"], passing["passed"]) == (
        "passed", len(walls), len(walls)
    )  # fmt: skip
    files = artifact_files(result, tmp_path / "out")
    assert sorted(files) == ["ids-walls.bcf", "ids-walls.html", "ids-walls.json"]
    report = json.loads(files["ids-walls.json"].read_text(encoding="utf-8"))
    assert [s["status"] for s in report["specifications"]] == [False, True]
    failed = report["specifications"][0]["requirements"][0]["failed_entities"]
    assert {f["global_id"] for f in failed} == set(named)  # all of them, not just five
    with zipfile.ZipFile(files["ids-walls.bcf"]) as bcf:
        markups = [n for n in bcf.namelist() if n.endswith("markup.bcf")]
    assert len(markups) == len(walls)  # one topic per failing wall
    assert "Walls say IsExternal" in files["ids-walls.html"].read_text(encoding="utf-8")


def test_ids_passes_when_the_model_complies(tmp_path: Path) -> None:
    path = sample("duplex.ifc")
    ifc = ifcopenshell.open(str(path))
    ids = write_ids(
        tmp_path / "named.ids", "Named", spec_xml("Doors have a name", "IFCDOOR", HAS_NAME)
    )
    result = run_step(IdsStep(IdsConfig(ids=(ids,))), path, tmp_path / "out")
    (entry,) = result.data["ids"]
    (spec,) = entry["specifications"]
    doors = len(ifc.by_type("IfcDoor"))
    assert (result.data["status"], spec["status"], spec["applicable"], spec["passed"]) == (
        "passed", "passed", doors, doors
    )  # fmt: skip
    assert doors > 0
    assert entry["reports"] == {"json": "named.json".replace("named", "ids-named"),
                                "bcf": "ids-named.bcf"}  # fmt: skip


def test_ids_per_project_and_none_configured(walls_ids: Path, tmp_path: Path) -> None:
    path = write(tmp_path / "tiny.ifc", TINY)
    other = write_ids(tmp_path / "other.ids", "Other", spec_xml("Any", "IFCPROJECT", HAS_NAME))
    config = IdsConfig(ids=(walls_ids,), projects={"alpha": (other,), "beta": ()})
    alpha = run_step(IdsStep(config), path, tmp_path / "a", project="alpha").data
    assert [e["ids"] for e in alpha["ids"]] == ["other.ids"]
    assert alpha["status"] == "passed"  # the tiny project has a name
    default = run_step(IdsStep(config), path, tmp_path / "d", project="gamma").data
    assert [e["ids"] for e in default["ids"]] == ["walls.ids"]
    beta = run_step(IdsStep(config), path, tmp_path / "b", project="beta")
    assert beta.data == {
        "checked": False, "reason": "no IDS files are configured for project 'beta'", "ids": []
    }  # fmt: skip
    assert beta.artifacts == ()


def test_an_unreadable_ids_file_fails_the_run_naming_it(tmp_path: Path) -> None:
    from aecflow_processor_ifc.steps.ids_check import IdsFileError

    broken = tmp_path / "broken.ids"
    broken.write_text("<ids>not really", encoding="utf-8")
    path = write(tmp_path / "tiny.ifc", TINY)
    with pytest.raises(IdsFileError, match=r"the IDS file .*broken.ids cannot be read"):
        run_step(IdsStep(IdsConfig(ids=(broken,))), path, tmp_path / "out")


# -- a model with deliberate schema errors ----------------------------------------------------

#: A wall without its GlobalId ($, not optional) and a door whose Name is a number.
SCHEMA_ERRORS = (
    HEADER + BODY
    + b"#5=IFCWALL($,$,'W',$,$,$,$,$,$);\n"
    + b"#6=IFCDOOR('0000000000000000000003',$,42,$,$,$,$,$,$,$,$,$,$);\n"
    + FOOTER
)  # fmt: skip


def test_validate_reports_schema_errors(tmp_path: Path) -> None:
    path = write(tmp_path / "errors.ifc", SCHEMA_ERRORS)
    result = run_step(ValidateStep(), path, tmp_path / "out")
    data = result.data
    assert data["valid"] is False
    kinds = {(i["entity"], i["kind"], i["attribute"]) for i in data["issues"]}
    assert kinds == {
        ("IfcWall", "attribute_not_optional", "IfcWall.GlobalId"),
        ("IfcDoor", "attribute_type", "Name"),
    }
    assert data["by_entity"]["IfcWall"] >= 1
    assert data["issue_count"] == sum(data["by_kind"].values()) == len(data["issues"])


def test_validate_caps_the_artifact_and_the_result(tmp_path: Path) -> None:
    walls = b"".join(b"#%d=IFCWALL($,$,'W',$,$,$,$,$,$);\n" % n for n in range(10, 40))
    path = write(tmp_path / "many.ifc", HEADER + BODY + walls + FOOTER)
    config = ValidateConfig(max_issues=7, max_result_issues=3)
    result = run_step(ValidateStep(config), path, tmp_path / "out")
    data = result.data
    assert data["issue_count"] >= 30
    assert (len(data["issues"]), data["issues_in_artifact"], data["truncated"]) == (3, 7, True)
    document = json.loads((tmp_path / "out" / "validation.json").read_text(encoding="utf-8"))
    assert (len(document["issues"]), document["truncated"]) == (7, True)
    assert document["issue_count"] == data["issue_count"]


def test_without_an_output_dir_no_artifact_is_declared(tmp_path: Path) -> None:
    path = write(tmp_path / "errors.ifc", SCHEMA_ERRORS)
    for step in (ValidateStep(), CsvStep()):
        result = run_step(step, path, None)
        assert result.artifacts == ()
        assert "artifact" not in result.data


# -- a synthetic model ------------------------------------------------------------------------


def test_csv_on_a_synthetic_model(tmp_path: Path) -> None:
    path = tmp_path / "synthetic.ifc"
    expected = write_model(path, Spec(storeys=3, bays=30))
    result = run_step(CsvStep(CsvConfig(psets=("Pset_WallCommon",))), path, tmp_path / "out")
    with (tmp_path / "out" / "elements.csv").open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == sum(expected.element_counts.values()) == result.data["rows"]
    by_storey = Counter(r["storey"] for r in rows)
    assert by_storey == expected.storey_elements
    assert result.data["warnings"] == []


# -- malformed input --------------------------------------------------------------------------

MALFORMED = {
    "empty": (b"", "the file is empty"),
    "html": (b"<!DOCTYPE html><html><body>502</body></html>", "HTML page"),
    "unknown schema": (TINY.replace(b"('IFC4')", b"('IFC9')"), "IFC9 is not supported"),
    "nested parentheses": (
        HEADER + BODY + b"#5=IFCPROPERTYSINGLEVALUE('a',$," + b"(" * 200_000
        + b")" * 200_000 + b",$);\n" + FOOTER,
        "parentheses are nested at byte",
    ),
    "only garbage instances": (
        HEADER + b"#1=IFCNOSUCHTHING(1);\n#2=IFCNOREALLY(2);\n" + FOOTER,
        "could read none of the 2 entity instances",
    ),
}  # fmt: skip
STEPS = {"validate": ValidateStep, "ids": IdsStep, "csv": CsvStep}


@pytest.fixture(scope="module")
def any_ids(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ids") / "any.ids"
    return write_ids(path, "Any", spec_xml("Walls named", "IFCWALL", HAS_NAME))


def make(step: str, ids: Path) -> Processor:
    return IdsStep(IdsConfig(ids=(ids,))) if step == "ids" else STEPS[step]()


@pytest.mark.parametrize("step", sorted(STEPS))
@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_input_is_refused_by_name(
    step: str, case: str, any_ids: Path, tmp_path: Path
) -> None:
    data, message = MALFORMED[case]
    path = write(tmp_path / "bad.ifc", data)
    with pytest.raises(InvalidInput, match=message):
        run_step(make(step, any_ids), path, tmp_path / "out")


PARTIAL = {
    "truncated mid-entity": HEADER + BODY + b"#5=IFCWALL('0000000000000000000002',$,'W",
    "duplicate instance name": HEADER + BODY
    + b"#4=IFCPROJECT('0000000000000000000009',$,'Again',$,$,$,$,$,$);\n" + FOOTER,
}  # fmt: skip


@pytest.mark.parametrize("step", sorted(STEPS))
@pytest.mark.parametrize("case", sorted(PARTIAL))
def test_a_partly_read_model_says_so(step: str, case: str, any_ids: Path, tmp_path: Path) -> None:
    path = write(tmp_path / "partial.ifc", PARTIAL[case])
    data = run_step(make(step, any_ids), path, tmp_path / "out").data
    assert data["warnings"], data
    assert ("truncated" in data["warnings"][0]) or ("read only" in data["warnings"][0])


def edge_samples() -> list[str]:
    folder = sample("edge")
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("step", sorted(STEPS))
def test_edge_samples_end_clearly(step: str, any_ids: Path, tmp_path: Path) -> None:
    """Every malformed sample: a refusal naming the problem, or a result (never a crash)."""
    for name in edge_samples():
        path = sample(f"edge/{name}")
        try:
            result = run_step(make(step, any_ids), path, tmp_path / name)
        except InvalidInput as exc:
            assert str(exc)
        else:
            assert isinstance(result.data, dict)
            json.dumps(result.data, allow_nan=False)


# -- through the core's isolation --------------------------------------------------------------


def isolated(step: Processor, path: Path, out: Path, timeout_s: float = 120) -> Any:
    out.mkdir(parents=True, exist_ok=True)
    reg_name = {ValidateStep: "ifc-validate", IdsStep: "ifc-ids", CsvStep: "ifc-csv"}[type(step)]
    host = PluginHost(environ={"AECFLOW_LOAD_PLUGINS": "processor_ifc"}).load()
    registration = host.registries.processors.get(reg_name)
    assert registration is not None
    spec = ProcessorSpec.from_registration(registration, step.config)  # type: ignore[attr-defined]
    context = ProcessingContext(
        file_id="f1", project="p", filename=path.name, size=path.stat().st_size, output_dir=out
    )
    limits = Limits(timeout_s=timeout_s, memory_mb=step.resources(path.stat().st_size).memory_mb)
    return asyncio.run(run_isolated(spec, path, context, limits))


def test_each_step_through_isolation_under_its_own_memory_estimate(
    walls_ids: Path, tmp_path: Path
) -> None:
    """The core's child passes output_dir; each step succeeds under its resources() cap."""
    path = tmp_path / "synthetic.ifc"
    write_model(path, Spec(storeys=2, bays=10))
    steps: list[Processor] = [
        CsvStep(), ValidateStep(), IdsStep(IdsConfig(ids=(walls_ids,)))
    ]  # fmt: skip
    expected = {
        CsvStep: ["elements.csv"],
        ValidateStep: ["validation.json"],
        IdsStep: ["ids-walls.bcf", "ids-walls.json"],
    }
    for step in steps:
        out = tmp_path / type(step).__name__
        report = isolated(step, path, out)
        assert report.outcome == "succeeded", (report.error, report.log_tail)
        assert report.result["schema"] == "IFC4"
        # The child dropped the declared artifacts (it reports result.data only, for now);
        # the files are there.
        assert sorted(p.name for p in out.iterdir()) == expected[type(step)]


def test_malformed_input_through_isolation(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.ifc", MALFORMED["nested parentheses"][0])
    report = isolated(CsvStep(), path, tmp_path / "out")
    assert report.outcome == "invalid_input"
    assert "parentheses are nested" in report.error
