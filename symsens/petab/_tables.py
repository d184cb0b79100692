"""Reading a PEtab v1 problem: the YAML file and its four tables, checked row by row.

The YAML file is read and checked against the PEtab v1 schema that the ``petab`` package ships (Schmiester et
al., "PEtab — Interoperable specification of parameter estimation problems in systems biology", PLoS Comput.
Biol. 17:e1008646, 2021).  The tab-separated tables are read here as plain text, cell by cell, so that every
problem names its file and row (``observableId`` for the observable table, the 1-based line number for the
measurement table) and no cell is turned into a number or a formula by guessing.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .._errors import ModelError

__all__ = ["PetabError", "PetabTables", "Table", "read_tables", "number_or_none"]


class PetabError(ModelError):
    """A PEtab problem is malformed: a missing file or column, a bad cell, an unknown symbol.

    The message names the file, the row (an id or a line number) and the problem.
    """


@dataclass(frozen=True)
class Table:
    """One TSV table as text: its file, header and rows (each a dict column -> cell, cells stripped).

    ``lines[i]`` is the 1-based line number of ``rows[i]`` in the file (for messages).
    """

    path: str
    columns: tuple[str, ...]
    rows: tuple[dict[str, str], ...]
    lines: tuple[int, ...]

    def where(self, index: int, row_id: str | None = None) -> str:
        """``file, line N (id)``: where row ``index`` is."""
        label = f" ({row_id})" if row_id else ""
        return f"{self.path}, line {self.lines[index]}{label}"


@dataclass(frozen=True)
class PetabTables:
    """The files of one PEtab v1 problem (one SBML model, one table of each kind, possibly several files
    concatenated)."""

    yaml_path: str
    sbml_path: str
    conditions: Table
    observables: Table
    measurements: Table
    parameters: Table


_REQUIRED: dict[str, tuple[str, ...]] = {
    "condition": ("conditionId",),
    "observable": ("observableId", "observableFormula", "noiseFormula"),
    "measurement": ("observableId", "simulationConditionId", "measurement", "time"),
    "parameter": ("parameterId", "parameterScale", "lowerBound", "upperBound", "nominalValue", "estimate"),
}


def number_or_none(text: str, where: str, column: str) -> float | None:
    """A cell as a finite float, None for an empty cell; PetabError naming ``where`` and ``column`` otherwise."""
    if text == "" or text.lower() == "nan":
        return None
    try:
        value = float(text)
    except ValueError:
        raise PetabError(f"{where}: column {column!r} must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise PetabError(f"{where}: column {column!r} must be finite, got {text!r}")
    return value


def _read_table(paths: Sequence[str], kind: str) -> Table:
    """Read and concatenate the TSV files of one kind; check the required columns."""
    columns: tuple[str, ...] | None = None
    rows: list[dict[str, str]] = []
    lines: list[int] = []
    shown = ", ".join(paths)
    for path in paths:
        try:
            with open(path, newline="", encoding="utf-8-sig") as handle:
                records = list(csv.reader(handle, delimiter="\t"))
        except OSError as error:
            raise PetabError(f"cannot read the {kind} table: {error.strerror or error}", source=path) from None
        except (csv.Error, UnicodeDecodeError) as error:
            raise PetabError(f"the {kind} table is not a tab-separated text file: {error}", source=path) from None
        if not records or not any(cell.strip() for cell in records[0]):
            raise PetabError(f"the {kind} table is empty (no header row)", source=path)
        header = tuple(cell.strip() for cell in records[0])
        missing = [c for c in _REQUIRED[kind] if c not in header]
        if missing:
            raise PetabError(f"the {kind} table has no column {missing[0]!r} (PEtab v1 requires "
                             f"{', '.join(_REQUIRED[kind])}); its columns: {', '.join(header)}", source=path,
                             name=missing[0])
        if columns is not None and set(header) != set(columns):
            raise PetabError(f"the {kind} files {shown} have different columns", source=path)
        columns = header
        for number, record in enumerate(records[1:], start=2):
            if not any(cell.strip() for cell in record):
                continue
            if len(record) > len(header):
                raise PetabError(f"line {number}: {len(record)} cells for {len(header)} columns", source=path,
                                 line=number)
            cells = [cell.strip() for cell in record] + [""] * (len(header) - len(record))
            rows.append(dict(zip(header, cells)))
            lines.append(number)
    assert columns is not None
    source = paths[0] if len(paths) == 1 else shown
    return Table(source, columns, tuple(rows), tuple(lines))


def _file_list(problem: dict, key: str, yaml_path: str, base: Path) -> list[str]:
    files = problem.get(key)
    if not isinstance(files, list) or not files or not all(isinstance(f, str) and f for f in files):
        raise PetabError(f"`problems[0].{key}` must be a non-empty list of file names", source=yaml_path, name=key)
    return [str(base / f) for f in files]


def _petab_schema(source: str) -> dict:
    """The PEtab v1 JSON schema of the YAML file, as the ``petab`` package ships it.

    Read from the package's folder without importing the package (importing ``petab`` loads pandas and its
    formula parser: seconds, for one schema file)."""
    import importlib.util

    import yaml

    spec = importlib.util.find_spec("petab")
    schema_path = None if spec is None or spec.origin is None else \
        Path(spec.origin).parent / "schemas" / "petab_schema.v1.0.0.yaml"
    if schema_path is None or not schema_path.is_file():
        raise PetabError("reading PEtab problems needs the `petab` package (for its schema): "
                         "pip install 'symsens[petab]'", source=source)
    return yaml.safe_load(schema_path.read_text(encoding="utf-8"))


def read_tables(yaml_path: str | os.PathLike[str]) -> PetabTables:
    """Read the PEtab v1 problem described by ``yaml_path`` (YAML checked by ``petab``, tables by row).

    Raises
    ------
    PetabError
        For a missing or malformed YAML file, a PEtab version other than 1, several models or problems, a missing
        file or required column, or a row with the wrong number of cells.
    """
    import yaml

    source = os.fspath(yaml_path)
    path = Path(source)
    if not path.is_file():
        raise PetabError("the PEtab problem file does not exist", source=source)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8-sig"))
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        mark = getattr(error, "problem_mark", None)
        line = None if mark is None else mark.line + 1
        raise PetabError(f"not a valid YAML file: {getattr(error, 'problem', None) or error}", source=source,
                         line=line) from None
    if not isinstance(document, dict):
        raise PetabError("the PEtab problem file must be a YAML mapping with format_version, parameter_file and "
                         "problems", source=source)
    version = str(document.get("format_version", ""))
    if version not in ("1", "1.0", "1.0.0"):
        raise PetabError(f"format_version must be 1 (PEtab v1), got {document.get('format_version')!r}",
                         source=source, name="format_version")
    schema = _petab_schema(source)
    import jsonschema

    try:
        jsonschema.validate(instance=document, schema=schema)
    except jsonschema.ValidationError as error:  # its message names the key
        raise PetabError(f"not a PEtab v1 problem file: {error.message}", source=source) from None
    problems = document["problems"]
    if len(problems) != 1:
        raise PetabError(f"{len(problems)} problems in one file; one is supported", source=source, name="problems")
    problem = problems[0]
    base = path.parent
    sbml = _file_list(problem, "sbml_files", source, base)
    if len(sbml) != 1:
        raise PetabError("exactly one SBML model is supported", source=source, name="sbml_files")
    parameter_files = document["parameter_file"]
    parameter_files = [parameter_files] if isinstance(parameter_files, str) else list(parameter_files)
    return PetabTables(
        yaml_path=source,
        sbml_path=sbml[0],
        conditions=_read_table(_file_list(problem, "condition_files", source, base), "condition"),
        observables=_read_table(_file_list(problem, "observable_files", source, base), "observable"),
        measurements=_read_table(_file_list(problem, "measurement_files", source, base), "measurement"),
        parameters=_read_table([str(base / f) for f in parameter_files], "parameter"),
    )
