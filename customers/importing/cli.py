"""What the two import commands share: their common options and how results are shown."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from customers.importing.services import ImportFailed, ImportResult, import_file


def add_common_arguments(parser) -> None:
    parser.add_argument("--delimiter", default=",", help="field separator (default ,)")
    parser.add_argument(
        "--date-format", help="strptime format such as %%d.%%m.%%Y (default: ISO 8601)"
    )
    parser.add_argument(
        "--skip-bad-rows",
        action="store_true",
        help="import the good rows and write the bad ones to a reject file",
    )
    parser.add_argument("--reject-file", help="where rejected rows go (default FILE.rejects.csv)")
    parser.add_argument("--dry-run", action="store_true", help="validate only, write nothing")
    parser.add_argument(
        "--encoding", default="utf-8", help="the file's text encoding (default utf-8)"
    )


def run_import(*, kind: str, mapping: dict[str, str], options: dict) -> ImportResult:
    try:
        return import_file(
            path=options["file"],
            kind=kind,
            mapping=mapping,
            delimiter=options["delimiter"],
            encoding=options["encoding"],
            date_format=options["date_format"],
            skip_bad_rows=options["skip_bad_rows"],
            reject_file=options["reject_file"],
            dry_run=options["dry_run"],
            currency=options.get("currency") or "EUR",
        )
    except ImportFailed as exc:
        raise CommandError("\n".join([str(exc), *_error_lines(exc.result)])) from exc
    except (ValueError, FileNotFoundError) as exc:
        raise CommandError(str(exc)) from exc


def _error_lines(result: ImportResult) -> list[str]:
    lines = [f"  {e}" for e in result.errors]
    hidden = result.error_count - len(result.errors)
    if hidden > 0:
        lines.append(f"  ... and {hidden} more")
    return lines


def report(command: BaseCommand, result: ImportResult) -> None:
    counts = ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in result.counts.items())
    verb = "Validated (dry run, nothing written)" if result.dry_run else "Imported"
    command.stdout.write(
        command.style.SUCCESS(f"{verb} {result.rows:,} rows of {result.kind}: {counts}")
    )
    if result.ignored_columns:
        command.stdout.write(f"Ignored columns: {', '.join(result.ignored_columns)}")
    if result.rejected:
        command.stdout.write(command.style.WARNING(f"Rejected {result.rejected:,} rows:"))
        for line in _error_lines(result):
            command.stdout.write(line)
        if result.reject_file:
            command.stdout.write(f"Rejected rows with reasons: {result.reject_file}")
