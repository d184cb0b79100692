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

    def __init__(self, stream=sys.stderr, width: int = 28) -> None:  # type: ignore[no-untyped-def]
        self.stream = stream
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
            "Compute the loss gradient with continuous forward sensitivities (with/without error control), discrete "
            "forward mode (AD through the solver, with its controller variants) and finite differences, for each "
            "scheme and tolerance; compare with the verified reference; diagnose the differences; write a report."
        ),
    )
    add_model_arguments(parser)
    parser.add_argument("--loss", default=None, metavar="SPEC",
                        help="trajectory[:OUTPUTS][@T0:T1:N] (default: every state on the nominal solve's own steps), "
                             "data:FILE.csv, integral:EXPR, or model (the model file's [loss] table)")
    parser.add_argument("--schemes", metavar="S1,S2", help="compiled schemes (default tsit5,rodas4,radau-iia-3,bdf)")
    parser.add_argument("--tolerances", metavar="R1,R2", help="rtol values (default 1e-3,...,1e-10; atol = rtol/1000)")
    parser.add_argument("--methods", metavar="M1,M2", help="gradient methods (default: all)")
    parser.add_argument("--parameters", metavar="P1,P2", help="differentiate w.r.t. these parameters (default all)")
    parser.add_argument("--t-span", nargs=2, type=float, metavar=("T0", "T1"))
    parser.add_argument("--digits", type=int, default=8, help="digits the reference must verify (default 8)")
    parser.add_argument("--target-digits", type=float, default=6, help="accuracy the recommendation asks for")
    parser.add_argument("--out", metavar="DIR", help="write report.md, report.html, report.json and figures here")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run)


def _names(text: str | None) -> list[str] | None:
    return [part.strip() for part in text.split(",") if part.strip()] if text else None


def run(args: argparse.Namespace) -> int:
    from ..audit import audit, parse_loss
    from ..audit._presets import preset_for

    model = resolve_model(args)
    from ..model import examples

    # A built-in example brings its preset; a model file brings only itself (and perhaps a [loss] table).
    model_file = None if (args.example or args.model in examples()) else args.model
    options = preset_for(model.name) if model_file is None else {}
    if args.loss is not None:
        options["loss"] = parse_loss(args.loss, model_file)
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
    loss = options.pop("loss", None)
    progress = None if args.quiet or args.json else ProgressBar()
    report = audit(model, loss, reference_digits=args.digits, target_digits=args.target_digits, progress=progress,
                   **options)
    written = report.write(args.out) if args.out else None
    if args.json:
        record = report.to_json_dict()
        if written:
            record["files"] = written
        json.dump(record, sys.stdout, indent=1, allow_nan=False)
        sys.stdout.write("\n")
    else:
        print(report.summary_table())
        if written:
            print(f"report: {written['html']} (also report.md, report.json and {len(written) - 3} figures)")
    return 0
