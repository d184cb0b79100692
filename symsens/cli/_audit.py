"""``symsens audit``: compare a model's gradients from every method, scheme and tolerance with the reference."""

from __future__ import annotations

import argparse
import json
import sys
import time

from ._derive import add_model_arguments, resolve_model

__all__ = ["register", "ProgressBar"]


class ProgressBar:
    """A one-line progress bar on standard error (plain lines when it is not a terminal)."""

    def __init__(self, stream=None, width: int = 28) -> None:  # type: ignore[no-untyped-def]
        # sys.stderr is looked up now, not when the module was imported (it may have been replaced since).
        self.stream = sys.stderr if stream is None else stream
        self.width = width
        self.start = time.perf_counter()
        self.tty = bool(getattr(stream, "isatty", lambda: False)())

    def __call__(self, done: int, total: int, label: str) -> None:
        filled = int(self.width * done / max(total, 1))
        elapsed = time.perf_counter() - self.start
        line = f"[{'#' * filled}{'.' * (self.width - filled)}] {done}/{total} {elapsed:6.1f} s  {label}"
        if self.tty:
            self.stream.write("\r\033[K" + line)
            if done >= total:
                self.stream.write("\n")
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "audit",
        help="is this gradient right? compare every gradient method with a verified reference",
        description=(
            "Answer whether the gradient you compute (--method, --scheme, --rtol) is trustworthy, to how many "
            "digits, why not, and the cheapest setting that is.  It computes the loss gradient with continuous "
            "forward sensitivities (with/without error control), discrete forward mode (AD through the solver, "
            "with its controller variants) and finite differences, for each scheme and tolerance; compares them "
            "with the verified reference; diagnoses the differences; writes a report."
        ),
    )
    add_model_arguments(parser)
    parser.add_argument("--loss", default=None, metavar="SPEC",
                        help="fit[:OUTPUTS][@T0:T1:N] (the default for a model without data: data made with each "
                             "differentiated parameter x 1.05), trajectory[:OUTPUTS][@T0:T1:N] (against the nominal "
                             "trajectory, true gradient 0 at the data parameters; also trajectory-at-data), "
                             "data:FILE.csv, integral:EXPR, or model (the model file's [loss] table)")
    parser.add_argument("--method", metavar="METHOD",
                        help="the gradient method you use: the answer is about it (default: the first of --methods)")
    parser.add_argument("--scheme", metavar="SCHEME",
                        help="the integration scheme you use (default: the first of --schemes); aliases such as "
                             "radau5 are accepted")
    parser.add_argument("--rtol", type=float, metavar="RTOL",
                        help="the tolerance you use (default: the loosest of --tolerances)")
    parser.add_argument("--schemes", metavar="S1,S2", help="compiled schemes (default tsit5,rodas4,radau-iia-3,bdf)")
    parser.add_argument("--tolerances", metavar="R1,R2", help="rtol values (default 1e-3,...,1e-10; atol = rtol/1000)")
    parser.add_argument("--methods", metavar="M1,M2", help="gradient methods (default: all but the adjoints adjoint-interpolating, "
                             "adjoint-backsolve, adjoint-discrete; see --explain)")
    parser.add_argument("--parameters", metavar="P1,P2", help="differentiate w.r.t. these parameters (default all)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="audit at this parameter value (repeatable; default: the nominal values)")
    parser.add_argument("--p-data", action="append", default=[], metavar="NAME=VALUE",
                        help="make the data of a fit or trajectory loss at this parameter value (repeatable; the "
                             "others take the audited values)")
    parser.add_argument("--t-span", nargs=2, type=float, metavar=("T0", "T1"))
    parser.add_argument("--digits", type=int, default=8, help="digits the reference must verify (default 8)")
    parser.add_argument("--target-digits", type=float, default=6, help="accuracy the recommendation asks for")
    parser.add_argument("--out", metavar="DIR", help="write report.md, report.html, report.json and figures here")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--verbose", action="store_true", help="print every run with its verdict, not only a summary")
    parser.add_argument("--explain", nargs="?", const="", metavar="METHOD",
                        help="what gradient method METHOD computes and which tools compute the same (without "
                             "METHOD: list them), then exit")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--gradient", action="append", default=[], metavar="NAME=FILE",
                        help="audit a gradient computed by another tool (repeatable): FILE is JSON (a list in "
                             "parameter order, an object parameter -> value, or {\"gradient\": ..., \"loss\": ..., "
                             "\"rtol\": ..., \"atol\": ..., \"scheme\": ...}), .npy, or CSV rows parameter,value; the "
                             "answer is about the first unless --method/--scheme/--rtol name a setting; see "
                             "docs/audit-your-gradient.md")
    parser.add_argument("--tool", action="append", default=[], metavar="NAME",
                        help="audit the gradient of an installed tool, called at every tolerance (repeatable; "
                             "symsens.bridges.TOOLS, e.g. diffrax-forward, cvodes-adjoint, torchdiffeq)")
    parser.add_argument("--write-loss-data", metavar="FILE.json",
                        help="write the loss's times, compared outputs and targets (what an external gradient "
                             "must use) to FILE.json, then exit")
    parser.add_argument("--no-cache", action="store_true",
                        help="recompute the verified reference instead of reading it from the per-user cache")
    parser.set_defaults(handler=run)


def _names(text: str | None) -> list[str] | None:
    return [part.strip() for part in text.split(",") if part.strip()] if text else None


def _assignments(items: list[str], flag: str) -> dict[str, float]:
    """``NAME=VALUE`` strings as a mapping; a ValueError names ``flag``."""
    values: dict[str, float] = {}
    for item in items:
        name, sep, text = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ValueError(f"{flag} expects NAME=VALUE, got {item!r}")
        try:
            values[name] = float(text)
        except ValueError:
            raise ValueError(f"{flag} {item!r}: the value is not a number") from None
    return values


def _with_first(values: list | tuple | None, first: object, default: tuple) -> list:  # type: ignore[type-arg]
    """``values`` (or ``default``) with ``first`` in it: the user's own setting is always audited."""
    chosen = list(values) if values is not None else list(default)
    if first is not None and first not in chosen:
        chosen.insert(0, first)
    return chosen


def _external_gradients(args: argparse.Namespace, model, options: dict) -> dict:  # type: ignore[no-untyped-def, type-arg]
    """``--gradient NAME=FILE`` as ``audit(external=...)``: each file read against the audited parameters."""
    from .._checks import parameter_selection
    from ..audit._external import read_gradient_file

    chosen = parameter_selection(model, options.get("parameters"))
    external = {}
    for item in args.gradient:
        name, sep, path = item.partition("=")
        name, path = name.strip(), path.strip()
        if not sep or not name or not path:
            raise ValueError(f"--gradient expects NAME=FILE, got {item!r}")
        if name in external:
            raise ValueError(f"--gradient: the name {name!r} is given twice")
        external[name] = read_gradient_file(path, name, chosen)
    return external


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from ..audit import DEFAULT_METHODS, DEFAULT_SCHEMES, DEFAULT_TOLERANCES, TrajectoryLoss, audit, parse_loss
    from ..audit._audit import canonical_scheme
    from ..audit._losses import data_parameters_at, fit_loss
    from ..audit._presets import preset_for

    if args.explain is not None:
        from ..audit._glossary import explain, explain_all

        print(explain(args.explain) if args.explain else explain_all())
        return 0
    petab = None
    if args.model and str(args.model).lower().endswith((".yaml", ".yml")):  # a PEtab problem: symsens.petab
        from ..petab import load as load_petab

        problem = load_petab(args.model)
        petab = problem.audit_arguments()
    model = resolve_model(args) if petab is None else petab["model"]
    from .._checks import parameter_values
    from ..model import examples

    # A built-in example brings its preset; a model file brings only itself (and perhaps a [loss] table).
    model_file = None if (args.example or args.model in examples()) else args.model
    options = preset_for(model.name) if model_file is None else {}
    if petab is not None:  # its negative log-likelihood over the estimated parameters (nominal values)
        options.update(loss=petab["loss"], parameters=petab["parameters"])
        if "parameter_map" in petab:  # pre-equilibration: the total derivative through the steady state
            options.update(p=petab["p"], parameter_map=petab["parameter_map"])
    if args.schemes:
        options["schemes"] = _names(args.schemes)
    if args.tolerances:
        try:
            options["tolerances"] = [float(v) for v in _names(args.tolerances) or []]
        except ValueError:
            raise ValueError(f"--tolerances must be numbers, got {args.tolerances!r}") from None
    if args.methods:
        options["methods"] = _names(args.methods)
    if args.parameters:
        options["parameters"] = _names(args.parameters)
    if args.t_span:
        options["t_span"] = tuple(args.t_span)
    point = _assignments(args.set, "--set")
    if point:
        try:
            parameter_values(model, point)
        except ValueError as error:
            raise ValueError(f"--set: {error}") from None
        options["p"] = point
        if petab is not None and "parameter_map" in petab:  # the steady state and its Jacobian at this point
            ids = {q.model_name: q.id for q in problem.parameters}
            for name in point:
                if name not in ids:
                    raise ValueError(f"--set: {name!r} is not an estimated parameter of the PEtab problem (with "
                                     f"pre-equilibration the initial values follow the steady state); they are "
                                     f"{', '.join(ids)}")
            moved = problem.audit_arguments({ids[name]: value for name, value in point.items()})
            options.update(p=moved["p"], parameter_map=moved["parameter_map"])
    p_data = _assignments(args.p_data, "--p-data")

    # The gradient the user computes: always among the audited settings.
    scheme = canonical_scheme(args.scheme) if args.scheme else None
    if args.method:
        options["methods"] = _with_first(options.get("methods"), args.method, DEFAULT_METHODS)
    if scheme:
        options["schemes"] = _with_first([canonical_scheme(n) for n in options.get("schemes", DEFAULT_SCHEMES)],
                                         scheme, ())
    if args.rtol is not None:
        tolerances = list(options.get("tolerances", DEFAULT_TOLERANCES))
        if not any(abs(t - args.rtol) <= 1e-12 * abs(args.rtol) for t in tolerances):
            tolerances = sorted(tolerances + [args.rtol], reverse=True)
        options["tolerances"] = tolerances
    user_setting = {"method": args.method, "scheme": scheme, "rtol": args.rtol}

    fit_options = {"parameters": options.get("parameters"), "p": options.get("p"), "p_data": p_data or None,
                   "t_span": options.get("t_span")}
    if args.loss is not None:
        options["loss"] = parse_loss(args.loss, model_file, model=model, fit_options=fit_options)
        if args.loss.strip().startswith("fit"):
            p_data = {}
    elif "loss" not in options:
        # No data and no preset: fit data made at shifted parameters, so that the true gradient is not 0.
        options["loss"] = fit_loss(model, **fit_options)
        p_data = {}
    loss = options.pop("loss")
    external = _external_gradients(args, model, options)
    if p_data:
        if not isinstance(loss, TrajectoryLoss):
            raise ValueError("--p-data applies to a fit or trajectory loss (the data of other losses are given)")
        data = parameter_values(model, options.get("p"))
        for name, value in p_data.items():
            if name not in model.parameter_names:
                raise ValueError(f"--p-data: unknown parameter {name!r}; the model's: {', '.join(model.parameter_names)}")
            data[model.parameter_names.index(name)] = value
        loss = dataclasses.replace(loss, data_parameters=data_parameters_at(model, data),
                                   note="data parameters chosen with --p-data")
    if args.write_loss_data:
        from ..audit import loss_data

        data = loss_data(model, loss, p=options.get("p"), t_span=options.get("t_span"),
                         parameters=options.get("parameters"), digits=args.digits)
        print(f"loss data: {data.write_json(args.write_loss_data)} ({data.formula})")
        return 0
    if (external or args.tool) and args.method is None and scheme is None and args.rtol is None:
        user_setting = None  # the answer is about the first external gradient
    progress = None if args.quiet or args.json else ProgressBar()
    report = audit(model, loss, reference_digits=args.digits, target_digits=args.target_digits, progress=progress,
                   user_setting=user_setting, use_cache=not args.no_cache, external=external or None,
                   tools=args.tool or None, **options)
    written = report.write(args.out) if args.out else None
    if args.json:
        record = report.to_json_dict()
        if written:
            record["files"] = written
        json.dump(record, sys.stdout, indent=1, allow_nan=False)
        sys.stdout.write("\n")
    else:
        print(report.summary(verbose=args.verbose))
        if written:
            print(f"report: {written['html']} (also report.md, report.json and {len(written) - 3} figures)")
    return 0
